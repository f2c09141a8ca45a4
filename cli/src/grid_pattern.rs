//! Pattern statistics of a model's output on flat frames, for `ptgrm artefacts`.
//!
//! Both compare the P x P phase means of the output luma (the mean over all pixels with
//! x = i, y = j mod P, less the frame mean) with what noise alone gives; they differ in how
//! they know what noise gives:
//!
//! - `grid_scores` (issue 10's definition, one frame): independent pixel noise of the frame's own
//!   variance, sigma^2 P^2 / N. A frame's score counts every phase-locked structure in it,
//!   whether it stays put from frame to frame or not. A denoiser's leftover noise is phase-locked
//!   to its cells (F's 1/2- and 1/4-resolution levels shape it the same way in every cell, with a
//!   random, slowly varying amplitude), so models/denoise-live scores about 12 at P = 4 for a
//!   structure of 0.07 luma levels that changes sign from capture to capture: what a viewer
//!   sees of it is noise (the temporal ratio), not a grid.
//! - `fixed_pattern_scores` (several captures of one flat frame): only what stays put, measured
//!   against the capture-to-capture scatter of each phase mean. A pattern or a shading drawn
//!   into every frame at the same place scores above 1; noise, phase-locked or not, about 1.

use std::ops::RangeInclusive;

/// The longest period scored.
pub const MAX_PERIOD: usize = 64;
/// The periods scored.
pub const PERIODS: RangeInclusive<usize> = 4..=MAX_PERIOD;

/// Floor of a frame's variance: 8-bit quantisation noise, so a perfectly flat output scores 0
/// rather than dividing by zero.
const QUANTISATION_VARIANCE: f64 = 1.0 / 12.0;

/// One frame's phase means at one period, on the top-left square whose sides are multiples of
/// the period (so every phase has as many pixels).
struct Phases {
    /// Phase mean less the square's mean, P * P of them.
    deviations: Vec<f64>,
    /// The square's pixel variance (floored at 8-bit quantisation noise).
    variance: f64,
    /// Pixels in the square.
    pixels: f64,
}

fn phases(y: &[f64], w: usize, h: usize, p: usize) -> Phases {
    let (pw, ph) = (w / p * p, h / p * p);
    let n = (pw * ph) as f64;
    let pixels = || (0..ph).flat_map(move |yy| (0..pw).map(move |xx| (yy, xx, y[yy * w + xx])));
    let m = pixels().map(|(_, _, v)| v).sum::<f64>() / n;
    let variance = (pixels().map(|(_, _, v)| (v - m) * (v - m)).sum::<f64>() / n).max(QUANTISATION_VARIANCE);
    let mut sum = vec![0.0; p * p];
    for (yy, xx, v) in pixels() {
        sum[(yy % p) * p + xx % p] += v;
    }
    let per_phase = n / (p * p) as f64;
    let deviations = sum.iter().map(|s| s / per_phase - m).collect();
    Phases { deviations, variance, pixels: n }
}

fn mean_square(v: &[f64]) -> f64 {
    v.iter().map(|d| d * d).sum::<f64>() / v.len() as f64
}

/// One period's pattern measure on one frame, against independent noise.
pub struct PeriodScore {
    pub period: usize,
    /// Variance of the phase means over what independent noise gives (about 1: no pattern).
    pub score: f64,
    /// Variance of the phase means less what independent noise explains: the pattern's power
    /// (squared luma levels; negative when noise alone explains it).
    pub excess_variance: f64,
}

/// Issue 10's grid score of one frame `y` (luma, row-major, `w` x `h`) at every period.
pub fn grid_scores(y: &[f64], w: usize, h: usize) -> Vec<PeriodScore> {
    PERIODS
        .map(|p| {
            let f = phases(y, w, h, p);
            let var_means = mean_square(&f.deviations);
            let from_noise = f.variance * (p * p) as f64 / f.pixels;
            PeriodScore { period: p, score: var_means / from_noise, excess_variance: var_means - from_noise }
        })
        .collect()
}

