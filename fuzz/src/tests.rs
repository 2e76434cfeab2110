//! Every committed input through its target, on stable: the seeds (`seeds/<target>/`) and the
//! inputs of the crashes found so far (`regressions/<target>/`). What the short CI runs of the
//! fuzzers start from, checked even where they cannot run.

use std::path::PathBuf;

use super::TARGETS;

/// fuzz/, whether this is built in its own workspace or included by the root's tests/fuzz_inputs.rs.
fn fuzz_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if manifest.join("fuzz/seeds").is_dir() { manifest.join("fuzz") } else { manifest }
}

fn inputs(dir: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(dir).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

fn replay(dir: &str) -> usize {
    let mut n = 0;
    for (target, run) in TARGETS {
        for file in inputs(dir, target) {
            let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            eprintln!("{target}: {}", file.display());
            run(&data);
            n += 1;
        }
    }
    n
}

#[test]
fn every_seed_passes_its_target() {
    let n = replay("seeds");
    assert!(n >= TARGETS.len(), "only {n} seeds: every target has at least one");
    for (target, _) in TARGETS {
        assert!(!inputs("seeds", target).is_empty(), "no seed for {target}");
    }
}

#[test]
fn every_regression_input_passes_its_target() {
    replay("regressions");
}

#[test]
fn every_input_directory_names_a_target() {
    for dir in ["seeds", "regressions"] {
        let root = fuzz_dir().join(dir);
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            assert!(
                TARGETS.iter().any(|(t, _)| *t == name),
                "{dir}/{name} is not a fuzz target's directory: its inputs would never run"
            );
        }
    }
}
