//! Times shadowdiff's JSON diff on a batch of pairs; `bench/diff.sh` runs it beside Python's
//! deepdiff on the same files.
//!
//! ```text
//! diff_batch generate N DIR [CHANGED_SHARE]   write DIR/baseline.jsonl and DIR/canary.jsonl
//! diff_batch run DIR [PATHS_OUT SAMPLE]       parse + diff every pair on one thread, print the
//!                                             rate; write the first SAMPLE pairs' changed paths
//! ```
//!
//! The timed loop is what analyze does per pair: parse both bodies from text, diff them with
//! default rules. Reading the files is not timed (nor is it on the Python side).

use std::io::Write as _;
use std::time::Instant;

use shadowdiff_analyze::{Rules, diff_json};

#[path = "../benches/support/corpus.rs"]
mod corpus;

fn main() -> Result<(), Box<dyn std::error::Error>> {
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
            // A synchronous timing loop, like a bench: the OS clock is the right one.
            #[allow(clippy::disallowed_methods)]
            let start = Instant::now();
            let mut differing = 0usize;
            let mut differences = 0usize;
            for (x, y) in &pairs {
                let x: serde_json::Value = serde_json::from_str(x)?;
                let y: serde_json::Value = serde_json::from_str(y)?;
                let d = diff_json(&x, &y, &rules, None);
                differing += usize::from(!d.is_empty());
                differences += d.len();
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "pairs={} differing={differing} differences={differences} seconds={secs:.4} pairs_per_sec={:.0}",
                pairs.len(),
                pairs.len() as f64 / secs
            );
            if let (Some(out), Some(sample)) = (args.get(2), args.get(3)) {
                let sample: usize = sample.parse()?;
                let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
                for (x, y) in pairs.iter().take(sample) {
                    let d = diff_json(&serde_json::from_str(x)?, &serde_json::from_str(y)?, &rules, None);
                    writeln!(w, "{}", serde_json::to_string(&corpus::changed_paths(&d))?)?;
                }
                w.flush()?;
            }
            Ok(())
        }
        _ => Err("usage: diff_batch generate N DIR [CHANGED_SHARE] | diff_batch run DIR [PATHS_OUT SAMPLE]".into()),
    }
}
