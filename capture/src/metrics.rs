//! The admin listener: `/metrics` in the Prometheus text format (version 0.0.4) and `/healthz`
//! (200 while serving, 503 once draining, so a load balancer stops sending traffic).
//!
//! The exposition is `prometheus-client`'s: [`Counters`] stays the one place that counts (plain
//! atomics the proxy bumps and the writer copies into every file's metadata), and one
//! [`Collector`] reads them on each scrape and hands them to the crate's encoder, which owns the
//! format (escaping, `_total` suffixes, histogram buckets, `le` spelling).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet, prometheus_text};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::body::ProxyBody;
use crate::counters::{ConnClose, Counters, DropReason, LATENCY_BUCKETS, MirrorSkip, SkipReason};
use shadowdiff_format::schema::Side;

/// How the admin handler learns how many mirrors are running now.
pub type InFlight = Arc<dyn Fn() -> usize + Send + Sync>;

/// What the admin handler reads.
#[derive(Clone)]
pub struct Admin {
    pub counters: Arc<Counters>,
    pub draining: Arc<AtomicBool>,
    /// Mirrors running now.
    pub mirrors_in_flight: InFlight,
}

impl Admin {
    pub async fn handle(self, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        let (status, ctype, body) = match (req.method(), req.uri().path()) {
            (&Method::GET, "/metrics") => (StatusCode::OK, prometheus_text::CONTENT_TYPE, self.render()),
            (&Method::GET, "/healthz") if self.draining.load(Ordering::Relaxed) => {
                (StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", "draining\n".to_owned())
            }
            (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain; charset=utf-8", "ok\n".to_owned()),
            _ => {
                (StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "not found: try /metrics or /healthz\n".to_owned())
            }
        };
        let mut r = Response::new(ProxyBody::full(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
        Ok(r)
    }

    /// The exposition served at `/metrics`.
    pub fn render(&self) -> String {
        render(&registry(Arc::clone(&self.counters), Arc::clone(&self.mirrors_in_flight)))
    }
}

/// A registry holding the agent's one collector. It is two small allocations, cheap enough to
/// build on each scrape, so [`Admin`] stays the three handles the agent gives it.
pub fn registry(counters: Arc<Counters>, mirrors_in_flight: InFlight) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(AgentCollector { counters, mirrors_in_flight }));
    registry
}

/// The Prometheus text exposition (version 0.0.4) of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut text = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail, and the collector fails only when the encoder does.
    let _ = prometheus_text::encode(&mut text, registry);
    text
}

/// Reads [`Counters`] (and the mirrors running now) on each scrape. Counter names are given
/// without `_total`: the encoder appends it, so the series keep their documented names.
struct AgentCollector {
    counters: Arc<Counters>,
    mirrors_in_flight: InFlight,
}

impl std::fmt::Debug for AgentCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCollector").finish_non_exhaustive()
    }
}

