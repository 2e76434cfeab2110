//! Analysis in shards (docs/scale.md): `shadowdiff plan` splits the inputs, `shadowdiff analyze
//! --plan P --shard I --partial-out URL` runs one shard's pass 1 into a partial, and `shadowdiff
//! merge` turns the partials into the outputs one `analyze` writes. Plans, partials and pair
//! files may all live in an object store.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{SubsecRound as _, Utc};
use shadowdiff_analyze::judge::judge;
use shadowdiff_analyze::pipeline::shard::{
    PARTIAL_FILE, PARTIAL_FORMAT, PartialFile, Plan, PlanInput, PlanPolicy, VERSION, policy_digest, shard_dir, split,
};
use shadowdiff_analyze::pipeline::{
    self, MergeContext, Options, Partial, Progress as _, RAW_DIFFS_FILE, RAW_PAIRS_FILE, Selection,
};
use shadowdiff_analyze::policy::{FailOn, Policy};
use shadowdiff_capture::config::{Flag, parse_duration, parse_nonzero_size};
use shadowdiff_format::store::files;

use super::analyze::{Bar, conclude, parse_window};
use super::inputs::fetch_files;
use crate::exit::Exit;

/// Split an analysis into shards that many processes (a Kubernetes Indexed Job) can run at once.
///
/// Lists the pair files of INPUT (local paths or object-store URLs, with Hive partitions pruned by
/// --since/--until before listing) and writes a plan: the files in input order with their sizes,
/// split into --shards contiguous runs balanced by size, the policy's digest, the seed, the
/// window and each run's warm-up end. Then run `shadowdiff analyze --plan PLAN --shard I
/// --partial-out URL` for every I from 0, anywhere and in any order, and `shadowdiff merge`.
/// The merged outputs are those one `analyze` of the same inputs writes.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Pair files, directories (searched recursively), globs, or object-store URLs.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<String>,
    /// How many shards. More shards than files leaves the extra ones empty (they still run,
    /// and merge accepts their empty partials).
    #[arg(long, value_name = "N")]
    shards: usize,
    /// Where the plan goes: a file path or an object-store URL (`s3://bucket/runs/42/plan.json`).
    #[arg(long, value_name = "PLAN")]
    out: String,
    /// The policy (TOML). Shards and merge must be given the same file: the plan records its
    /// digest and they check it.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Seed for the latency samples.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// `warn` makes a warning exit 1 at the merge, as a failure does.
    #[arg(long, value_name = "LEVEL", value_parser = ["fail", "warn"])]
    fail_on: Option<String>,
    /// Decode bodies by their Content-Encoding up to this size (as analyze's flag).
    #[arg(long, value_name = "SIZE", value_parser = Flag(parse_nonzero_size))]
    max_decoded_body: Option<u64>,
    /// Anytime-valid decisions (as analyze's flag).
    #[arg(long)]
    sequential: bool,
    /// Judge only pairs captured at or after this time (as analyze's flag).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    since: Option<String>,
    /// Judge only pairs captured before this time (as analyze's flag).
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    until: Option<String>,
    /// Leave out each agent run's first pairs (as analyze's flag). The plan reads the
    /// captured_at column of every input once to find each run's start.
    #[arg(long, value_name = "DURATION", value_parser = Flag(parse_duration))]
    warmup: Option<std::time::Duration>,
    /// Not available with shards: a uniform sample of exactly N pairs needs the whole input's
    /// count first. Shard by time with --since/--until instead, or use `analyze --sample`.
    #[arg(long, value_name = "N", hide = true)]
    sample: Option<u64>,
    /// Print nothing but errors.
    #[arg(long, short)]
    quiet: bool,
}

/// Merge the partials of a sharded analysis into the outputs one `analyze` writes.
///
/// Reads the plan and every shard's partial (`shard-0000I/` under --partials, a directory or an
/// object-store prefix), checks that each shard is there exactly once and belongs to this plan,
/// and writes pairs.parquet, diffs.parquet, verdict.json, junit.xml, summary.md, examples.json,
/// report.html and charts/*.png into --out. Exit codes as analyze's: 0 pass or warn, 1 fail,
/// 2 error (a missing, duplicated or foreign partial is one), 3 inconclusive.
#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// The plan `shadowdiff plan` wrote (a path or an object-store URL).
    #[arg(long, value_name = "PLAN")]
    plan: String,
    /// Where the shards wrote their partials (their --partial-out).
    #[arg(long, value_name = "URL")]
    partials: String,
    /// The output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The policy the plan was made with (checked against the plan's digest).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// No progress bar and no summary on stdout.
    #[arg(long, short)]
    quiet: bool,
}

