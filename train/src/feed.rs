//! The batch feeder: producer threads that prepare the batches of steps `start..end` (crops,
//! priors and, for an external F, its outputs) while the trainer runs the current step, handed
//! over in step order. `fit` and `bench` use the same feeder, so `train bench` times what `fit`
//! does.
//!
//! One producer keeps two cores busy on a CPU trainer. A GPU trainer steps faster than one
//! producer can prepare batches, so the feeder can run several lanes: lane k prepares steps
//! start + k, start + k + lanes, ..., each with its own ONNX sessions and view pool. A batch is
//! a pure function of its step (see `pool`), so the batches, and the run, do not depend on
//! the number of lanes.
//!
//! The work does: step t of batch n reads pool slots (t·n + i) mod P, so with P a multiple of
//! n × lanes every slot is read by one lane only and each view is built once, as with one
//! producer. Otherwise several lanes cut from the same view and each builds it (degradation,
//! prior and frozen F again): on the H200, 6 lanes on a pool of 64 at batch 16 built 5.1 views
//! per step where 1 suffices (docs/training.md, "Training on a GPU").

use crate::backend::StepBatch;
use crate::data::{Batch, PriorInput, TrainSet};
use crate::onnx_run::{OnnxGraph, PriorModel};
use crate::pool::{PrepTiming, ViewPool};
use crate::rng::Rng;
use anyhow::{Result, anyhow, bail};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

/// A prepared training step: the batch, the priors `[N*D]`, external F's outputs.
pub struct Prepared {
    pub step: u64,
    pub batch: Batch,
    pub priors: Vec<f32>,
    pub external_base: Option<Vec<f32>>,
    /// Producer time spent on this batch.
    pub timing: PrepTiming,
}

impl Prepared {
    /// The batch as the training backends take it.
    pub fn step_batch(&self) -> StepBatch<'_> {
        StepBatch {
            n: self.batch.n,
            side: self.batch.side,
            degraded: &self.batch.degraded,
            clean: &self.batch.clean,
            priors: &self.priors,
            external_base: self.external_base.as_deref(),
        }
    }
}

/// Inverted dropout on the priors of training batches (recipe `train.prior_dropout`).
#[derive(Clone, Copy, Debug)]
pub struct PriorDropout {
    /// Probability that an element of g is zeroed (0 = off).
    pub rate: f64,
    pub seed: u64,
}

impl PriorDropout {
    /// Zeroes each element of `priors` with probability `rate` and scales the rest by
    /// 1/(1 - rate), so the expected g is unchanged and inference needs no rescaling. The
    /// draws are a function of (seed, step): a resumed run drops what the uninterrupted run
    /// would have dropped.
    pub fn apply(&self, priors: &mut [f32], step: u64) {
        if self.rate <= 0.0 {
            return;
        }
        let mut rng = Rng::derived(self.seed ^ 0x5052_494F_5244_524F, step);
        let keep_scale = (1.0 / (1.0 - self.rate)) as f32;
        for v in priors.iter_mut() {
            *v = if rng.uniform() < self.rate { 0.0 } else { *v * keep_scale };
        }
    }
}

/// One producer thread and the channel it hands its batches over.
struct Lane {
    rx: Option<Receiver<Result<Prepared>>>,
    handle: Option<JoinHandle<()>>,
}

pub struct Feeder {
    lanes: Vec<Lane>,
    start: u64,
    next: u64,
}

/// Opens one producer's prior G and external F (each lane runs its own ONNX sessions).
pub type OpenModels<'a> = &'a dyn Fn() -> Result<(Option<PriorModel>, Option<OnnxGraph>)>;

/// The centred `side` x `side` window of each of `planes` square planes of side `from`.
fn centre_crops(data: &[f32], planes: usize, from: usize, side: usize) -> Vec<f32> {
    if from == side {
        return data.to_vec();
    }
    let k = (from - side) / 2;
    let mut out = Vec::with_capacity(planes * side * side);
    for p in 0..planes {
        for y in 0..side {
            let row = (p * from + y + k) * from + k;
            out.extend_from_slice(&data[row..row + side]);
        }
    }
    out
}