impl Collector for AgentCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let c = &*self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters: [(&str, &str, u64); 9] = [
            ("shadowdiff_requests", "Client requests received.", load(&c.seen)),
            ("shadowdiff_pairs_mirrored", "Captured requests sent to the canary.", load(&c.mirrored)),
            ("shadowdiff_pairs_recorded", "Pairs in pair files closed and renamed.", load(&c.recorded)),
            ("shadowdiff_pairs_committed", "Pairs in closed pair files.", load(&c.committed)),
            ("shadowdiff_files_written", "Pair files closed.", load(&c.files)),
            ("shadowdiff_upgrades", "Protocol upgrades passed to the baseline only.", load(&c.upgrades)),
            ("shadowdiff_writer_errors", "Pair writer failures.", load(&c.writer_errors)),
            (
                "shadowdiff_redaction_withheld",
                "Pairs with a body withheld because it could not be parsed for redaction.",
                load(&c.redaction_withheld),
            ),
            (
                "shadowdiff_streams_cut",
                "Response bodies still coming when their recording ended (duration cap or idle stream).",
                load(&c.streams_cut),
            ),
        ];
        let u = &*c.upload;
        let storage: [(&str, &str, u64); 8] = [
            ("shadowdiff_files_uploaded", "Pair files uploaded to the object store.", load(&u.files_uploaded)),
            ("shadowdiff_pairs_uploaded", "Pairs in pair files uploaded to the object store.", load(&u.pairs_uploaded)),
            ("shadowdiff_upload_failures", "Upload attempts that failed (each is retried).", load(&u.upload_failures)),
            (
                "shadowdiff_spool_dropped_files",
                "Pair files deleted from the spool before upload to keep it within --max-spool.",
                load(&u.dropped_files),
            ),
            (
                "shadowdiff_spool_dropped_pairs",
                "Pairs in pair files deleted from the spool before upload (--max-spool).",
                load(&u.dropped_pairs),
            ),
            ("shadowdiff_retain_files", "Pair files deleted by --retain.", load(&c.retain.files)),
            ("shadowdiff_retain_pairs", "Pairs in pair files deleted by --retain.", load(&c.retain.pairs)),
            ("shadowdiff_retain_bytes", "Bytes of pair files deleted by --retain.", load(&c.retain.bytes)),
        ];
        for (name, help, value) in counters.into_iter().chain(storage) {
            encoder
                .encode_descriptor(name, help, None, MetricType::Counter)?
                .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
        }
        let l = &*c.listener;
        encoder
            .encode_descriptor(
                "shadowdiff_client_connections",
                "Client connections accepted.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&load(&l.accepted), None)?;
        encoder
            .encode_descriptor(
                "shadowdiff_client_connections_held",
                "Client connections held unread for --abuse-penalty before being served, their address having had a connection closed for HTTP/2 abuse just before.",
                None,
                MetricType::Counter,
            )?
            .encode_counter::<NoLabelSet, _, u64>(&load(&l.held), None)?;
        counter(
            &mut encoder,
            "shadowdiff_client_connections_closed",
            "Client connections closed, by reason (refused at --max-connections, idle, header_timeout, http2_abuse …).",
            ConnClose::ALL.map(|r| ([("reason", r.as_str())], l.closed_count(r))),
        )?;
        counter(
            &mut encoder,
            "shadowdiff_pairs_dropped",
            "Captured pairs that never reached the writer.",
            DropReason::ALL.map(|r| ([("reason", r.as_str())], c.dropped_count(r))),
        )?;
        counter(
            &mut encoder,
            "shadowdiff_requests_skipped",
            "Requests served but not captured.",
            SkipReason::ALL.map(|r| ([("reason", r.as_str())], c.skipped_count(r))),
        )?;
        counter(
            &mut encoder,
            "shadowdiff_mirrors_skipped",
            "Captured pairs recorded with canary_error=\"skipped\".",
            MirrorSkip::ALL.map(|r| ([("reason", r.as_str())], c.mirror_skipped_count(r))),
        )?;

        let mirrors_in_flight = i64::try_from((self.mirrors_in_flight)()).unwrap_or(i64::MAX);
        let gauge = |a: &AtomicU64| i64::try_from(load(a)).unwrap_or(i64::MAX);
        let gauges: [(&str, &str, i64); 8] = [
            ("shadowdiff_client_connections_open", "Client connections open.", l.open.load(Ordering::Relaxed)),
            (
                "shadowdiff_requests_in_flight",
                "Client requests waiting for their response head.",
                c.requests_in_flight.load(Ordering::Relaxed),
            ),
            (
                "shadowdiff_pairs_pending",
                "Captured pairs not yet handed to the writer.",
                c.pairs_pending.load(Ordering::Relaxed),
            ),
            ("shadowdiff_writer_queue_depth", "Pairs waiting in the writer's queue.", c.queued.load(Ordering::Relaxed)),
            (
                "shadowdiff_pairs_writing",
                "Pairs in the writer's open file: recorded once it closes, dropped if it fails.",
                c.writing.load(Ordering::Relaxed).min(i64::MAX as u64) as i64,
            ),
            ("shadowdiff_mirrors_in_flight", "Mirror requests running.", mirrors_in_flight),
            ("shadowdiff_spool_files", "Closed pair files waiting in the spool for upload.", gauge(&u.spool_files)),
            ("shadowdiff_spool_bytes", "Bytes of closed pair files waiting in the spool.", gauge(&u.spool_bytes)),
        ];
        for (name, help, value) in gauges {
            encoder.encode_descriptor(name, help, None, MetricType::Gauge)?.encode_gauge(&value)?;
        }

        let mut latency = encoder.encode_descriptor(
            "shadowdiff_upstream_latency_seconds",
            "Request sent to last body byte, per side.",
            None,
            MetricType::Histogram,
        )?;
        for side in Side::ALL {
            let (cumulative, sum, count) = c.latency(side).snapshot();
            // The encoder takes each bucket's own count and accumulates them itself; `+Inf` is
            // passed explicitly so it comes from the buckets, as `_count` comes from the count.
            let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
            let mut below = 0;
            let buckets: Vec<(f64, u64)> = bounds
                .zip(cumulative)
                .map(|(le, up_to)| {
                    let own = up_to.saturating_sub(below);
                    below = up_to;
                    (le, own)
                })
                .collect();
            latency
                .encode_family(&[("side", side.name())])?
                .encode_histogram::<NoLabelSet>(sum, count, &buckets, None)?;
        }

        let errors = Side::ALL.into_iter().flat_map(|side| {
            c.side_errors(side).into_iter().map(move |(kind, n)| ([("side", side.name()), ("kind", kind)], n))
        });
        counter(
            &mut encoder,
            "shadowdiff_upstream_errors",
            "Upstream calls that failed, per side and error kind.",
            errors,
        )
    }
}

