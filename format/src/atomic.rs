//! Whole files or none: every output file shadowdiff writes (verdict.json, junit.xml, summary.md,
//! examples.json, report.html, the chart PNGs) goes through [`write_atomic`], so a reader — a
//! browser pointed at the report while analyze runs, a CI step uploading artefacts, the next run —
//! sees the old file or the new one, never half of one. Pair files have their own
//! write-then-rename in [`crate::writer`], since they are streamed rather than written at once.

use std::io::Write as _;
use std::path::Path;

/// Writes `bytes` to `path`: into a temporary file in the same directory (so the rename cannot
/// cross file systems), then renamed over `path` by [`tempfile::NamedTempFile::persist`]. The
/// temporary file is removed on every error path.
///
/// The file gets the mode `std::fs::write` would give it (0o666 less the umask), not tempfile's
/// private 0o600: reports are read by whoever serves or uploads them.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".").suffix(".tmp");
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    // tempfile names the temporary path in its errors, so a missing directory is named too.
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_an_existing_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("verdict.json");
        std::fs::write(&path, "old contents, longer than the new ones\n").expect("write");
        write_atomic(&path, b"{}\n").expect("atomic write");
        assert_eq!(std::fs::read(&path).expect("read"), b"{}\n");
        write_atomic(&path, b"").expect("an empty file is a file");
        assert_eq!(std::fs::read(&path).expect("read"), b"");
        assert_eq!(names_in(dir.path()), ["verdict.json"]);
    }

    #[cfg(unix)]
    #[test]
    fn the_file_is_not_private_to_its_writer() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let ours = dir.path().join("report.html");
        let std_written = dir.path().join("std.html");
        write_atomic(&ours, b"<html>").expect("atomic write");
        std::fs::write(&std_written, b"<html>").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&ours), mode(&std_written));
    }

    #[test]
    fn a_missing_directory_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("no-such-dir");
        let e = write_atomic(&missing.join("junit.xml"), b"<testsuites/>").expect_err("no directory");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
        assert!(names_in(dir.path()).is_empty(), "nothing is left behind");
    }

    #[test]
    fn a_target_that_is_a_directory_fails_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("summary.md")).expect("mkdir");
        assert!(write_atomic(&dir.path().join("summary.md"), b"# Summary\n").is_err());
        assert_eq!(names_in(dir.path()), ["summary.md"]);
    }
}
