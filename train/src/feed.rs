//! The batch feeder: a producer thread that prepares the batches of steps `start..end` in order
//! (crops, priors and, for an external F, its outputs) while the trainer runs the current step.
//! `fit` and `bench` use the same feeder, so `train bench` times what `fit` does.

use crate::backend::StepBatch;
use crate::data::{Batch, PriorInput, TrainSet};
use crate::onnx_run::{OnnxGraph, PriorModel};
use crate::pool::{PrepTiming, ViewPool};
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
