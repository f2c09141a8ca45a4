//! The batch feeder: a producer thread that prepares the batches of steps `start..end` in order
//! (crops, priors and, for an external F, its outputs) while the trainer runs the current step.
//! `fit` and `bench` use the same feeder, so `train bench` times what `fit` does.

use crate::backend::StepBatch;
use crate::data::{Batch, PriorInput, TrainSet};
use crate::onnx_run::{OnnxGraph, PriorModel};
use crate::pool::{PrepTiming, ViewPool};
use crate::rng::Rng;
use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
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

pub struct Feeder {
    rx: Option<Receiver<Result<Prepared>>>,
    handle: Option<JoinHandle<()>>,
}

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
    };
    Ok(Prepared { step, batch, priors, external_base, timing })
}

impl Feeder {
    /// Starts preparing steps `start..end` (batch `n`, prior length `dim`), two ahead.
    pub fn start(
        set: Arc<TrainSet>,
        mut prior: Option<PriorModel>,
        mut ext: Option<OnnxGraph>,
        (start, end): (u64, u64),
        n: usize,
        dim: usize,
        dropout: PriorDropout,
    ) -> Feeder {
        let (tx, rx) = sync_channel::<Result<Prepared>>(2);
        let handle = std::thread::spawn(move || {
            let mut whole_cache = HashMap::new();
            let mut pool = (set.view_reuse > 1).then(|| ViewPool::new(set.pool_views, set.view_reuse));
            for step in start..end {
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
        Feeder { rx: Some(rx), handle: Some(handle) }
    }

    /// The next step's batch (in step order), or the producer's error.
    pub fn next(&self) -> Result<Prepared> {
        self.rx.as_ref().expect("feeder running").recv().map_err(|_| anyhow!("data thread stopped"))?
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        // Closing the channel stops the producer at its next send.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PriorDropout;

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
