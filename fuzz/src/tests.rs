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

/// A small deterministic generator (xorshift64*): the mutation run needs reproducible bytes,
/// not statistical quality, and this file is built without the root's dependencies.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

/// One to four of libFuzzer's plain mutations (bit flip, byte set to a random or boundary value,
/// insert, erase, duplicate a range, splice in part of another seed) applied to `input`.
fn mutate(input: &mut Vec<u8>, other: &[u8], g: &mut Bytes) {
    for _ in 0..=g.below(4) {
        let len = input.len();
        match g.below(7) {
            0 if len > 0 => {
                let i = g.below(len);
                input[i] ^= 1 << g.below(8);
            }
            1 if len > 0 => {
                let i = g.below(len);
                input[i] = [0, 0xff, 0x7f, 0x80, b'"', b'{', b'[', b'\\'][g.below(8)];
            }
            2 => {
                let i = g.below(len + 1);
                input.insert(i, g.next() as u8);
            }
            3 if len > 0 => {
                let i = g.below(len);
                let n = 1 + g.below((len - i).min(16));
                input.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = g.below(len);
                let n = 1 + g.below((len - i).min(64));
                let piece: Vec<u8> = input[i..i + n].to_vec();
                let at = g.below(len + 1);
                input.splice(at..at, piece);
            }
            5 if !other.is_empty() => {
                let i = g.below(other.len());
                let n = 1 + g.below((other.len() - i).min(256));
                let at = g.below(len + 1);
                input.splice(at..at, other[i..i + n].iter().copied());
            }
            _ => input.truncate(g.below(len + 1)),
        }
    }
}

/// The short fuzz run every CI does, on stable: each target for a fixed budget
/// (`SHADOWDIFF_FUZZ_CI_SECONDS`, default 1 s a target: it holds a core while the suite's A/A
/// latency tests run beside it) on mutations of its seeds — blind, not
/// coverage-guided as libFuzzer is (scripts/fuzz, docs/fuzzing.md), but the same target bodies
/// and properties. A failing input is written under the system's temporary directory and named.
#[test]
#[allow(clippy::disallowed_methods)] // a plain test thread: the OS clock
fn every_target_survives_a_short_mutation_run() {
    let budget: f64 = std::env::var("SHADOWDIFF_FUZZ_CI_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let budget = std::time::Duration::from_secs_f64(budget);
    for (target, run) in TARGETS {
        let seeds: Vec<Vec<u8>> = inputs("seeds", target)
            .iter()
            .chain(&inputs("regressions", target))
            .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
            .collect();
        let mut g = Bytes(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
        let (started, mut execs) = (std::time::Instant::now(), 0u64);
        while started.elapsed() < budget {
            let mut input = seeds[g.below(seeds.len())].clone();
            let other = &seeds[g.below(seeds.len())];
            mutate(&mut input, other, &mut g);
            let outcome = std::panic::catch_unwind(|| run(&input));
            if outcome.is_err() {
                let file = std::env::temp_dir().join(format!("shadowdiff-fuzz-{target}-{execs}.bin"));
                let _ = std::fs::write(&file, &input);
                panic!("{target} failed on a mutated input after {execs} runs; it is in {}", file.display());
            }
            execs += 1;
        }
        eprintln!("{target}: {execs} runs in {:.1} s, no failure", started.elapsed().as_secs_f64());
    }
}
