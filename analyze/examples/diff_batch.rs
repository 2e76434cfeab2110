//! Times shadowdiff's JSON diff on a batch of pairs; `bench/diff.sh` runs it beside Python's
//! deepdiff on the same files.
//!
//! ```text
//! diff_batch generate N DIR [CHANGED_SHARE]   write DIR/baseline.jsonl and DIR/canary.jsonl
//! diff_batch run DIR [PATHS_OUT SAMPLE]       parse + diff every pair on one thread, print the
//!                                             rate; write the first SAMPLE pairs' changed paths
//! ```
//!
//! The timed loop is what analyze does per pair's bodies: [`compare_bodies`] on the two
//! `application/json` bodies with default rules, which answers byte-identical bodies after only
//! validating them as JSON and parses and diffs the rest. Reading the files is not timed (nor is
//! it on the Python side, which parses and diffs every pair).

use std::io::Write as _;
use std::time::Instant;

use shadowdiff_analyze::{Rules, compare_bodies, diff_json};

/// The allocator the `shadowdiff` binary runs analyze on (src/main.rs), so that the rate is the
/// one analyze gets: glibc's malloc and free took ~25 % of this loop's time in perf.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "../benches/support/corpus.rs"]
mod corpus;

fn main() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generate") if args.len() >= 3 => {
            let n: usize = args[1].parse()?;
            let dir = std::path::Path::new(&args[2]);
            let share: f64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(0.5);
            std::fs::create_dir_all(dir)?;
            let mut a = std::io::BufWriter::new(std::fs::File::create(dir.join("baseline.jsonl"))?);
            let mut b = std::io::BufWriter::new(std::fs::File::create(dir.join("canary.jsonl"))?);
            for (x, y) in corpus::pairs(n, share, 42) {
                writeln!(a, "{x}")?;
                writeln!(b, "{y}")?;
            }
            a.flush()?;
            b.flush()?;
            Ok(())
        }
        Some("run") if args.len() >= 2 => {
            let dir = std::path::Path::new(&args[1]);
            let a = std::fs::read_to_string(dir.join("baseline.jsonl"))?;
            let b = std::fs::read_to_string(dir.join("canary.jsonl"))?;
            let pairs: Vec<(&str, &str)> = a.lines().zip(b.lines()).collect();
            let rules = Rules::default();
            let json = Some("application/json");
            let mut differing = 0usize;
            let mut differences = 0usize;
            let secs = timed(|| {
                for (x, y) in &pairs {
                    let c = compare_bodies((x.as_bytes(), json), (y.as_bytes(), json), &rules, None);
                    if c.baseline_unparseable.is_some() || c.canary_unparseable.is_some() {
                        return Err("a generated body is not JSON".into());
                    }
                    differing += usize::from(!c.equal);
                    differences += c.differences.len();
                }
                Ok(())
            })?;
            // The same pairs with both bodies of every pair parsed and diffed, identical or not:
            // what deepdiff does, and what analyze did before identical bodies skipped the parse.
            let mut parse_all_differences = 0usize;
            let parse_all_secs = timed(|| {
                for (x, y) in &pairs {
                    let x: serde_json::Value = serde_json::from_str(x)?;
                    let y: serde_json::Value = serde_json::from_str(y)?;
                    parse_all_differences += diff_json(&x, &y, &rules, None).len();
                }
                Ok(())
            })?;
            if parse_all_differences != differences {
                return Err(format!("{differences} differences, but {parse_all_differences} parsing every pair").into());
            }
            let n = pairs.len() as f64;
            println!(
                "pairs={} differing={differing} differences={differences} seconds={secs:.4} pairs_per_sec={:.0} \
                 parse_all_seconds={parse_all_secs:.4} parse_all_pairs_per_sec={:.0}",
                pairs.len(),
                n / secs,
                n / parse_all_secs,
            );
            if let (Some(out), Some(sample)) = (args.get(2), args.get(3)) {
                let sample: usize = sample.parse()?;
                let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
                for (x, y) in pairs.iter().take(sample) {
                    let c = compare_bodies((x.as_bytes(), json), (y.as_bytes(), json), &rules, None);
                    writeln!(w, "{}", serde_json::to_string(&corpus::changed_paths(&c.differences))?)?;
                }
                w.flush()?;
            }
            Ok(())
        }
        _ => Err("usage: diff_batch generate N DIR [CHANGED_SHARE] | diff_batch run DIR [PATHS_OUT SAMPLE]".into()),
    }
}

type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// Seconds `run` took. A synchronous timing loop, like a bench: the OS clock is the right one.
fn timed(run: impl FnOnce() -> Result) -> Result<f64> {
    #[allow(clippy::disallowed_methods)]
    let start = Instant::now();
    run()?;
    Ok(start.elapsed().as_secs_f64())
}