/// One period's fixed-pattern measure over several captures.
pub struct FixedPatternScore {
    pub period: usize,
    /// Mean square of the phase means over their capture-to-capture variance (about 1: no fixed
    /// pattern).
    pub score: f64,
    /// RMS of the pattern that stays put from capture to capture, in luma levels.
    pub amplitude: f64,
}

/// Fixed-pattern scores of `frames` (luma, row-major, `w` x `h`; independent captures of one
/// flat scene) at every period. With d_k the phase deviations of capture k, V = the mean over
/// captures and phases of d_k^2, and S = the mean over phases of the sample variance of d_k
/// across captures: score = V / S and amplitude = sqrt(V - S) (0 when S explains V). For a
/// fixed pattern f under noise, V estimates var(f) + S. S is floored at what 8-bit quantisation
/// alone gives a phase mean.
///
/// # Panics
/// With fewer than two frames (no scatter to measure).
pub fn fixed_pattern_scores(frames: &[Vec<f64>], w: usize, h: usize) -> Vec<FixedPatternScore> {
    assert!(frames.len() >= 2, "a fixed pattern needs at least two captures");
    let k = frames.len() as f64;
    PERIODS
        .map(|p| {
            let per_frame: Vec<Phases> = frames.iter().map(|y| phases(y, w, h, p)).collect();
            let floor = QUANTISATION_VARIANCE * (p * p) as f64 / per_frame[0].pixels;
            let (mut power, mut scatter) = (0.0, 0.0);
            for phase in 0..p * p {
                let values: Vec<f64> = per_frame.iter().map(|f| f.deviations[phase]).collect();
                let mean = values.iter().sum::<f64>() / k;
                power += values.iter().map(|v| v * v).sum::<f64>() / k;
                scatter += values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (k - 1.0);
            }
            let phases = (p * p) as f64;
            let (power, scatter) = (power / phases, (scatter / phases).max(floor));
            FixedPatternScore { period: p, score: power / scatter, amplitude: (power - scatter).max(0.0).sqrt() }
        })
        .collect()
}

