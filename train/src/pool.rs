//! The view pool: nothing computed twice. A view (a window of a training photo, one draw of the
//! degradation chain) is degraded once, its prior g computed once and, with a frozen external
//! F, F's output on the whole view computed once; then `view_reuse` crops are cut from it (each
//! with its own position, flip and quarter turn) before it is replaced.
//!
//! Which view a crop uses is a pure function of the global sample index s = step * batch + i,
//! so any step can still be regenerated exactly (resume, bench): slot k = s mod P holds views
//! k, P + k, 2P + k, ... in turn, each for R uses; slots start their cycles staggered, so
//! about one view is replaced every R samples instead of the whole pool at once.
//!
//! Memory is bounded by the pool size: P views of prior_view^2 pixels (clean, degraded and F's
//! output), e.g. 64 views of 256^2 take about 60 MB.

use crate::data::{Batch, TrainSet};
use crate::evaluate::run_external;
use crate::imagebuf::Image;
use crate::model::pad_reflect;
use crate::onnx_run::{OnnxGraph, PriorModel};
use crate::rng::Rng;
use anyhow::Result;
use ptgrm::prior::GridWindow;
use std::time::Instant;

/// One pooled view with everything that is the same for all crops cut from it.
pub struct PooledView {
    pub id: u64,
    pub clean: Image,
    pub degraded: Image,
    pub prior: Vec<f32>,
    /// External F's output on the whole degraded view.
    pub base: Option<Image>,
}

/// Seconds spent in the producer's parts (summed over a batch).
#[derive(Clone, Copy, Debug, Default)]
pub struct PrepTiming {
    pub data_s: f64,
    pub prior_s: f64,
    pub base_s: f64,
    /// Views built (degraded, prior and F computed) for this batch.
    pub views: u64,
}

/// A pooled batch: crops, priors `[N*D]`, external F's output crops, producer time.
pub type PooledBatch = (Batch, Vec<f32>, Option<Vec<f32>>, PrepTiming);

pub struct ViewPool {
    slots: Vec<Option<PooledView>>,
    reuse: u64,
    /// Views built so far (for reports).
    pub built: u64,
}

impl ViewPool {
    pub fn new(views: usize, reuse: usize) -> ViewPool {
        ViewPool { slots: (0..views).map(|_| None).collect(), reuse: reuse as u64, built: 0 }
    }

    /// (slot, view id) for global sample `s`.
    pub fn view_of(&self, s: u64) -> (usize, u64) {
        let (p, r) = (self.slots.len() as u64, self.reuse);
        let k = s % p;
        let uses = s / p;
        let generation = (uses + k * r / p) / r;
        (k as usize, generation * p + k)
    }

    /// The view for sample `s`, building it (degradation, prior, F) if the slot holds an older one.
    fn view(
        &mut self,
        set: &TrainSet,
        s: u64,
        prior: Option<&mut PriorModel>,
        dim: usize,
        ext: Option<&mut OnnxGraph>,
        t: &mut PrepTiming,
    ) -> Result<&PooledView> {
        let (k, id) = self.view_of(s);
        if self.slots[k].as_ref().is_none_or(|v| v.id != id) {
            let t0 = Instant::now();
            let (clean, degraded, level) = set.synthetic_view(id);
            let t1 = Instant::now();
            let prior = match prior {
                Some(p) => p.compute(&degraded)?,
                None => vec![0.0; dim],
            };
            let t2 = Instant::now();
            // F sees the whole view, reflect-padded to even sides (as the engine pads frames).
            let base = match ext {
                Some(f) => Some(run_external(f, &pad_reflect(&degraded, 8), level)?.crop(0, 0, degraded.width, degraded.height)),
                None => None,
            };
            let t3 = Instant::now();
            t.data_s += (t1 - t0).as_secs_f64();
            t.prior_s += (t2 - t1).as_secs_f64();
            t.base_s += (t3 - t2).as_secs_f64();
            self.built += 1;
            t.views += 1;
            self.slots[k] = Some(PooledView { id, clean, degraded, prior, base });
        }
        Ok(self.slots[k].as_ref().expect("slot just filled"))
    }