pub fn plan(args: PlanArgs) -> anyhow::Result<Exit> {
    if args.shards == 0 {
        bail!("--shards must be at least 1");
    }
    if args.sample.is_some() {
        bail!(
            "--sample cannot be sharded: a uniform sample of exactly N pairs needs the whole input's count first; shard by time with --since/--until, or run `shadowdiff analyze --sample`"
        );
    }
    let policy_bytes = match &args.policy {
        Some(path) => {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read the policy {}", path.display()))?;
            // Checked now, so that a bad policy fails here rather than in every shard.
            Policy::from_file(path)?;
            bytes
        }
        None => Vec::new(),
    };
    let window = parse_window(args.since.as_deref(), args.until.as_deref())?;
    let listed = files::pair_files(&args.inputs, &window)?;
    let before = listed.len();
    let inputs: Vec<PlanInput> = listed
        .into_iter()
        .filter(|(location, _)| window.may_hold(Path::new(location)))
        .map(|(location, size)| PlanInput { location, size })
        .collect();
    let files_pruned = before - inputs.len();
    if inputs.is_empty() {
        bail!("no pairs to analyze in {}: every pair file is outside the window", args.inputs.join(" "));
    }
    let mut selection = Selection { window, warm_end: Default::default() };
    let warmup = args.warmup.filter(|w| !w.is_zero());
    if let Some(warmup) = warmup {
        let fetched = fetch_files(&inputs.iter().map(|i| i.location.clone()).collect::<Vec<_>>())?;
        selection.warm_end = pipeline::warm_ends(&fetched.local_paths(), warmup)?;
    }
    let sizes: Vec<u64> = inputs.iter().map(|i| i.size).collect();
    let plan = Plan {
        format: shadowdiff_analyze::pipeline::shard::PLAN_FORMAT.to_owned(),
        version: VERSION,
        id: String::new(),
        created_at: Utc::now().trunc_subsecs(0),
        input_names: args.inputs.clone(),
        policy: PlanPolicy {
            file: args.policy.as_ref().map(|p| p.display().to_string()),
            digest: policy_digest(&policy_bytes),
            fail_on: args.fail_on.clone(),
            max_decoded_body: args.max_decoded_body,
            sequential: args.sequential,
        },
        seed: args.seed,
        warmup_runs: selection.warm_end.len(),
        selection,
        warmup_seconds: warmup.map(|w| w.as_secs_f64()),
        files_pruned,
        shards: split(&sizes, args.shards),
        inputs,
    }
    .seal();
    let mut text = serde_json::to_vec_pretty(&plan)?;
    text.push(b'\n');
    files::write(&args.out, &text).with_context(|| format!("cannot write the plan to {}", args.out))?;
    if !args.quiet {
        let bytes: u64 = sizes.iter().sum();
        let busiest = plan.shards.iter().map(|r| sizes[r.clone()].iter().sum::<u64>()).max().unwrap_or(0);
        println!(
            "plan     {} (id {})\ninputs   {} files, {:.1} MB{}\nshards   {}: at most {} files and {:.1} MB each",
            args.out,
            plan.id,
            plan.inputs.len(),
            bytes as f64 / 1e6,
            if files_pruned > 0 { format!(" ({files_pruned} outside the window, left out)") } else { String::new() },
            plan.shards.len(),
            plan.shards.iter().map(|r| r.len()).max().unwrap_or(0),
            busiest as f64 / 1e6,
        );
        println!(
            "next     shadowdiff analyze --plan {} --shard I --partial-out URL   (I = 0 … {}), then shadowdiff merge --plan {} --partials URL --out DIR",
            args.out,
            plan.shards.len() - 1,
            args.out
        );
    }
    Ok(Exit::Pass)
}