/// The original sampler (view_reuse = 1): every crop its own view, prior and F call; priors of
/// paired examples' whole images are cached.
fn fresh_batch(
    set: &TrainSet,
    step: u64,
    n: usize,
    prior: Option<&mut PriorModel>,
    dim: usize,
    ext: Option<&mut OnnxGraph>,
    whole_cache: &mut HashMap<usize, Vec<f32>>,
) -> Result<Prepared> {
    let t0 = Instant::now();
    let batch = set.batch(step, n);
    let t1 = Instant::now();
    let mut priors = Vec::with_capacity(n * dim);
    let mut prior = prior;
    for pi in &batch.prior_inputs {
        match (prior.as_deref_mut(), pi) {
            (None, _) => priors.extend(std::iter::repeat_n(0.0, dim)),
            (Some(p), PriorInput::View(v)) => priors.extend(p.compute(v)?),
            (Some(p), PriorInput::WholeExample(i)) => {
                if !whole_cache.contains_key(i) {
                    let g = p.compute(&set.examples[*i].degraded.as_ref().expect("paired").to_image())?;
                    whole_cache.insert(*i, g);
                }
                priors.extend_from_slice(&whole_cache[i]);
            }
        }
    }
    let t2 = Instant::now();
    let external_base = match ext {
        Some(f) if f.takes_level() => {
            bail!("{} takes each view's noise level, which only the view pool records: set data.view_reuse > 1", f.path)
        }
        Some(f) => {
            let (input, side) =
                if batch.context > 0 { (&batch.context_degraded, batch.side + 2 * batch.context) } else { (&batch.degraded, batch.side) };
            let (shape, out) = f.run([n, 3, side, side], input)?;
            if shape != [n, 3, side, side] {
                bail!("external base {} returned shape {shape:?} for a batch of {n}x3x{side}x{side}", f.path);
            }
            Some(centre_crops(&out, n * 3, side, batch.side))
        }
        None => None,
    };
    let timing = PrepTiming {
        data_s: (t1 - t0).as_secs_f64(),
        prior_s: (t2 - t1).as_secs_f64(),
        base_s: t2.elapsed().as_secs_f64(),
        views: n as u64,
    };
    Ok(Prepared { step, batch, priors, external_base, timing })
}

