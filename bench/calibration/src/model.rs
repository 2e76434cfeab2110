//! Simulated shadow traffic: noise models (what identical builds look like) and effects (what a
//! canary changes), pair by pair.
//!
//! Every pair is one request to a route. Its cost is shared by both sides (the same query, the
//! same payload); each side adds its own jitter. Noise models change the shared cost, the
//! per-side jitter and the errors both sides show; effects change only the canary.

use rand::Rng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Normal, Pareto};

/// How identical builds vary. Every model has per-request cost shared by both sides (lognormal,
/// σ = 0.5 within a route), per-side lognormal jitter of σ = 0.15, routes with uneven traffic
/// (Zipf weights) and sparse 5xx on both sides (0.5 % per side: 4 in 5 `status 500`, 1 in 5
/// `status 503`); each adds one thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noise {
    /// Just the above.
    Lognormal,
    /// Per-side stalls: 2 % of each side's responses take 1 + Pareto(α = 1.5) times longer
    /// (a GC pause, a slow disk), independently per side.
    HeavyTail,
    /// A shared cache: a quarter of requests miss and cost 6×, on both sides.
    Bimodal,
    /// Five error bursts (1 % of the run each) in which both sides fail 5 % of requests,
    /// independently — a flaky dependency both builds call.
    BurstyErrors,
    /// Load that rises and falls across the run: cost × (1 + 0.4 sin 2πt), shared.
    Diurnal,
    /// 40 routes instead of 10, the tail of them with a few dozen pairs each.
    ManyRoutes,
}

impl Noise {
    pub const ALL: [Noise; 6] =
        [Noise::Lognormal, Noise::HeavyTail, Noise::Bimodal, Noise::BurstyErrors, Noise::Diurnal, Noise::ManyRoutes];

    pub fn name(self) -> &'static str {
        match self {
            Noise::Lognormal => "lognormal",
            Noise::HeavyTail => "heavy-tail",
            Noise::Bimodal => "bimodal",
            Noise::BurstyErrors => "bursty-errors",
            Noise::Diurnal => "diurnal",
            Noise::ManyRoutes => "many-routes",
        }
    }

    pub fn parse(s: &str) -> Option<Noise> {
        Self::ALL.into_iter().find(|n| n.name() == s)
    }
}

/// What the canary changes, of known size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    /// An identical build (A/A).
    None,
    /// Every canary latency × this factor.
    Latency(f64),
    /// The slowest 3 % of the run's requests (by their shared cost) × 1.3 on the canary: the
    /// run's p99 up ~30 %, its median unchanged.
    Tail,
    /// The canary's error probability × this factor.
    Errors(f64),
    /// A transport error the baseline never shows (`reset`) in 0.1 % of canary responses.
    NewErrorKind,
    /// A field (`/price`) changed in this share of compared pairs.
    Field(f64),
}

impl Effect {
    pub const ALL: [Effect; 12] = [
        Effect::None,
        Effect::Latency(1.05),
        Effect::Latency(1.15),
        Effect::Latency(1.30),
        Effect::Latency(1.5),
        Effect::Tail,
        Effect::Errors(1.5),
        Effect::Errors(3.0),
        Effect::NewErrorKind,
        Effect::Field(0.002),
        Effect::Field(0.01),
        Effect::Field(0.05),
    ];

    pub fn name(self) -> String {
        match self {
            Effect::None => "identical (A/A)".into(),
            Effect::Latency(f) => format!("latency ×{f:.2}"),
            Effect::Tail => "tail only: p99 +30%".into(),
            Effect::Errors(f) => format!("errors ×{f}"),
            Effect::NewErrorKind => "new error kind 0.1%".into(),
            Effect::Field(p) => format!("field changed in {}%", p * 100.0),
        }
    }

    /// A short key for `--effect`: `aa`, `lat1.05`, `tail`, `err3`, `newkind`, `field0.01`.
    pub fn key(self) -> String {
        match self {
            Effect::None => "aa".into(),
            Effect::Latency(f) => format!("lat{f}"),
            Effect::Tail => "tail".into(),
            Effect::Errors(f) => format!("err{f}"),
            Effect::NewErrorKind => "newkind".into(),
            Effect::Field(p) => format!("field{p}"),
        }
    }

    /// The target for this effect at the default policy, as a sentence and a test on the
    /// shares (pass, warn, fail, inconclusive).
    pub fn target(self) -> Option<Target> {
        match self {
            Effect::None => Some(Target::Identical),
            Effect::Latency(f) if f < 1.1 => Some(Target::Pass),
            Effect::Latency(f) if f < 1.2 => Some(Target::Alarm),
            Effect::Latency(_) | Effect::Tail | Effect::NewErrorKind => Some(Target::Fail),
            Effect::Errors(f) if f >= 3.0 => Some(Target::Fail),
            Effect::Field(p) if p >= 0.01 => Some(Target::Fail),
            Effect::Field(p) if p < 0.005 => Some(Target::Pass),
            _ => None,
        }
    }
}

/// A target the decision rules must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// fail ≤ 1 %, warn ≤ 5 %.
    Identical,
    /// pass ≥ 90 %.
    Pass,
    /// warn or fail ≥ 80 %.
    Alarm,
    /// fail ≥ 95 %.
    Fail,
}

