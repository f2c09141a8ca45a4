//! Measured processing latency for the LATENCY query.
//!
//! The element holds each frame for as long as the engine runs, so its latency is the engine's
//! processing time. We report the slowest of the last `WINDOW` frames: a one-off slow first
//! frame (ORT allocations, cuDNN algorithm search) ages out, while a steady load is covered.

use std::time::Duration;

const WINDOW: usize = 32;

#[derive(Debug, Default)]
pub struct LatencyMeter {
    recent: [Duration; WINDOW],
    next: usize,
    /// Latency last announced to the pipeline (answered in a query).
    announced: Duration,
}

impl LatencyMeter {
    /// Records one frame's processing time. Returns true when the latency grew enough (25% and
    /// at least 1 ms over what the pipeline was last told) that the element should post a
    /// LATENCY message so the pipeline re-queries.
    pub fn record(&mut self, took: Duration) -> bool {
        self.recent[self.next] = took;
        self.next = (self.next + 1) % WINDOW;
        let peak = self.peak();
        peak > self.announced + Duration::from_millis(1) && peak > self.announced.mul_f32(1.25)
    }

    pub fn peak(&self) -> Duration {
        self.recent.iter().copied().max().unwrap_or_default()
    }

    /// The value to answer a latency query with; remembered as announced.
    pub fn answer(&mut self) -> Duration {
        self.announced = self.peak();
        self.announced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_recent_peak_and_asks_to_reannounce_only_on_real_growth() {
        let ms = Duration::from_millis;
        let mut m = LatencyMeter::default();
        assert_eq!(m.answer(), Duration::ZERO);
        assert!(m.record(ms(40)), "first measurement exceeds the announced zero");
        assert_eq!(m.answer(), ms(40));
        assert!(!m.record(ms(45)), "12% growth is not worth a pipeline re-query");
        assert!(m.record(ms(60)));
        assert_eq!(m.answer(), ms(60));
        for _ in 0..WINDOW {
            assert!(!m.record(ms(10)));
        }
        assert_eq!(m.peak(), ms(10), "the slow frames aged out of the window");
    }
}
