//! Helpers shared by the end-to-end tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shadowdiff_fixtures::corpus::{self, CorpusConfig, CorpusSummary};

/// The `shadowdiff` binary under test.
pub fn shadowdiff() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shadowdiff"))
}

/// Run `shadowdiff ARGS...` to completion.
pub fn run(args: &[&str]) -> Output {
    shadowdiff().args(args).output().expect("the shadowdiff binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Write a corpus of `pairs` pairs under `dir`, through the project's writer.
pub fn corpus(dir: &Path, pairs: u64, edit: impl FnOnce(&mut CorpusConfig)) -> CorpusSummary {
    let mut cfg = CorpusConfig::new(pairs, dir);
    edit(&mut cfg);
    corpus::generate(&cfg).expect("corpus generation")
}

/// A corpus of `pairs` pairs under `dir` whose canary has the given effects (`latency-shift:1.6`,
/// `field-removed:/a@/route` …), seeded, then edited.
pub fn corpus_with_effects(
    dir: &Path,
    pairs: u64,
    seed: u64,
    effects: &[&str],
    edit: impl FnOnce(&mut CorpusConfig),
) -> CorpusSummary {
    corpus(dir, pairs, |c| {
        c.seed = seed;
        for e in effects {
            c.canary.effects.push(shadowdiff_fixtures::Scoped::parse(e).expect("effect spec"));
        }
        edit(c);
    })
}

/// The repository root (where Cargo.toml and .venv live).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python of the test virtualenv that `scripts/test` creates, or `$SHADOWDIFF_PYTHON`.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SHADOWDIFF_PYTHON") {
        return PathBuf::from(p);
    }
    let p = repo_root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run `scripts/test` (it creates the virtualenv with pyarrow, duckdb and polars), or set SHADOWDIFF_PYTHON",
        p.display()
    );
    p
}

/// Sends `sig` (`-TERM`, `-INT`, `-KILL`) to a child process.
pub fn signal(child: &std::process::Child, sig: &str) {
    let ok = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill runs").success();
    assert!(ok, "kill {sig} failed");
}

/// Waits for a child to exit; kills it and fails the test past `limit`.
// Polls a child process from a plain thread: the OS clock.
#[allow(clippy::disallowed_methods)]
pub fn wait_with_deadline(child: &mut std::process::Child, limit: std::time::Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("shadowdiff did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
