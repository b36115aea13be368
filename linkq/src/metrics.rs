//! Link metrics: the pinned simplified E-model (MOS), one test's raw result, and the EWMA
//! used for decisions (docs/multipath.md §2).

/// EWMA weight of a new test: α = 0.25 (about a 3-sample moving average).
pub const EWMA_ALPHA: f64 = 0.25;

/// The R factor of the simplified E-model (docs/multipath.md §2.2):
///
/// ```text
/// EffLat = latency + 2 * jitter + 10
/// R      = 93.2 - EffLat/40            if EffLat < 160
///        = 93.2 - (EffLat - 120)/10    otherwise
/// R      = R - 2.5 * loss
/// ```
///
/// `latency_ms` is one-way (RTT/2), `loss_percent` 0-100. Inputs are clamped: negative or
/// NaN latency and jitter count as 0, loss is clamped to 0-100 (NaN counts as 100).
pub fn r_factor(latency_ms: f64, jitter_ms: f64, loss_percent: f64) -> f64 {
    let nonneg = |x: f64| if x.is_nan() || x < 0.0 { 0.0 } else { x };
    let loss = if loss_percent.is_nan() {
        100.0
    } else {
        loss_percent.clamp(0.0, 100.0)
    };
    let eff = nonneg(latency_ms) + 2.0 * nonneg(jitter_ms) + 10.0;
    let r = if eff < 160.0 {
        93.2 - eff / 40.0
    } else {
        93.2 - (eff - 120.0) / 10.0
    };
    r - 2.5 * loss
}

/// The G.107 R → MOS mapping, clamped to 1-4.5:
///
/// ```text
/// MOS = 1                                      if R < 0
///     = 1 + 0.035 R + 7e-6 R (R-60) (100-R)    if 0 <= R <= 100
///     = 4.5                                    if R > 100
/// ```
pub fn mos_of_r(r: f64) -> f64 {
    if r.is_nan() || r < 0.0 {
        1.0
    } else if r > 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

/// MOS (1-4.5) from one-way latency, jitter and loss: [`mos_of_r`] of [`r_factor`].
pub fn mos(latency_ms: f64, jitter_ms: f64, loss_percent: f64) -> f64 {
    mos_of_r(r_factor(latency_ms, jitter_ms, loss_percent))
}

/// Quality of a path: the values the SLA filter and `best-path` compare.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    /// One-way latency, ms (mean RTT / 2).
    pub latency_ms: f64,
    /// Jitter, ms: mean |ΔRTT| between consecutive replies.
    pub jitter_ms: f64,
    /// Loss, percent of probes sent (0-100).
    pub loss_percent: f64,
    /// MOS of the three above ([`mos`]).
    pub mos: f64,
}

impl Metrics {
    /// Metrics with their MOS computed.
    pub fn new(latency_ms: f64, jitter_ms: f64, loss_percent: f64) -> Metrics {
        Metrics {
            latency_ms,
            jitter_ms,
            loss_percent,
            mos: mos(latency_ms, jitter_ms, loss_percent),
        }
    }

    /// The EWMA step: `self` moved by α = 0.25 toward `raw`. A test without a reply has no
    /// latency or jitter; then only the loss moves. MOS is recomputed from the smoothed
    /// values (SSR: "calculated based on the running average").
    pub fn smoothed_with(self, raw: &TestResult) -> Metrics {
        let step = |old: f64, new: f64| old + EWMA_ALPHA * (new - old);
        let latency = raw
            .latency_ms
            .map_or(self.latency_ms, |l| step(self.latency_ms, l));
        let jitter = raw
            .jitter_ms
            .map_or(self.jitter_ms, |j| step(self.jitter_ms, j));
        Metrics::new(latency, jitter, step(self.loss_percent, raw.loss_percent))
    }
}

/// The raw result of one link test (what `show stats bfd by-peer-path` shows).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// Probes sent.
    pub sent: u8,
    /// Valid reflections received in time.
    pub received: u8,
    /// One-way latency, ms; `None` without a reply.
    pub latency_ms: Option<f64>,
    /// Jitter, ms; `None` without a reply (0 with exactly one).
    pub jitter_ms: Option<f64>,
    /// Loss, percent: (sent - received) / sent × 100.
    pub loss_percent: f64,
    /// MOS of this test alone (latency and jitter 0 when absent).
    pub mos: f64,
}

