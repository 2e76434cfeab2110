//! The admin listener: `/metrics` in the Prometheus text format (version 0.0.4) and `/healthz`
//! (200 while serving, 503 once draining, so a load balancer stops sending traffic).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;

use crate::body::ProxyBody;
use crate::counters::{Counters, DropReason, LATENCY_BUCKETS, MirrorSkip, SkipReason};
use crate::record::schema::Side;

/// What the admin handler reads.
#[derive(Clone)]
pub struct Admin {
    pub counters: Arc<Counters>,
    pub draining: Arc<AtomicBool>,
    /// Mirrors running now.
    pub mirrors_in_flight: Arc<dyn Fn() -> usize + Send + Sync>,
}

impl Admin {
    pub async fn handle(self, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
        let (status, ctype, body) = match (req.method(), req.uri().path()) {
            (&Method::GET, "/metrics") => (StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", self.render()),
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

    pub fn render(&self) -> String {
        render(&self.counters, (self.mirrors_in_flight)())
    }
}

/// The Prometheus text exposition of every counter, gauge and histogram.
pub fn render(c: &Counters, mirrors_in_flight: usize) -> String {
    let mut o = String::with_capacity(8 * 1024);
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    };
    counter("shadowdiff_requests_total", "Client requests received.", load(&c.seen));
    counter("shadowdiff_pairs_mirrored_total", "Captured requests sent to the canary.", load(&c.mirrored));
    counter("shadowdiff_pairs_recorded_total", "Pairs accepted by the writer.", load(&c.recorded));
    counter("shadowdiff_pairs_committed_total", "Pairs in closed pair files.", load(&c.committed));
    counter("shadowdiff_files_written_total", "Pair files closed.", load(&c.files));
    counter("shadowdiff_upgrades_total", "Protocol upgrades passed to the baseline only.", load(&c.upgrades));
    counter("shadowdiff_writer_errors_total", "Pair writer failures.", load(&c.writer_errors));
    counter(
        "shadowdiff_redaction_withheld_total",
        "Pairs with a body withheld because it could not be parsed for redaction.",
        load(&c.redaction_withheld),
    );

    let _ = writeln!(o, "# HELP shadowdiff_pairs_dropped_total Captured pairs that never reached the writer.");
    let _ = writeln!(o, "# TYPE shadowdiff_pairs_dropped_total counter");
    for r in DropReason::ALL {
        let _ = writeln!(o, "shadowdiff_pairs_dropped_total{{reason=\"{}\"}} {}", r.as_str(), c.dropped_count(r));
    }
    let _ = writeln!(o, "# HELP shadowdiff_requests_skipped_total Requests served but not captured.");
    let _ = writeln!(o, "# TYPE shadowdiff_requests_skipped_total counter");
    for r in SkipReason::ALL {
        let _ = writeln!(o, "shadowdiff_requests_skipped_total{{reason=\"{}\"}} {}", r.as_str(), c.skipped_count(r));
    }
    let _ =
        writeln!(o, "# HELP shadowdiff_mirrors_skipped_total Captured pairs recorded with canary_error=\"skipped\".");
    let _ = writeln!(o, "# TYPE shadowdiff_mirrors_skipped_total counter");
    for r in MirrorSkip::ALL {
        let _ =
            writeln!(o, "shadowdiff_mirrors_skipped_total{{reason=\"{}\"}} {}", r.as_str(), c.mirror_skipped_count(r));
    }

    let mut gauge = |name: &str, help: &str, v: i64| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge(
        "shadowdiff_requests_in_flight",
        "Client requests waiting for their response head.",
        c.requests_in_flight.load(Ordering::Relaxed),
    );
    gauge(
        "shadowdiff_pairs_pending",
        "Captured pairs not yet handed to the writer.",
        c.pairs_pending.load(Ordering::Relaxed),
    );
    gauge("shadowdiff_writer_queue_depth", "Pairs waiting in the writer's queue.", c.queued.load(Ordering::Relaxed));
    gauge("shadowdiff_mirrors_in_flight", "Mirror requests running.", mirrors_in_flight as i64);

    let _ = writeln!(o, "# HELP shadowdiff_upstream_latency_seconds Request sent to last body byte, per side.");
    let _ = writeln!(o, "# TYPE shadowdiff_upstream_latency_seconds histogram");
    for side in Side::ALL {
        let (buckets, sum, count) = c.latency(side).snapshot();
        for (le, n) in LATENCY_BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()]).zip(&buckets) {
            let _ = writeln!(o, "shadowdiff_upstream_latency_seconds_bucket{{side=\"{side}\",le=\"{le}\"}} {n}");
        }
        let _ = writeln!(o, "shadowdiff_upstream_latency_seconds_sum{{side=\"{side}\"}} {sum}");
        let _ = writeln!(o, "shadowdiff_upstream_latency_seconds_count{{side=\"{side}\"}} {count}");
    }
    let _ = writeln!(o, "# HELP shadowdiff_upstream_errors_total Upstream calls that failed, per side and error kind.");
    let _ = writeln!(o, "# TYPE shadowdiff_upstream_errors_total counter");
    for side in Side::ALL {
        for (kind, n) in c.side_errors(side) {
            let _ = writeln!(o, "shadowdiff_upstream_errors_total{{side=\"{side}\",kind=\"{kind}\"}} {n}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn exposition_is_well_formed() {
        let c = Counters::new();
        c.seen.fetch_add(3, Ordering::Relaxed);
        c.dropped(DropReason::QueueFull);
        c.observe_side(Side::Canary, Some(Duration::from_millis(3)), Some("timeout"));
        let text = render(&c, 2);
        assert!(text.contains("shadowdiff_requests_total 3\n"));
        assert!(text.contains("shadowdiff_pairs_dropped_total{reason=\"queue_full\"} 1\n"));
        assert!(text.contains("shadowdiff_upstream_latency_seconds_bucket{side=\"canary\",le=\"0.005\"} 1\n"));
        assert!(text.contains("shadowdiff_upstream_latency_seconds_bucket{side=\"canary\",le=\"+Inf\"} 1\n"));
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
}