/// `analyze --plan PLAN --shard I --partial-out URL`.
pub fn analyze_shard(
    plan_location: &str,
    index: usize,
    partial_out: &str,
    policy: Option<&Path>,
    quiet: bool,
) -> anyhow::Result<Exit> {
    let plan = read_plan(plan_location)?;
    if index >= plan.shards.len() {
        bail!(
            "--shard {index} is past the plan's {} shards (0 … {}) in {plan_location}",
            plan.shards.len(),
            plan.shards.len() - 1
        );
    }
    let policy = plan_policy(&plan, plan_location, policy)?;
    let locations = plan.shard_inputs(index);
    let fetched = fetch_files(&locations)?;
    let scratch = tempfile::Builder::new()
        .prefix("shadowdiff-shard-")
        .tempdir()
        .context("cannot create a scratch directory for the shard's partial")?;
    let mut opts = Options::new(scratch.path());
    opts.seed = plan.seed;
    opts.window = plan.selection.window;
    let part = pipeline::map(fetched.local_paths(), plan.selection.clone(), &policy, &opts, scratch.path())?;
    let (analyzed, kept) = (part.state.pairs_analyzed, part.state.kept);
    let file = PartialFile {
        format: PARTIAL_FORMAT.to_owned(),
        version: VERSION,
        plan_id: plan.id.clone(),
        shard: index,
        shards: plan.shards.len(),
        inputs: locations.clone(),
        state: part.state,
    };
    let dir = files::join(partial_out, &shard_dir(index));
    let marker = files::join(&dir, PARTIAL_FILE);
    // A re-run replaces the partial: its marker goes first, so a half-replaced partial is
    // never taken for a complete one.
    if let shadowdiff_format::store::Location::Local(path) = shadowdiff_format::store::Location::parse(&marker)?
        && path.exists()
    {
        std::fs::remove_file(&path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    files::put(&part.pairs, &files::join(&dir, RAW_PAIRS_FILE))?;
    files::put(&part.diffs, &files::join(&dir, RAW_DIFFS_FILE))?;
    let json = serde_json::to_vec(&file)?;
    files::write(&marker, &json).with_context(|| format!("cannot write {marker}"))?;
    if !quiet {
        println!(
            "shard    {index} of {} ({} files): {analyzed} pairs analyzed of {kept} kept\npartial  {dir}",
            plan.shards.len(),
            locations.len()
        );
    }
    Ok(Exit::Pass)
}

pub fn merge(args: MergeArgs) -> anyhow::Result<Exit> {
    // analyze runs on plain threads (rayon, its pipeline), without a tokio clock.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    shadowdiff_format::store::Location::local_only("--out", &args.out.to_string_lossy(), "the analysis")?;
    if args.out.exists() && !args.out.is_dir() {
        bail!("--out {} exists and is not a directory", args.out.display());
    }
    let plan = read_plan(&args.plan)?;
    let policy = plan_policy(&plan, &args.plan, args.policy.as_deref())?;
    let partials = read_partials(&plan, &args.plan, &args.partials)?;
    let analyzed: u64 = partials.iter().map(|(_, p)| p.state.pairs_analyzed).sum();
    if analyzed == 0 {
        bail!(shadowdiff_analyze::Error::Empty { input: plan.input_names.join(" ") });
    }
    let scratch = tempfile::Builder::new()
        .prefix("shadowdiff-merge-")
        .tempdir()
        .context("cannot create a scratch directory for the partials")?;
    let mut downloads = Vec::new();
    let mut parts = Vec::with_capacity(partials.len());
    for (dir, p) in partials {
        let local = scratch.path().join(shard_dir(p.shard));
        let (pairs, diffs) = (local.join(RAW_PAIRS_FILE), local.join(RAW_DIFFS_FILE));
        downloads.push((files::join(&dir, RAW_PAIRS_FILE), pairs.clone()));
        downloads.push((files::join(&dir, RAW_DIFFS_FILE), diffs.clone()));
        parts.push(Partial { state: p.state, pairs, diffs, examples: None });
    }
    files::get_all(&downloads).context("a partial is incomplete")?;
    let mut opts = Options::new(&args.out);
    opts.seed = plan.seed;
    opts.window = plan.selection.window;
    opts.warmup = plan.warmup_seconds.map(std::time::Duration::from_secs_f64);
    let context = MergeContext { files_pruned: plan.files_pruned, warmup_runs: plan.warmup_runs };
    let progress = Bar::new(args.quiet);
    let analysis = pipeline::merge(parts, &policy, &opts, &context, &progress)?;
    progress.phase("judging");
    let verdict = judge(&analysis, &policy);
    conclude(verdict, &args.out, args.quiet, started, progress)
}

fn read_plan(location: &str) -> anyhow::Result<Plan> {
    let bytes = files::read(location)?
        .with_context(|| format!("there is no plan at {location}: make one with `shadowdiff plan`"))?;
    Plan::parse(&bytes, location).map_err(anyhow::Error::msg)
}

/// The policy the plan was made with: the file given here, checked against the plan's digest,
/// with the plan's overrides.
fn plan_policy(plan: &Plan, location: &str, given: Option<&Path>) -> anyhow::Result<Policy> {
    let (bytes, mut policy) = match given {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("cannot read the policy {}", path.display()))?,
            Policy::from_file(path)?,
        ),
        None => (Vec::new(), Policy::default()),
    };
    if policy_digest(&bytes) != plan.policy.digest {
        match (&plan.policy.file, given) {
            (Some(file), None) => {
                bail!("the plan {location} was made with the policy {file}: give the same file with --policy")
            }
            (None, Some(path)) => bail!(
                "the plan {location} was made with the built-in policy, not {}: leave --policy out, or make the plan with it",
                path.display()
            ),
            (file, _) => bail!(
                "--policy {} is not the policy the plan {location} was made with ({}): its digest differs",
                given.map(|p| p.display().to_string()).unwrap_or_default(),
                file.as_deref().unwrap_or("the built-in policy")
            ),
        }
    }
    match plan.policy.fail_on.as_deref() {
        Some("warn") => policy.fail_on = FailOn::Warn,
        Some("fail") => policy.fail_on = FailOn::Fail,
        _ => {}
    }
    if let Some(cap) = plan.policy.max_decoded_body {
        policy.rules.max_decoded_body = cap;
    }
    if plan.policy.sequential {
        policy.sequential = true;
    }
    Ok(policy)
}