impl Target {
    pub fn text(self) -> &'static str {
        match self {
            Target::Identical => "fail ≤ 1%, warn ≤ 5%",
            Target::Pass => "pass ≥ 90%",
            Target::Alarm => "warn+fail ≥ 80%",
            Target::Fail => "fail ≥ 95%",
        }
    }

    /// Whether shares `(pass, warn, fail, inconclusive)` meet it.
    pub fn met(self, s: [f64; 4]) -> bool {
        match self {
            Target::Identical => s[2] <= 0.01 && s[1] <= 0.05,
            Target::Pass => s[0] >= 0.90,
            Target::Alarm => s[1] + s[2] >= 0.80,
            Target::Fail => s[2] >= 0.95,
        }
    }
}

/// One simulated pair, as the judge's counts see it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimPair {
    pub route: usize,
    /// When in the run, 0..1.
    pub at: f64,
    pub baseline_ms: f64,
    pub canary_ms: f64,
    /// Each side's error kind (`status 500`, `reset`), when it failed.
    pub baseline_error: Option<&'static str>,
    pub canary_error: Option<&'static str>,
    /// The pair differs at `/price` (only when both sides answered alike).
    pub field_changed: bool,
}

impl SimPair {
    /// The HTTP status a side answered with (none for a transport error).
    pub fn status(error: Option<&str>) -> Option<u16> {
        match error {
            None => Some(200),
            Some(e) => e.strip_prefix("status ").and_then(|s| s.parse().ok()),
        }
    }
}

/// The number of routes a model spreads its pairs over.
pub fn routes(noise: Noise, default: usize) -> usize {
    if noise == Noise::ManyRoutes { default * 4 } else { default }
}

/// A route's name: `/r07/{id}`.
pub fn route_name(i: usize) -> String {
    format!("/r{i:02}/{{id}}")
}

const SHARED_SIGMA: f64 = 0.5;
const SIDE_SIGMA: f64 = 0.15;
const SPARSE_ERRORS: f64 = 0.005;

/// Draws `n` pairs over `routes` routes under `noise` with `effect`.
pub fn simulate(n: usize, routes: usize, noise: Noise, effect: Effect, rng: &mut SmallRng) -> Vec<SimPair> {
    let std = Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable!("σ = 1 is valid"));
    let stall = Pareto::new(1.0, 1.5).unwrap_or_else(|_| unreachable!("scale 1, shape 1.5 are valid"));
    // Zipf weights: the first route gets most of the traffic, the last a few dozen pairs.
    let weights: Vec<f64> = (0..routes).map(|i| 1.0 / (i as f64 + 1.0)).collect();
    let total: f64 = weights.iter().sum();
    let cumulative: Vec<f64> = weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w / total;
            Some(*acc)
        })
        .collect();
    // Route medians from 4 ms to ~200 ms.
    let median = |r: usize| 4.0 * 1.55f64.powi((r % 10) as i32);
    let bursts: Vec<f64> = (0..5).map(|_| rng.random::<f64>() * 0.99).collect();
    let error_kind = |rng: &mut SmallRng| if rng.random::<f64>() < 0.8 { "status 500" } else { "status 503" };

    let mut pairs = (0..n)
        .map(|j| {
            let at = j as f64 / n as f64;
            let u: f64 = rng.random();
            let route = cumulative.iter().position(|c| u < *c).unwrap_or(routes - 1);
            let mut shared = median(route) * (SHARED_SIGMA * std.sample(rng)).exp();
            match noise {
                Noise::Bimodal if rng.random::<f64>() < 0.25 => shared *= 6.0,
                Noise::Diurnal => shared *= 1.0 + 0.4 * (std::f64::consts::TAU * at).sin(),
                _ => {}
            }
            let side = |rng: &mut SmallRng| {
                let mut ms = shared * (SIDE_SIGMA * std.sample(rng)).exp();
                if noise == Noise::HeavyTail && rng.random::<f64>() < 0.02 {
                    ms *= 1.0 + stall.sample(rng);
                }
                ms
            };
            let baseline_ms = side(rng);
            let mut canary_ms = side(rng);
            if let Effect::Latency(f) = effect {
                canary_ms *= f;
            }
            let in_burst = noise == Noise::BurstyErrors && bursts.iter().any(|b| at >= *b && at < b + 0.01);
            let p = if in_burst { 0.05 } else { SPARSE_ERRORS };
            let pc = match effect {
                Effect::Errors(f) => p * f,
                _ => p,
            };
            let baseline_error = (rng.random::<f64>() < p).then(|| error_kind(rng));
            let mut canary_error = (rng.random::<f64>() < pc).then(|| error_kind(rng));
            if effect == Effect::NewErrorKind && canary_error.is_none() && rng.random::<f64>() < 0.001 {
                canary_error = Some("reset");
            }
            let alike = SimPair::status(baseline_error) == SimPair::status(canary_error)
                && baseline_error.is_none() == canary_error.is_none();
            let field_changed = match effect {
                Effect::Field(share) => alike && baseline_error.is_none() && rng.random::<f64>() < share,
                _ => false,
            };
            (SimPair { route, at, baseline_ms, canary_ms, baseline_error, canary_error, field_changed }, shared)
        })
        .collect::<Vec<_>>();
    if effect == Effect::Tail {
        let mut costs: Vec<f64> = pairs.iter().map(|p| p.1).collect();
        let k = ((costs.len() as f64 * 0.97) as usize).min(costs.len().saturating_sub(1));
        let cut = *costs.select_nth_unstable_by(k, f64::total_cmp).1;
        for (p, cost) in &mut pairs {
            if *cost >= cut {
                p.canary_ms *= 1.3;
            }
        }
    }
    pairs.into_iter().map(|p| p.0).collect()
}
