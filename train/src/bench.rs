//! `train bench`: times training steps of a recipe exactly as `fit` runs them (the feeder's
//! thread preparing crops, priors and a frozen F's outputs ahead, the backend's
//! forward/backward/Adam step) and reports the wall-clock rate, plus where the time goes: the
//! producer's parts (per step, summed over its thread) and the trainer's step.
//!
//! Its last line is exactly `steps/s <number>`: measured steps over measured wall time, after
//! warm-up steps that are not counted (the first steps also fill the view pool).

use crate::backend::{Backend, LossConfig, trainer};
use crate::data::TrainSet;
use crate::feed::{Feeder, PriorDropout};
use crate::fit::{open_external_base, open_prior};
use crate::recipe::Recipe;
use crate::run::model_config;
use anyhow::{Result, anyhow, bail};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub struct BenchOptions<'a> {
    pub recipe: &'a Path,
    pub steps: u64,
    /// Uncounted steps first (None: enough to fill the view pool, at least 3).
    pub warmup: Option<u64>,
    pub batch: Option<usize>,
    pub crop: Option<usize>,
    /// Override the recipe's data.view_reuse.
    pub view_reuse: Option<usize>,
    pub backend: Backend,
    /// Producer threads (see `Feeder::start`).
    pub feed_threads: usize,
}

pub fn bench(o: &BenchOptions) -> Result<()> {
    let (mut recipe, _) = Recipe::load(o.recipe)?;
    if o.steps == 0 {
        bail!("--steps must be at least 1");
    }
    if let Some(c) = o.crop {
        recipe.data.crop = c;
    }
    if let Some(r) = o.view_reuse {
        recipe.data.view_reuse = r;
    }
    let n = o.batch.unwrap_or(recipe.train.batch);
    let cfg = model_config(&recipe)?;
    let set = Arc::new(TrainSet::load(&recipe.data, &recipe.degradation, recipe.seed)?);
    let loss = LossConfig::of(&recipe);
    let builtin = loss.builtin;
    // Default warm-up: the steps that first fill the view pool, which fit pays once per session.
    let warmup = o.warmup.unwrap_or(if recipe.data.view_reuse > 1 { (recipe.data.pool_views.div_ceil(n) as u64 + 2).max(3) } else { 3 });
    let params = ptgrm_model::export::init_params(&cfg, recipe.seed).map_err(|e| anyhow!(e))?;
    let count = |prefix: &str| ptgrm_model::params::count_prefix(&params, prefix);
    let mut t = trainer(o.backend, &cfg, loss, recipe.seed, &params, None, &recipe.train.trainable)?;

    // Pool refreshes are spread evenly over each window of `pool_views` crops, not within it:
    // a shorter measurement can miss (or catch only) view rebuilds.
    if recipe.data.view_reuse > 1 && (o.steps as usize) * n < recipe.data.pool_views {
        eprintln!(
            "note: {} measured crops are fewer than data.pool_views = {}; producer times are not the steady state's (use --steps {} or more)",
            o.steps as usize * n,
            recipe.data.pool_views,
            recipe.data.pool_views.div_ceil(n)
        );
    }
    let total = warmup + o.steps;
    let open = || Ok((open_prior(&recipe, &cfg.refiner)?, open_external_base(&recipe)?));
    let dropout = PriorDropout { rate: recipe.train.prior_dropout, seed: recipe.seed };
    let mut feeder = Feeder::start(Arc::clone(&set), &open, (0, total), n, cfg.refiner.prior_dim, dropout, o.feed_threads)?;
    let (mut data, mut prior_s, mut base_s, mut step_s) = (0.0, 0.0, 0.0, 0.0);
    let mut views = 0u64;
    let mut started = Instant::now();
    for step in 0..total {
        if step == warmup {
            started = Instant::now();
        }
        let p = feeder.recv()?;
        let b = p.step_batch();
        let t0 = Instant::now();
        let r = t.step(&b, 1e-4);
        if !r.applied {
            bail!("loss became {} at bench step {step}", r.loss);
        }
        if step >= warmup {
            step_s += t0.elapsed().as_secs_f64();
            data += p.timing.data_s;
            prior_s += p.timing.prior_s;
            base_s += p.timing.base_s;
            views += p.timing.views;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    drop(feeder);
    let k = o.steps as f64;
    println!(
        "{}: batch {n} of {}x{} crops, F {} ({}) + R {} parameters, backend {}, view_reuse {}, {} feed threads, {} cores",
        recipe.name,
        recipe.data.crop,
        recipe.data.crop,
        count("base."),
        if builtin { "built in" } else { "external, frozen" },
        count("refiner."),
        t.backend().name(),
        recipe.data.view_reuse,
        o.feed_threads,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "per step: views built {:.2}, producer thread data {:.1} ms, prior {:.1} ms, frozen F {:.1} ms | trainer forward+backward+Adam {:.1} ms",
        views as f64 / k,
        data / k * 1e3,
        prior_s / k * 1e3,
        base_s / k * 1e3,
        step_s / k * 1e3
    );
    println!("{} steps in {:.2} s after {} warm-up steps", o.steps, wall, warmup);
    println!("steps/s {:.3}", k / wall);
    Ok(())
}