/// Every shard's partial, in shard order, with the location of its directory; a missing,
/// duplicated, incomplete or foreign one is an error naming it.
fn read_partials(plan: &Plan, plan_location: &str, location: &str) -> anyhow::Result<Vec<(String, PartialFile)>> {
    let listed = files::list(location)?;
    let mut found: Vec<Option<(String, PartialFile)>> = (0..plan.shards.len()).map(|_| None).collect();
    for (name, _) in &listed {
        let Some(dir) = name.strip_suffix(PARTIAL_FILE).map(|d| d.trim_end_matches('/')) else { continue };
        let at = files::join(location, name);
        let bytes = files::read(&at)?.with_context(|| format!("{at} went away while merging"))?;
        let p: PartialFile = serde_json::from_slice(&bytes)
            .ok()
            .filter(|p: &PartialFile| p.format == PARTIAL_FORMAT)
            .with_context(|| format!("{at} is not a shadowdiff partial"))?;
        if p.version != VERSION {
            bail!("{at} has version {}, and this build reads version {VERSION}: analyze that shard again", p.version);
        }
        if p.plan_id != plan.id {
            bail!(
                "{at} is a partial of another plan (plan id {}; {plan_location} has id {}): remove it or merge it with its own plan",
                p.plan_id,
                plan.id
            );
        }
        if p.shard >= plan.shards.len() || dir != shard_dir(p.shard) {
            bail!("{at} says it is shard {} but sits in {dir}/: it was moved or copied", p.shard);
        }
        if p.inputs != plan.shard_inputs(p.shard) {
            bail!("{at} read other pair files than the plan gives shard {}: analyze that shard again", p.shard);
        }
        let slot = &mut found[p.shard];
        if let Some((other, _)) = slot {
            bail!("shard {} has two partials under {location}: {other} and {dir}", p.shard);
        }
        *slot = Some((files::join(location, dir), p));
    }
    let missing: Vec<String> =
        found.iter().enumerate().filter(|(_, f)| f.is_none()).map(|(i, _)| i.to_string()).collect();
    if !missing.is_empty() {
        bail!(
            "{} of {} shards have no partial under {location}: {} (run `shadowdiff analyze --plan {plan_location} --shard I --partial-out {location}` for each)",
            missing.len(),
            plan.shards.len(),
            missing.join(", ")
        );
    }
    Ok(found.into_iter().flatten().collect())
}
