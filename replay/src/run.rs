//! A whole replay: check the inputs, start the source reader and the writer, drive, close.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use shadowdiff_format::store::{Store, UploadSettings, UploadStats, Uploader};
use shadowdiff_format::{
    BaselineOrigin, PairReader, PairRecord, PairWriter, ReadOptions, Side, WriterConfig, WriterStats, resolve_inputs,
    schema,
};
use tokio::sync::mpsc;

use crate::driver::{DriverConfig, Progress, SourceItem, Summary, drive};
use crate::error::{Error, Result};
use crate::source::{self, Format};
use crate::target::{HttpTargets, Rewrites};

/// Everything a replay needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Pair files, directories, globs, `.har` or `.gor` files.
    pub inputs: Vec<String>,
    /// The inputs as the user named them, for the files' metadata, when `inputs` are local
    /// copies (fetched from an object store); empty: `inputs` themselves.
    pub input_names: Vec<String>,
    /// Targets by side; without a baseline the run is canary-only and keeps the recorded
    /// baseline responses.
    pub targets: Vec<(Side, String)>,
    /// The directory the writer writes to: the output directory, or the spool when files are
    /// uploaded to an object store (`upload`).
    pub out: PathBuf,
    pub upload: Option<UploadSettings>,
    pub driver: DriverConfig,
    /// Repeat the input until `driver.duration` ends (or forever, until stopped).
    pub repeat: bool,
    pub timeout: Duration,
    pub max_body: usize,
    pub rewrites: Rewrites,
}

impl Plan {
    pub fn canary_only(&self) -> bool {
        !self.targets.iter().any(|(s, _)| *s == Side::Baseline)
    }
}

enum Input {
    Pairs(Vec<PathBuf>),
    Recorded(Format, PathBuf),
}

/// Resolve and check every input before anything is sent: a bad file fails the run at once.
fn resolve(inputs: &[String]) -> Result<Vec<Input>> {
    let mut out = Vec::new();
    for input in inputs {
        let ext = Path::new(input).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("har") => out.push(Input::Recorded(Format::Har, PathBuf::from(input))),
            Some("gor") => out.push(Input::Recorded(Format::Gor, PathBuf::from(input))),
            _ => {
                let files = resolve_inputs(&[input])?;
                PairReader::check_all(&files)?;
                out.push(Input::Pairs(files));
            }
        }
    }
    Ok(out)
}

/// Read the inputs on a blocking thread, in order, once or repeatedly.
/// The columns a replay reads: the request, and the recorded baseline (all of it when it is kept,
/// else only its status, for `--status`). Response bodies of other sides are never decompressed.
fn columns(keep_baseline: bool) -> Vec<&'static str> {
    let mut c = vec![
        schema::PAIR_ID,
        schema::CAPTURED_AT,
        schema::AGENT,
        schema::METHOD,
        schema::PATH,
        schema::QUERY,
        schema::REQUEST_HEADERS,
        schema::REQUEST_BODY,
        schema::REQUEST_BODY_TRUNCATED,
        schema::BASELINE.status,
    ];
    if keep_baseline {
        let b = &schema::BASELINE;
        c.extend([b.headers, b.body, b.body_truncated, b.latency_us, b.ttfb_us, b.error]);
    }
    c
}

