//! `shadowdiff-calibration`: how often the judge is wrong. See bench/calibration/run.sh.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rayon::prelude::*;
use shadowdiff_analyze::Policy;
use shadowdiff_calibration::model::{Effect, Noise, routes, simulate};
use shadowdiff_calibration::{Tally, judge_pairs};
use shadowdiff_format::verdict::Status;

/// Simulates pair sets under noise models with effects of known size, judges each with the
/// default policy (or --policy FILE) and prints the operating characteristic: the share of pass,
/// warn, fail and inconclusive verdicts per cell, which checks raised them, and whether the
/// cell meets its target.
#[derive(Parser, Debug)]
#[command(name = "shadowdiff-calibration")]
struct Args {
    /// Pair sets per cell.
    #[arg(long, default_value_t = 200)]
    sets: u64,
    /// Pairs per set.
    #[arg(long, default_value_t = 4000)]
    pairs: usize,
    /// Routes per set (the many-routes model uses four times as many).
    #[arg(long, default_value_t = 10)]
    routes: usize,
    /// Noise models, comma-separated: lognormal, heavy-tail, bimodal, bursty-errors, diurnal,
    /// many-routes (default: all).
    #[arg(long, value_delimiter = ',')]
    noise: Vec<String>,
    /// Effects, comma-separated keys: aa, lat1.05, lat1.15, lat1.3, lat1.5, tail, err1.5, err3,
    /// newkind, field0.002, field0.01, field0.05 (default: all).
    #[arg(long, value_delimiter = ',')]
    effect: Vec<String>,
    /// A policy file (default: the built-in policy).
    #[arg(long)]
    policy: Option<std::path::PathBuf>,
    /// First seed; set i of a cell uses seed + i.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also print the reasons of up to this many alarms (warn or fail) per cell.
    #[arg(long, default_value_t = 0)]
    explain: usize,
    /// Judge with anytime-valid decisions (the policy's `sequential = true`).
    #[arg(long)]
    sequential: bool,
    /// Instead of the table: repeated looks. Each of --sets identical-build (A/A) runs of --pairs
    /// pairs is judged after every 1/N of its pairs (N looks), with fixed-sample and with
    /// anytime-valid decisions; prints how many runs ever warned or failed at any look.
    #[arg(long, value_name = "N")]
    looks: Option<usize>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let policy = match &args.policy {
        Some(path) => match Policy::from_file(path) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => Policy::default(),
    };
    let mut policy = policy;
    policy.sequential |= args.sequential;
    let mut noises = Vec::new();
    for n in &args.noise {
        match Noise::parse(n) {
            Some(n) => noises.push(n),
            None => {
                eprintln!("error: --noise: unknown model `{n}`");
                return ExitCode::from(2);
            }
        }
    }
    if noises.is_empty() {
        noises = Noise::ALL.to_vec();
    }
    let mut effects = Vec::new();
    for e in &args.effect {
        match Effect::ALL.into_iter().find(|x| x.key() == *e) {
            Some(x) => effects.push(x),
            None => {
                eprintln!("error: --effect: unknown effect `{e}`");
                return ExitCode::from(2);
            }
        }
    }
    if effects.is_empty() {
        effects = Effect::ALL.to_vec();
    }