impl TestResult {
    /// The result of a test that sent `sent` probes and got replies with these round-trip
    /// times, in arrival order. `sent == 0` gives 0 % loss.
    pub fn from_rtts(sent: u8, rtts_ms: &[f64]) -> TestResult {
        let received = u8::try_from(rtts_ms.len()).unwrap_or(u8::MAX).min(sent);
        let n = f64::from(received);
        let rtts = &rtts_ms[..usize::from(received)];
        let (latency, jitter) = if rtts.is_empty() {
            (None, None)
        } else {
            let mean = rtts.iter().sum::<f64>() / n;
            let jitter = if rtts.len() < 2 {
                0.0
            } else {
                let s: f64 = rtts.windows(2).map(|w| (w[1] - w[0]).abs()).sum();
                s / (n - 1.0)
            };
            (Some(mean / 2.0), Some(jitter))
        };
        let loss = if sent == 0 {
            0.0
        } else {
            f64::from(sent - received) * 100.0 / f64::from(sent)
        };
        TestResult {
            sent,
            received,
            latency_ms: latency,
            jitter_ms: jitter,
            loss_percent: loss,
            mos: mos(latency.unwrap_or(0.0), jitter.unwrap_or(0.0), loss),
        }
    }

    /// This test as [`Metrics`] (the first value of the EWMA): latency and jitter 0 when
    /// absent.
    pub fn metrics(&self) -> Metrics {
        Metrics::new(
            self.latency_ms.unwrap_or(0.0),
            self.jitter_ms.unwrap_or(0.0),
            self.loss_percent,
        )
    }
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;

    /// The golden vectors of docs/multipath.md §2.2: (latency, jitter, loss, R, MOS).
    pub(crate) const MOS_VECTORS: [(f64, f64, f64, f64, f64); 5] = [
        (0.0, 0.0, 0.0, 92.95, 4.4044),
        (20.0, 5.0, 0.0, 92.20, 4.3891),
        (75.0, 15.0, 1.0, 87.825, 4.2821),
        (150.0, 30.0, 1.0, 80.70, 4.0502),
        (250.0, 50.0, 5.0, 56.70, 2.9278),
    ];

    #[test]
    fn mos_golden_vectors() {
        for (l, j, p, r, m) in MOS_VECTORS {
            assert!((r_factor(l, j, p) - r).abs() < 1e-9, "R({l},{j},{p})");
            let got = mos(l, j, p);
            assert!((got - m).abs() < 5e-5, "MOS({l},{j},{p}) = {got}, want {m}");
        }
    }

    #[test]
    fn mos_clamps() {
        assert_eq!(mos(0.0, 0.0, 100.0), 1.0);
        assert_eq!(mos_of_r(120.0), 4.5);
        assert_eq!(mos_of_r(f64::NAN), 1.0);
        assert_eq!(mos(f64::NAN, -5.0, 0.0), mos(0.0, 0.0, 0.0));
        assert_eq!(mos(0.0, 0.0, f64::NAN), 1.0);
        assert_eq!(mos(0.0, 0.0, -3.0), mos(0.0, 0.0, 0.0));
        assert_eq!(mos(f64::INFINITY, 0.0, 0.0), 1.0);
    }

    #[test]
    fn one_test_arithmetic() {
        // 10 sent, 8 replies: RTT 40, 44, 40, 48, 40, 40, 40, 40 ms.
        let t = TestResult::from_rtts(10, &[40.0, 44.0, 40.0, 48.0, 40.0, 40.0, 40.0, 40.0]);
        assert_eq!(t.received, 8);
        assert_eq!(t.latency_ms, Some(20.75)); // mean 41.5 / 2
        assert_eq!(t.jitter_ms, Some(24.0 / 7.0)); // |4|+|4|+|8|+|8| = 24 over 7 steps
        assert_eq!(t.loss_percent, 20.0);
        assert_eq!(t.mos, mos(20.75, 24.0 / 7.0, 20.0));
        let none = TestResult::from_rtts(10, &[]);
        assert_eq!((none.latency_ms, none.jitter_ms), (None, None));
        assert_eq!(none.loss_percent, 100.0);
        assert_eq!(none.mos, 1.0);
        let one = TestResult::from_rtts(1, &[30.0]);
        assert_eq!((one.latency_ms, one.jitter_ms), (Some(15.0), Some(0.0)));
        assert_eq!(TestResult::from_rtts(0, &[]).loss_percent, 0.0);
    }

    #[test]
    fn ewma_moves_a_quarter() {
        let m = Metrics::new(20.0, 4.0, 0.0);
        let raw = TestResult::from_rtts(10, &[120.0; 10]);
        let s = m.smoothed_with(&raw);
        assert_eq!(s.latency_ms, 20.0 + 0.25 * 40.0);
        assert_eq!(s.jitter_ms, 3.0);
        assert_eq!(s.loss_percent, 0.0);
        let lost = m.smoothed_with(&TestResult::from_rtts(10, &[]));
        assert_eq!((lost.latency_ms, lost.jitter_ms), (20.0, 4.0));
        assert_eq!(lost.loss_percent, 25.0);
        assert_eq!(lost.mos, mos(20.0, 4.0, 25.0));
    }
}