/// One labelled counter family: its descriptor, then a sample per label set.
fn counter<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        family.encode_family(&labels)?.encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn exposition(c: &Arc<Counters>, mirrors_in_flight: usize) -> String {
        render(&registry(Arc::clone(c), Arc::new(move || mirrors_in_flight)))
    }

    #[test]
    fn exposition_is_well_formed() {
        let c = Counters::new();
        c.seen.fetch_add(3, Ordering::Relaxed);
        c.dropped(DropReason::QueueFull);
        c.observe_side(Side::Canary, Some(Duration::from_millis(3)), Some("timeout"));
        let text = exposition(&c, 2);
        assert!(text.contains("shadowdiff_requests_total 3\n"), "{text}");
        assert!(text.contains("shadowdiff_pairs_dropped_total{reason=\"queue_full\"} 1\n"));
        assert!(text.contains("shadowdiff_upstream_latency_seconds_bucket{side=\"canary\",le=\"0.005\"} 1\n"));
        assert!(text.contains("shadowdiff_upstream_latency_seconds_bucket{side=\"canary\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("shadowdiff_upstream_latency_seconds_count{side=\"canary\"} 1\n"));
        assert!(text.contains("shadowdiff_upstream_errors_total{side=\"canary\",kind=\"timeout\"} 1\n"));
        assert!(text.contains("shadowdiff_mirrors_in_flight 2\n"));
        // Every sample line belongs to a declared family.
        let families: Vec<&str> =
            text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).filter_map(|l| l.split(' ').next()).collect();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap_or("");
            assert!(families.iter().any(|f| name.starts_with(f)), "{line}");
        }
    }

    /// The series docs/capture.md lists, with their types: dashboards and alerts depend on them.
    #[test]
    fn every_documented_series_keeps_its_name_and_type() {
        let text = exposition(&Counters::new(), 0);
        let types: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
        assert_eq!(
            types,
            [
                "shadowdiff_requests_total counter",
                "shadowdiff_pairs_mirrored_total counter",
                "shadowdiff_pairs_recorded_total counter",
                "shadowdiff_pairs_committed_total counter",
                "shadowdiff_files_written_total counter",
                "shadowdiff_upgrades_total counter",
                "shadowdiff_writer_errors_total counter",
                "shadowdiff_redaction_withheld_total counter",
                "shadowdiff_streams_cut_total counter",
                "shadowdiff_files_uploaded_total counter",
                "shadowdiff_pairs_uploaded_total counter",
                "shadowdiff_upload_failures_total counter",
                "shadowdiff_spool_dropped_files_total counter",
                "shadowdiff_spool_dropped_pairs_total counter",
                "shadowdiff_retain_files_total counter",
                "shadowdiff_retain_pairs_total counter",
                "shadowdiff_retain_bytes_total counter",
                "shadowdiff_client_connections_total counter",
                "shadowdiff_client_connections_held_total counter",
                "shadowdiff_client_connections_closed_total counter",
                "shadowdiff_pairs_dropped_total counter",
                "shadowdiff_requests_skipped_total counter",
                "shadowdiff_mirrors_skipped_total counter",
                "shadowdiff_client_connections_open gauge",
                "shadowdiff_requests_in_flight gauge",
                "shadowdiff_pairs_pending gauge",
                "shadowdiff_writer_queue_depth gauge",
                "shadowdiff_pairs_writing gauge",
                "shadowdiff_mirrors_in_flight gauge",
                "shadowdiff_spool_files gauge",
                "shadowdiff_spool_bytes gauge",
                "shadowdiff_upstream_latency_seconds histogram",
                "shadowdiff_upstream_errors_total counter",
            ]
        );
        assert!(!text.contains("# EOF"), "Prometheus 0.0.4 text, not OpenMetrics");
        let reasons = text.lines().filter(|l| l.starts_with("shadowdiff_pairs_dropped_total{")).count();
        assert_eq!(reasons, DropReason::ALL.len(), "a sample per reason, zero or not");
    }
}
