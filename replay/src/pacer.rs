//! When each replayed request should be sent. One driver loop asks a [`Pacer`] for the intended
//! send time of every request, in recorded order; the pacing mode is the only thing that varies.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

/// How replay spaces requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// The recorded inter-arrival times divided by `speed` (2 = twice as fast), each gap capped
    /// at `max_gap` so an idle night does not stall a replay.
    Recorded { speed: f64, max_gap: Duration },
    /// A fixed rate, open loop: request n is due at start + n / rate whatever the targets do, so
    /// a slow target shows up as latency (measured from the intended time), not as a slower test.
    Rate { per_second: f64 },
    /// As fast as the concurrency limit allows.
    Unpaced,
}

impl Pacing {
    /// Check the numbers a user gave; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Pacing::Recorded { speed, max_gap } => {
                if !(speed.is_finite() && speed > 0.0) {
                    return Err(format!("--speed must be a positive number, not {speed}"));
                }
                if max_gap.is_zero() {
                    return Err("--max-gap must be longer than zero".into());
                }
            }
            Pacing::Rate { per_second } => {
                if !(per_second.is_finite() && per_second > 0.0) {
                    return Err(format!("--rate must be a positive number of requests per second, not {per_second}"));
                }
            }
            Pacing::Unpaced => {}
        }
        Ok(())
    }
}

/// Turns recorded times into intended send times.
#[derive(Debug)]
pub struct Pacer {
    pacing: Pacing,
    start: Instant,
    previous: Option<DateTime<Utc>>,
    offset: Duration,
    sent: u64,
}

impl Pacer {
    pub fn new(pacing: Pacing, start: Instant) -> Self {
        Self { pacing, start, previous: None, offset: Duration::ZERO, sent: 0 }
    }

    /// The intended send time of the next request, recorded at `recorded_at`; `None` when
    /// unpaced (send as soon as a slot is free). Out-of-order recorded times count as no gap.
    pub fn next(&mut self, recorded_at: DateTime<Utc>) -> Option<Instant> {
        let n = self.sent;
        self.sent += 1;
        match self.pacing {
            Pacing::Unpaced => None,
            Pacing::Rate { per_second } => Some(self.start + Duration::from_secs_f64(n as f64 / per_second)),
            Pacing::Recorded { speed, max_gap } => {
                if let Some(prev) = self.previous {
                    let gap = (recorded_at - prev).to_std().unwrap_or(Duration::ZERO);
                    self.offset += gap.div_f64(speed).min(max_gap);
                }
                if self.previous.is_none_or(|p| recorded_at > p) {
                    self.previous = Some(recorded_at);
                }
                Some(self.start + self.offset)
            }
        }
    }

    /// Restart the schedule for another pass over the input (`--loop`), continuing from `at`.
    pub fn restart(&mut self, at: Instant) {
        self.start = at;
        self.previous = None;
        self.offset = Duration::ZERO;
        self.sent = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn minute() -> Vec<DateTime<Utc>> {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("valid");
        // 121 requests over one recorded minute, unevenly spaced.
        (0..=120).map(|i| t0 + TimeDelta::milliseconds(i * 500 + if i % 3 == 0 { 0 } else { 120 })).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn speed_two_replays_a_minute_in_thirty_seconds() {
        let times = minute();
        let start = Instant::now();
        let mut pacer = Pacer::new(Pacing::Recorded { speed: 2.0, max_gap: Duration::from_secs(10) }, start);
        for t in &times {
            if let Some(due) = pacer.next(*t) {
                tokio::time::sleep_until(due).await;
            }
        }
        let took = start.elapsed().as_secs_f64();
        assert!((took - 30.0).abs() <= 0.3, "took {took} s");
    }

    #[test]
    fn long_gaps_are_capped_and_disorder_is_no_gap() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("valid");
        let start = Instant::now();
        let mut p = Pacer::new(Pacing::Recorded { speed: 1.0, max_gap: Duration::from_secs(5) }, start);
        assert_eq!(p.next(t0), Some(start));
        assert_eq!(p.next(t0 + TimeDelta::hours(8)), Some(start + Duration::from_secs(5)));
        assert_eq!(p.next(t0 + TimeDelta::hours(7)), Some(start + Duration::from_secs(5)), "earlier time: no gap");
        assert_eq!(p.next(t0 + TimeDelta::hours(8) + TimeDelta::seconds(1)), Some(start + Duration::from_secs(6)));
    }

    #[test]
    fn rate_is_open_loop() {
        let t0 = DateTime::<Utc>::from_timestamp(0, 0).expect("valid");
        let start = Instant::now();
        let mut p = Pacer::new(Pacing::Rate { per_second: 200.0 }, start);
        let due: Vec<Instant> = (0..401).filter_map(|_| p.next(t0)).collect();
        assert_eq!(due[400] - start, Duration::from_secs(2));
        assert_eq!(Pacer::new(Pacing::Unpaced, start).next(t0), None);
    }

    #[test]
    fn bad_numbers_name_the_flag() {
        assert!(Pacing::Rate { per_second: 0.0 }.validate().expect_err("zero").contains("--rate"));
        assert!(
            Pacing::Recorded { speed: -1.0, max_gap: Duration::from_secs(1) }
                .validate()
                .expect_err("neg")
                .contains("--speed")
        );
        assert!(
            Pacing::Recorded { speed: 1.0, max_gap: Duration::ZERO }
                .validate()
                .expect_err("zero gap")
                .contains("--max-gap")
        );
    }
}
