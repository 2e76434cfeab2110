//! A running capture agent: its listeners, its recorder, and the shutdown that drains them.
//!
//! Shutdown, in order: stop accepting; end the recordings of open-ended bodies still coming
//! (event streams: their pairs are written cut, not dropped); give open connections until the
//! drain deadline to finish their requests (responses keep streaming); give pairs still waiting
//! for a mirror the rest of the deadline; close the recorder, which counts whatever is still in
//! flight as dropped and closes the last file. Every pair whose response reached the client is then on disk or counted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::Config;
use crate::counters::Counters;
use crate::error::{Error, Result};
use crate::metrics::Admin;
use crate::proxy::Proxy;
use crate::recorder::Recorder;
use crate::server::{self, Peer};
use shadowdiff_format::retain::{self, RetainStats};
use shadowdiff_format::store::{DrainReport, Store, Uploader};
use shadowdiff_format::{CloseHook, WriterConfig, WriterStats};

/// What a finished agent did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The final counters, as stored in the last file's metadata.
    pub counters: BTreeMap<String, u64>,
    pub writer: WriterStats,
    /// Whether every connection and pair finished before the drain deadline.
    pub drained: bool,
    /// With an object-store --out: what the spool still holds after the upload drain.
    pub upload: Option<DrainReport>,
}

/// A running agent. [`shutdown`](Self::shutdown) drains it; dropping it stops it without waiting.
#[derive(Debug)]
pub struct Agent {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    counters: Arc<Counters>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<Report>>>,
}