    if let Some(looks) = args.looks {
        return repeated_looks(&args, &policy, &noises, looks);
    }
    println!(
        "{} sets of {} pairs per cell, {} routes, policy {}",
        args.sets,
        args.pairs,
        args.routes,
        args.policy.as_ref().map_or("built-in".into(), |p| p.display().to_string())
    );
    println!();
    println!("| noise | effect | target | pass | warn | fail | inconclusive | met | warned or failed by |");
    println!("|---|---|---|---:|---:|---:|---:|:-:|---|");
    #[allow(clippy::disallowed_methods, reason = "a synchronous program timing itself")]
    let start = Instant::now();
    let mut missed = 0;
    for &noise in &noises {
        for &effect in &effects {
            let explained = std::sync::atomic::AtomicUsize::new(0);
            let tally = (0..args.sets)
                .into_par_iter()
                .map(|i| {
                    let seed = args.seed + i;
                    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_ca1b);
                    let pairs = simulate(args.pairs, routes(noise, args.routes), noise, effect, &mut rng);
                    let verdict = judge_pairs(&pairs, &policy, seed);
                    let alarm = matches!(verdict.verdict, Status::Warn | Status::Fail);
                    if alarm && explained.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < args.explain {
                        eprintln!(
                            "  {} / {} seed {seed}: {} — {}",
                            noise.name(),
                            effect.name(),
                            verdict.verdict,
                            verdict.reason
                        );
                    }
                    let mut t = Tally::default();
                    t.add(&verdict);
                    t
                })
                .reduce(Tally::default, Tally::merge);
            let s = tally.shares();
            let pct = |x: f64| format!("{:.1}%", 100.0 * x);
            let (target, met) = match effect.target() {
                Some(t) => {
                    let ok = t.met(s);
                    missed += usize::from(!ok);
                    (t.text(), if ok { "✓" } else { "✗" })
                }
                None => ("—", ""),
            };
            println!(
                "| {} | {} | {target} | {} | {} | {} | {} | {met} | {} |",
                noise.name(),
                effect.name(),
                pct(s[0]),
                pct(s[1]),
                pct(s[2]),
                pct(s[3]),
                tally.alarms()
            );
        }
    }
    println!();
    println!(
        "{} cells, {} sets in {:.1} s; {missed} cell(s) miss their target",
        noises.len() * effects.len(),
        noises.len() as u64 * effects.len() as u64 * args.sets,
        start.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

/// How often a growing identical-build run, judged at `looks` points, ever warns or fails: with
/// fixed-sample decisions and with anytime-valid ones, on the same runs.
fn repeated_looks(args: &Args, policy: &Policy, noises: &[Noise], looks: usize) -> ExitCode {
    let looks = looks.max(1);
    // The bootstrap only describes the p99 now (no decision rests on it): its minimum keeps a
    // thousand looks affordable.
    let mut fixed = policy.clone();
    fixed.sequential = false;
    fixed.bootstrap_resamples = 100;
    let mut sequential = fixed.clone();
    sequential.sequential = true;
    println!(
        "{} identical-build runs of {} pairs per model, judged after every {} pairs ({looks} looks)",
        args.sets,
        args.pairs,
        args.pairs.div_ceil(looks)
    );
    println!();
    println!("| noise | decisions | ever warned | ever failed | warned at the last look | failed at the last look |");
    println!("|---|---|---:|---:|---:|---:|");
    #[allow(clippy::disallowed_methods, reason = "a synchronous program timing itself")]
    let start = Instant::now();
    for &noise in noises {
        // Per run: [ever warned, ever failed, last warned, last failed] for fixed and sequential.
        let counts = (0..args.sets)
            .into_par_iter()
            .map(|i| {
                let seed = args.seed + i;
                let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed_ca1b);
                let pairs = simulate(args.pairs, routes(noise, args.routes), noise, Effect::None, &mut rng);
                let mut out = [[0u64; 4]; 2];
                for (k, p) in [&fixed, &sequential].into_iter().enumerate() {
                    for look in 1..=looks {
                        let n = (args.pairs * look).div_ceil(looks);
                        let v = judge_pairs(&pairs[..n], p, seed).verdict;
                        let (w, f) = (v == Status::Warn, v == Status::Fail);
                        out[k][0] |= u64::from(w);
                        out[k][1] |= u64::from(f);
                        if look == looks {
                            out[k][2] = u64::from(w);
                            out[k][3] = u64::from(f);
                        }
                    }
                }
                out
            })
            .reduce(
                || [[0u64; 4]; 2],
                |mut a, b| {
                    for k in 0..2 {
                        for j in 0..4 {
                            a[k][j] += b[k][j];
                        }
                    }
                    a
                },
            );
        for (k, name) in ["fixed-sample", "anytime-valid (--sequential)"].into_iter().enumerate() {
            let pct = |c: u64| format!("{:.1}%", 100.0 * c as f64 / args.sets.max(1) as f64);
            println!(
                "| {} | {name} | {} | {} | {} | {} |",
                noise.name(),
                pct(counts[k][0]),
                pct(counts[k][1]),
                pct(counts[k][2]),
                pct(counts[k][3])
            );
        }
    }
    println!();
    println!("{} runs × {looks} looks × 2 in {:.1} s", args.sets * noises.len() as u64, start.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