impl Feeder {
    /// Starts preparing steps `start..end` (batch `n`, prior length `dim`) on `lanes` producer
    /// threads, each two steps ahead.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        set: Arc<TrainSet>,
        open: OpenModels,
        (start, end): (u64, u64),
        n: usize,
        dim: usize,
        dropout: PriorDropout,
        lanes: usize,
    ) -> Result<Feeder> {
        if lanes == 0 {
            bail!("the feeder needs at least one producer thread (--feed-threads 0 given)");
        }
        if set.view_reuse > 1 && set.pool_views % (n * lanes) != 0 {
            eprintln!(
                "note: data.pool_views {} is not a multiple of batch {n} x {lanes} feed threads: lanes share pooled views and each builds them (set it to {})",
                set.pool_views,
                set.pool_views.div_ceil(n * lanes) * n * lanes
            );
        }
        let mut out = Vec::with_capacity(lanes);
        for k in 0..lanes as u64 {
            let (mut prior, mut ext) = open()?;
            let set = Arc::clone(&set);
            let (tx, rx) = sync_channel::<Result<Prepared>>(2);
            let handle = std::thread::spawn(move || {
                let mut whole_cache = HashMap::new();
                let mut pool = (set.view_reuse > 1).then(|| ViewPool::new(set.pool_views, set.view_reuse));
                for step in (start + k..end).step_by(lanes) {
                    let made = match pool.as_mut() {
                        Some(pool) => pool
                            .batch(&set, step, n, prior.as_mut(), dim, ext.as_mut())
                            .map(|(batch, priors, external_base, timing)| Prepared { step, batch, priors, external_base, timing }),
                        None => fresh_batch(&set, step, n, prior.as_mut(), dim, ext.as_mut(), &mut whole_cache),
                    };
                    let made = made.map(|mut p| {
                        dropout.apply(&mut p.priors, step);
                        p
                    });
                    let failed = made.is_err();
                    if tx.send(made).is_err() || failed {
                        return;
                    }
                }
            });
            out.push(Lane { rx: Some(rx), handle: Some(handle) });
        }
        Ok(Feeder { lanes: out, start, next: start })
    }

    /// The next step's batch (in step order), or the producer's error.
    pub fn recv(&mut self) -> Result<Prepared> {
        let k = ((self.next - self.start) % self.lanes.len() as u64) as usize;
        let rx = self.lanes[k].rx.as_ref().expect("feeder running");
        let p = rx.recv().map_err(|_| anyhow!("data thread stopped"))??;
        debug_assert_eq!(p.step, self.next, "lane {k} handed over the wrong step");
        self.next += 1;
        Ok(p)
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        // Closing the channels stops the producers at their next send.
        for lane in &mut self.lanes {
            lane.rx.take();
        }
        for lane in &mut self.lanes {
            if let Some(h) = lane.handle.take() {
                let _ = h.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Feeder, PriorDropout};
    use std::sync::Arc;

    /// A GPU run feeds from several lanes: the batches must be those of one producer, in order,
    /// so a run's result does not depend on --feed-threads.
    #[test]
    fn lanes_hand_over_the_single_producers_batches_in_step_order() {
        let dir = tempfile::tempdir().unwrap();
        let set = Arc::new(crate::pool::tests::train_set(dir.path(), 3));
        let no_models = || Ok((None, None));
        let batches = |lanes: usize| {
            let mut f = Feeder::start(Arc::clone(&set), &no_models, (5, 17), 2, 4, PriorDropout { rate: 0.0, seed: 1 }, lanes).unwrap();
            (5..17).map(|_| f.recv().unwrap()).map(|p| (p.step, p.batch.degraded, p.batch.clean)).collect::<Vec<_>>()
        };
        let one = batches(1);
        assert_eq!(one.iter().map(|b| b.0).collect::<Vec<_>>(), (5..17).collect::<Vec<_>>());
        assert!(one[0].1 != one[1].1, "consecutive steps must differ for the check to mean anything");
        for lanes in [2, 3, 5] {
            assert!(batches(lanes) == one, "{lanes} lanes gave other batches than one producer");
        }
        assert!(Feeder::start(set, &no_models, (0, 4), 2, 4, PriorDropout { rate: 0.0, seed: 1 }, 0).is_err());
    }

    /// Lanes build each pooled view once in all when the pool is a multiple of batch x lanes,
    /// and rebuild shared views otherwise (what the feeder's note warns of).
    #[test]
    fn lanes_build_each_view_once_when_the_pool_is_a_multiple_of_batch_times_lanes() {
        let dir = tempfile::tempdir().unwrap();
        let set = Arc::new(crate::pool::tests::train_set(dir.path(), 4));
        assert_eq!(set.pool_views, 6);
        let no_models = || Ok((None, None));
        let views = |lanes: usize| {
            let mut f = Feeder::start(Arc::clone(&set), &no_models, (0, 24), 3, 4, PriorDropout { rate: 0.0, seed: 1 }, lanes).unwrap();
            (0..24).map(|_| f.recv().unwrap().timing.views).sum::<u64>()
        };
        let one = views(1);
        assert_eq!(views(2), one, "batch 3 x 2 lanes divides the pool of 6");
        assert!(views(4) > one, "4 lanes share the pool's two slot groups and rebuild their views");
    }

    #[test]
    fn prior_dropout_zeroes_about_its_rate_and_keeps_the_mean() {
        let g: Vec<f32> = (0..20_000).map(|i| 0.5 + (i % 7) as f32 * 0.1).collect();
        let mut dropped = g.clone();
        PriorDropout { rate: 0.3, seed: 7 }.apply(&mut dropped, 12);
        let zeroed = dropped.iter().filter(|v| **v == 0.0).count() as f64 / g.len() as f64;
        assert!((zeroed - 0.3).abs() < 0.02, "zeroed {zeroed}");
        for (a, b) in g.iter().zip(&dropped) {
            assert!(*b == 0.0 || (b - a / 0.7).abs() < 1e-5, "{a} -> {b}");
        }
        let mean = |v: &[f32]| v.iter().map(|x| *x as f64).sum::<f64>() / v.len() as f64;
        assert!((mean(&dropped) / mean(&g) - 1.0).abs() < 0.02);
    }

    #[test]
    fn prior_dropout_is_a_function_of_seed_and_step() {
        let g = vec![1.0f32; 512];
        let draw = |seed, step| {
            let mut v = g.clone();
            PriorDropout { rate: 0.5, seed }.apply(&mut v, step);
            v
        };
        assert_eq!(draw(1, 5), draw(1, 5), "a resumed run must drop the same elements");
        assert_ne!(draw(1, 5), draw(1, 6));
        assert_ne!(draw(1, 5), draw(2, 5));
    }

    #[test]
    fn no_prior_dropout_leaves_g_untouched() {
        let g: Vec<f32> = (0..64).map(|i| i as f32 - 3.0).collect();
        let mut v = g.clone();
        PriorDropout { rate: 0.0, seed: 1 }.apply(&mut v, 3);
        assert_eq!(v, g);
    }
}