    /// The batch for `step` from pooled views: (batch, priors, external F crops, timing).
    pub fn batch(
        &mut self,
        set: &TrainSet,
        step: u64,
        n: usize,
        mut prior: Option<&mut PriorModel>,
        dim: usize,
        mut ext: Option<&mut OnnxGraph>,
    ) -> Result<PooledBatch> {
        let side = set.crop;
        let plane = 3 * side * side;
        let mut t = PrepTiming::default();
        let mut b = Batch {
            n,
            side,
            degraded: Vec::with_capacity(n * plane),
            clean: Vec::with_capacity(n * plane),
            prior_inputs: Vec::new(),
            context_degraded: Vec::new(),
            context: 0,
        };
        let mut priors = Vec::with_capacity(n * dim);
        let mut base = ext.is_some().then(|| Vec::with_capacity(n * plane));
        for i in 0..n {
            let s = step * n as u64 + i as u64;
            let v = self.view(set, s, prior.as_deref_mut(), dim, ext.as_deref_mut(), &mut t)?;
            let t0 = Instant::now();
            let mut rng = Rng::derived(set.seed ^ 0x4352_4F50_5345_4C46, s);
            let (cx, cy) = set.pick_crop(&mut rng, v.degraded.width, v.degraded.height);
            let flip = rng.coin();
            let turns = rng.below(4);
            let cut = |img: &Image| {
                let c = img.crop(cx, cy, side, side);
                let c = if flip { c.flip_horizontal() } else { c };
                c.rot90(turns).data
            };
            b.degraded.extend(cut(&v.degraded));
            b.clean.extend(cut(&v.clean));
            if let (Some(out), Some(f)) = (base.as_mut(), v.base.as_ref()) {
                out.extend(cut(f));
            }
            match prior.as_deref() {
                Some(p) => {
                    let window = GridWindow::of_pixels(cx, cy, side, side, v.degraded.width, v.degraded.height);
                    priors.extend(p.for_crop(&v.prior, window, flip, turns));
                }
                None => priors.extend_from_slice(&v.prior),
            }
            t.data_s += t0.elapsed().as_secs_f64();
        }
        Ok((b, priors, base, t))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::data::DataConfig;
    use crate::degrade::{Degradation, GaussianNoise};

    pub(crate) fn train_set(dir: &std::path::Path, reuse: usize) -> TrainSet {
        for (i, (w, h)) in [(60u32, 50u32), (48, 64)].into_iter().enumerate() {
            let buf: Vec<u8> = (0..w * h * 3).map(|v| (v as u8).wrapping_mul(3 + i as u8)).collect();
            image::save_buffer(dir.join(format!("{i}.png")), &buf, w, h, image::ColorType::Rgb8).unwrap();
        }
        let cfg = DataConfig { pool_views: 6, ..DataConfig::test_config(dir, 16, 40, reuse) };
        let chain = vec![Degradation::GaussianNoise(GaussianNoise::white([20.0, 30.0]))];
        TrainSet::load(&cfg, &chain, 7).unwrap()
    }

    /// A pool started at any step (a resumed run) gives the same batches as one that ran from
    /// step 0, and builds one view per `reuse` crops, not one per crop.
    #[test]
    fn pooled_batches_depend_only_on_the_step_and_views_are_reused() {
        let dir = tempfile::tempdir().unwrap();
        let set = train_set(dir.path(), 4);
        let n = 4;
        let mut from_start = ViewPool::new(set.pool_views, set.view_reuse);
        let batches: Vec<_> = (0..12).map(|s| from_start.batch(&set, s, n, None, 3, None).unwrap().0).collect();
        let distinct: std::collections::HashSet<u64> = (0..48).map(|s| from_start.view_of(s).1).collect();
        assert_eq!(from_start.built, distinct.len() as u64, "each view is built once");
        assert!(from_start.built <= 48 / 4 + 6, "48 crops built {} views", from_start.built);
        let mut resumed = ViewPool::new(set.pool_views, set.view_reuse);
        for s in 7..12 {
            let b = resumed.batch(&set, s, n, None, 3, None).unwrap().0;
            assert_eq!(b.degraded, batches[s as usize].degraded, "step {s}");
            assert_eq!(b.clean, batches[s as usize].clean, "step {s}");
        }
        // Two crops of view 0 (samples 0 and 6) differ (positions, flips, turns); degraded != clean.
        assert_eq!(from_start.view_of(0).1, from_start.view_of(6).1);
        let plane = 3 * 16 * 16;
        assert_ne!(batches[0].degraded[..plane], batches[1].degraded[2 * plane..3 * plane]);
        assert!(batches[0].degraded.iter().zip(&batches[0].clean).any(|(d, c)| (d - c).abs() > 0.02));
    }

    /// Every view is used exactly R times, consecutive samples never share a view, and only
    /// about one view is replaced per R samples (no pool-wide refresh stalls).
    #[test]
    fn each_view_serves_reuse_crops_and_refreshes_are_spread() {
        let (p, r) = (16usize, 4usize);
        let pool = ViewPool::new(p, r);
        let total = (p * r * 20) as u64;
        let mut uses = std::collections::HashMap::<u64, usize>::new();
        let mut last_id = vec![u64::MAX; p];
        let mut new_views_per_window = Vec::new();
        let mut fresh = 0;
        for s in 0..total {
            let (k, id) = pool.view_of(s);
            assert_eq!(k as u64, s % p as u64);
            *uses.entry(id).or_default() += 1;
            if last_id[k] != id {
                fresh += 1;
                last_id[k] = id;
            }
            if s > 0 && s % p as u64 == p as u64 - 1 {
                new_views_per_window.push(fresh);
                fresh = 0;
            }
            if s > 0 {
                assert_ne!(pool.view_of(s - 1).1, id, "consecutive samples share view {id}");
            }
        }
        // Views past the first generation (whose first use is partial) are used exactly R times.
        let full: Vec<usize> =
            uses.iter().filter(|(id, _)| **id >= p as u64 && **id < (total / r as u64 - p as u64)).map(|(_, n)| *n).collect();
        assert!(!full.is_empty() && full.iter().all(|&n| n == r), "{full:?}");
        // After the first window, each window of P samples builds about P/R views.
        let steady = &new_views_per_window[2..];
        assert!(steady.iter().all(|&n| n == p / r), "{steady:?}");
    }
}