impl Agent {
    /// Bind the listeners, start the writer, and serve in background tasks.
    pub async fn start(config: Config) -> Result<Self> {
        let counters = Counters::new();
        let tls = config.tls.as_ref().map(server::tls_acceptor).transpose()?;
        let listener = bind(config.listen).await?;
        let addr = listener.local_addr().map_err(|source| Error::Listen { addr: config.listen, source })?;
        let admin_listener = match config.admin_listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        let admin_addr = admin_listener.as_ref().and_then(|l| l.local_addr().ok());

        let mut wc = WriterConfig::new(&config.out, &config.agent);
        wc.rotate_rows = config.recorder.rotate_rows;
        wc.rotate_bytes = config.recorder.rotate_bytes;
        wc.rotate_age = config.recorder.rotate_age;
        wc.row_group_rows = config.recorder.row_group_rows;
        wc.zstd_level = config.recorder.zstd_level;
        wc.summary = config.summary();
        wc.counters = Some(counters.source());
        let reflection = config.grpc_reflection.then(|| Arc::new(crate::reflection::Learnt::default()));
        wc.metadata = reflection.as_ref().map(crate::reflection::Learnt::source);
        let uploader = match &config.upload {
            Some(settings) => {
                let store = Store::open(&settings.url)?;
                store.check().await?;
                counters.uploading.store(true, Ordering::Relaxed);
                let uploader = Uploader::start(store, settings.clone(), Arc::clone(&counters.upload))?;
                wc.on_close = Some(uploader.hook());
                Some(uploader)
            }
            None => None,
        };
        if let Some(keep) = config.retain {
            wc.on_close = Some(retention(&config.out, keep, Arc::clone(&counters.retain)));
        }
        let recorder = Recorder::start(wc, config.recorder.queue, config.recorder.queue_bytes, Arc::clone(&counters))?;
        let proxy = Arc::new(Proxy::new(&config, Arc::clone(&recorder), Arc::clone(&counters), reflection)?);

        let (stop, stop_rx) = watch::channel(false);
        let draining = Arc::new(AtomicBool::new(false));
        let (admin_stop, admin_stop_rx) = watch::channel(false);
        let admin_task = admin_listener.map(|l| {
            let p = Arc::clone(&proxy);
            let admin = Admin {
                counters: Arc::clone(&counters),
                draining: Arc::clone(&draining),
                mirrors_in_flight: Arc::new(move || p.mirrors_in_flight()),
            };
            tokio::spawn(server::serve(
                l,
                None,
                move |req, _peer| admin.clone().handle(req),
                admin_stop_rx,
                Duration::from_secs(1),
            ))
        });

        let drain = config.drain_timeout;
        let limits = config.listener.clone();
        let c = Arc::clone(&counters);
        let task = tokio::spawn(async move {
            let handler = {
                let proxy = Arc::clone(&proxy);
                move |req, peer: Peer| Arc::clone(&proxy).handle(req, peer)
            };
            let mut stopped = stop_rx.clone();
            let draining_flag = Arc::clone(&draining);
            let cut_recordings = proxy.draining.clone();
            tokio::spawn(async move {
                let _ = stopped.wait_for(|s| *s).await;
                draining_flag.store(true, Ordering::Relaxed);
                // Bodies still coming (event streams) end their recordings now, so their pairs
                // are written within the drain deadline; the clients' streams go on until it.
                cut_recordings.cancel();
            });
            // The deadline starts when the stop signal arrives, measured inside `serve`.
            let started = tokio::spawn(server::serve_with_limits(
                listener,
                tls,
                handler,
                stop_rx.clone(),
                drain,
                limits,
                Arc::clone(&c.listener),
            ));
            let mut until_stop = stop_rx;
            let _ = until_stop.wait_for(|s| *s).await;
            let deadline = Instant::now() + drain;
            let connections_done = started.await.unwrap_or(false);
            proxy.tracker.close();
            let pairs_done = tokio::time::timeout_at(deadline, proxy.tracker.wait()).await.is_ok();
            let rec = Arc::clone(&recorder);
            let writer = tokio::task::spawn_blocking(move || rec.close())
                .await
                .map_err(|_| shadowdiff_format::Error::WriterClosed)?;
            admin_stop.send_replace(true);
            if let Some(t) = admin_task {
                let _ = t.await;
            }
            // Uploads go on after the last file closed, until the spool is empty or the deadline.
            let upload = match uploader {
                Some(u) => Some(u.finish().await),
                None => None,
            };
            let writer = writer?;
            let counters = c.snapshot();
            tracing::info!(
                seen = counters["seen"],
                recorded = counters["recorded"],
                dropped = counters["dropped"],
                skipped = counters["skipped"],
                files = writer.files.len(),
                "Capture stopped."
            );
            Ok(Report { counters, writer, drained: connections_done && pairs_done, upload })
        });
        Ok(Self { addr, admin_addr, counters, stop, task: Some(task) })
    }

    /// The proxy's address (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// Stop accepting, drain, close every file, and report.
    pub async fn shutdown(mut self) -> Result<Report> {
        self.stop.send_replace(true);
        match self.task.take() {
            Some(t) => t.await.map_err(|_| shadowdiff_format::Error::WriterClosed)?,
            None => Err(shadowdiff_format::Error::WriterClosed.into()),
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|source| Error::Listen { addr, source })
}

/// The writer's close hook for `--retain`: prune old partitions at start and then at most once a
/// minute, on the writer's thread (deleting a few files is quicker than encoding a row group).
fn retention(dir: &std::path::Path, keep: Duration, stats: Arc<RetainStats>) -> CloseHook {
    let cutoff = move || chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    retain::prune(dir, cutoff(), &stats);
    let dir = dir.to_owned();
    // The writer's thread has no tokio clock; its file ages use the OS clock too.
    #[allow(clippy::disallowed_methods)]
    let last = std::sync::Mutex::new(std::time::Instant::now());
    Arc::new(move |_| {
        let mut last = last.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.elapsed() >= Duration::from_secs(60) {
            retain::prune(&dir, cutoff(), &stats);
            #[allow(clippy::disallowed_methods)]
            let now = std::time::Instant::now();
            *last = now;
        }
    })
}