/// Mean luma of the `band`-pixel strips along the top, bottom, left and right edges of a flat
/// frame's output (`y`, row-major, `w` x `h`) less the mean of its central half: a shading that
/// zero-padded convolutions draw where the frame ends (0: none).
pub fn border_bands(y: &[f64], w: usize, h: usize, band: usize) -> [f64; 4] {
    let mean = |xs: std::ops::Range<usize>, ys: std::ops::Range<usize>| {
        let n = (xs.len() * ys.len()) as f64;
        ys.flat_map(|yy| xs.clone().map(move |xx| (yy, xx))).map(|(yy, xx)| y[yy * w + xx]).sum::<f64>() / n
    };
    let centre = mean(w / 4..w - w / 4, h / 4..h - h / 4);
    [mean(0..w, 0..band), mean(0..w, h - band..h), mean(0..band, 0..h), mean(w - band..w, 0..h)].map(|m| m - centre)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensor::Rng;

    const SIDE: usize = 256;

    fn noise(seed: u64) -> Vec<f64> {
        let mut rng = Rng(seed);
        (0..SIDE * SIDE).map(|_| 100.0 + 5.0 * rng.normal()).collect()
    }

    fn at<T>(scores: &[T], period: impl Fn(&T) -> usize, p: usize) -> &T {
        scores.iter().find(|s| period(s) == p).unwrap()
    }

    #[test]
    fn independent_noise_scores_about_one_and_a_pattern_stands_out() {
        // Averaged over four fields as `ptgrm artefacts` averages its captures.
        let mut clean = vec![0.0; 65];
        for seed in 0..4 {
            for g in grid_scores(&noise(10 + seed), SIDE, SIDE) {
                clean[g.period] += g.score / 4.0;
            }
        }
        let clean = &clean[4..];
        assert!(clean.iter().all(|s| (0.5..1.5).contains(s)), "{clean:?}");
        let mean = clean.iter().sum::<f64>() / clean.len() as f64;
        assert!((0.9..1.1).contains(&mean), "{mean}");
        // A faint period-16 dot grid (1.5 levels, well under the noise) is found at 16 and its
        // multiples, not at unrelated periods.
        let mut dotted = noise(2);
        for y in (0..SIDE).step_by(16) {
            for x in (0..SIDE).step_by(16) {
                dotted[y * SIDE + x] += 1.5 * 16.0;
            }
        }
        let s = grid_scores(&dotted, SIDE, SIDE);
        let score = |p| at(&s, |g| g.period, p).score;
        assert!(score(16) > 3.0 && score(32) > 3.0);
        assert!(score(13) < 1.5);
    }

    #[test]
    fn pattern_amplitude_is_in_luma_levels_whatever_the_noise() {
        // A period-4 pattern of +-1 level (RMS 1) under noise of sigma 5: about 1 level at
        // P = 4, and noise alone about 0.
        let amplitude_at = |y: &[f64]| at(&grid_scores(y, SIDE, SIDE), |g| g.period, 4).excess_variance.max(0.0).sqrt();
        let a = amplitude_at(&checkerboard(noise(7), 4, 1.0));
        assert!((0.85..1.15).contains(&a), "amplitude {a}");
        let quiet = amplitude_at(&noise(8));
        assert!(quiet < 0.3, "noise alone: {quiet}");
    }

    /// `y` plus a +-`level` checkerboard of cells period/2 wide.
    fn checkerboard(mut y: Vec<f64>, period: usize, level: f64) -> Vec<f64> {
        for (i, v) in y.iter_mut().enumerate() {
            let (x, yy) = (i % SIDE, i / SIDE);
            *v += if (x % period < period / 2) ^ (yy % period < period / 2) { level } else { -level };
        }
        y
    }

    #[test]
    fn a_pattern_whose_sign_changes_per_capture_is_no_fixed_pattern() {
        // A +-0.5-level period-4 checkerboard times a random factor per capture: every frame
        // shows it (the one-frame score is high), no two frames agree (the fixed score is not).
        let mut rng = Rng(3);
        let frames: Vec<Vec<f64>> = (0..8).map(|k| checkerboard(noise(30 + k), 4, 0.5 * rng.normal())).collect();
        let one_frame = at(&grid_scores(&frames[0], SIDE, SIDE), |g| g.period, 4).score;
        assert!(one_frame > 3.0, "the one-frame score should see it: {one_frame}");
        let fixed = fixed_pattern_scores(&frames, SIDE, SIDE);
        let worst = fixed.iter().map(|f| f.score).fold(0.0, f64::max);
        assert!(worst < 1.6, "nothing stays put, yet the worst period scores {worst}");
    }

    #[test]
    fn a_pattern_in_every_capture_is_found_at_its_period_with_its_amplitude() {
        // +-0.3 levels at period 8 under noise of sigma 5.
        let frames: Vec<Vec<f64>> = (0..8).map(|k| checkerboard(noise(50 + k), 8, 0.3)).collect();
        let fixed = fixed_pattern_scores(&frames, SIDE, SIDE);
        let f8 = at(&fixed, |f| f.period, 8);
        assert!(f8.score > 3.0, "score at 8: {}", f8.score);
        assert!((0.25..0.35).contains(&f8.amplitude), "amplitude at 8: {}", f8.amplitude);
        assert!(at(&fixed, |f| f.period, 13).score < 1.6);
    }

    #[test]
    fn border_bands_find_a_darker_edge_on_its_side() {
        let (w, h) = (64, 48);
        let mut y = vec![50.0; w * h];
        (0..w).for_each(|x| (0..4).for_each(|r| y[r * w + x] = 40.0));
        let b = border_bands(&y, w, h, 4);
        assert_eq!(b[0], -10.0);
        assert_eq!(b[1], 0.0);
        // The left and right bands hold 4 of the 48 rows at -10.
        assert!((b[2] + 10.0 * 4.0 / 48.0).abs() < 1e-9 && (b[3] - b[2]).abs() < 1e-12, "{b:?}");
    }

    #[test]
    fn a_flat_output_scores_zero() {
        let flat = vec![vec![80.0; SIDE * SIDE]; 3];
        assert!(fixed_pattern_scores(&flat, SIDE, SIDE).iter().all(|f| f.score == 0.0 && f.amplitude == 0.0));
        assert!(grid_scores(&flat[0], SIDE, SIDE).iter().all(|g| g.score == 0.0));
    }
}