fn spawn_source(
    inputs: Vec<Input>,
    agent: String,
    repeat: bool,
    keep_baseline: bool,
) -> mpsc::Receiver<Result<SourceItem>> {
    let (tx, rx) = mpsc::channel(8);
    let columns = columns(keep_baseline);
    std::thread::spawn(move || {
        let send = |item: Result<SourceItem>| tx.blocking_send(item).is_ok();
        loop {
            for input in &inputs {
                match input {
                    Input::Recorded(format, path) => match source::read(*format, path, &agent) {
                        Ok(mut records) => {
                            records.sort_by_key(|r| r.captured_at);
                            for chunk in records.chunks(1024) {
                                if !send(Ok(SourceItem::Records(chunk.to_vec()))) {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            send(Err(e));
                            return;
                        }
                    },
                    Input::Pairs(files) => {
                        let options = ReadOptions { batch_size: 1024, columns: Some(columns.clone()) };
                        for batch in PairReader::from_files(files.clone(), options) {
                            let records = match batch.and_then(|b| b.records()) {
                                Ok(r) => r,
                                Err(e) => {
                                    send(Err(e.into()));
                                    return;
                                }
                            };
                            if !send(Ok(SourceItem::Records(records))) {
                                return;
                            }
                        }
                    }
                }
            }
            if !send(Ok(SourceItem::PassEnd)) || !repeat {
                return;
            }
        }
    });
    rx
}

/// Run a replay to the end (or until `stop`). Every pair sent is on disk when this returns.
pub async fn replay(
    plan: Plan,
    progress: Arc<Progress>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(Summary, WriterStats)> {
    plan.driver.pacing.validate().map_err(Error::Setting)?;
    let targets =
        HttpTargets::new(&plan.targets, plan.rewrites.clone(), plan.timeout, plan.max_body).map_err(Error::Setting)?;
    let inputs = resolve(&plan.inputs)?;

    let mut wc = WriterConfig::new(&plan.out, &plan.driver.agent);
    wc.baseline_origin = if plan.canary_only() { BaselineOrigin::Recorded } else { BaselineOrigin::Measured };
    wc.summary = serde_json::json!({
        "mode": if plan.canary_only() { "canary-only" } else { "all-targets" },
        "inputs": if plan.input_names.is_empty() { &plan.inputs } else { &plan.input_names },
        "targets": plan.targets.iter().map(|(s, u)| (s.name().to_owned(), u.clone())).collect::<std::collections::BTreeMap<_, _>>(),
        "pacing": format!("{:?}", plan.driver.pacing),
        "concurrency": plan.driver.concurrency,
        "allow_mutations": plan.driver.filters.allow_mutations,
    });
    let uploads = Arc::new(UploadStats::default());
    let uploader = match &plan.upload {
        Some(settings) => {
            let store = Store::open(&settings.url)?;
            store.check().await?;
            // Files a quarter of the budget at most, so the budget holds several and drops one
            // at a time.
            if let Some(max) = settings.max_spool {
                wc.rotate_bytes = wc.rotate_bytes.min(max / 4).max(1);
            }
            let uploader = Uploader::start(store, settings.clone(), Arc::clone(&uploads))?;
            wc.on_close = Some(uploader.hook());
            Some(uploader)
        }
        None => None,
    };
    let p = Arc::clone(&progress);
    let u = plan.upload.is_some().then(|| Arc::clone(&uploads));
    wc.counters = Some(Arc::new(move || {
        let mut counters = std::collections::BTreeMap::from([
            ("read".to_owned(), p.read.load(Ordering::Relaxed)),
            ("sent".to_owned(), p.sent.load(Ordering::Relaxed)),
            ("recorded".to_owned(), p.done.load(Ordering::Relaxed)),
            ("skipped".to_owned(), p.skipped.load(Ordering::Relaxed)),
        ]);
        if let Some(u) = &u {
            counters.extend(u.snapshot());
        }
        counters
    }));
    let mut writer = PairWriter::new(wc)?;
    // A few batches of room: enough to keep the writer busy while workers fill the next one.
    let (sink, mut pairs) = mpsc::channel::<Vec<PairRecord>>(4);
    let writer_thread = std::thread::spawn(move || -> Result<WriterStats> {
        while let Some(batch) = pairs.blocking_recv() {
            for pair in batch {
                writer.write(pair)?;
            }
            writer.maybe_rotate()?;
        }
        Ok(writer.close()?)
    });

    let source = spawn_source(inputs, plan.driver.agent.clone(), plan.repeat, plan.driver.keep_recorded_baseline);
    let driven = drive(source, Arc::new(targets), plan.driver.clone(), sink, progress, stop).await;
    let written = tokio::task::spawn_blocking(move || writer_thread.join())
        .await
        .map_err(|e| Error::Setting(format!("the pair writer stopped unexpectedly: {e}")))?
        .map_err(|_| Error::Setting("the pair writer panicked".into()))?;
    let upload = match uploader {
        Some(u) => Some(u.finish().await),
        None => None,
    };
    let stats = written?;
    let mut summary = driven?;
    summary.upload = upload;
    Ok((summary, stats))
}
