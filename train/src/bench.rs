//! `train bench`: times the parts of a training step for a recipe: batch synthesis, prior
//! calls, and the F+R forward/backward/Adam step. `fit` overlaps the first two with the third
//! on a second thread, so its rate is about 1 / max(step, data + prior).

use crate::adam::Adam;
use crate::burn_ops::{ParamStore, BT};
use crate::data::{PriorInput, TrainSet};
use crate::model::{charbonnier, forward};
use crate::onnx_run::PriorModel;
use crate::recipe::{BaseSpec, Recipe};
use crate::run::{device, model_config};
use anyhow::{anyhow, bail, Result};
use burn::tensor::{Tensor, TensorData};
use std::path::Path;
use std::time::Instant;

pub fn bench(recipe_path: &Path, steps: u64, batch: Option<usize>, crop: Option<usize>) -> Result<()> {
    let (mut recipe, _) = Recipe::load(recipe_path)?;
    if !matches!(recipe.base, BaseSpec::Builtin) {
        bail!("bench times the built-in F+R; this recipe has an external F");
    }
    if let Some(c) = crop {
        recipe.data.crop = c;
    }
    let n = batch.unwrap_or(recipe.train.batch);
    let cfg = model_config(&recipe)?;
    let set = TrainSet::load(&recipe.data, &recipe.degradation, recipe.seed)?;
    let mut prior = match (&recipe.prior.path, recipe.prior.is_none()) {
        (Some(p), false) => Some(PriorModel::load(p, cfg.refiner.prior_dim, recipe.prior.input_size)?),
        _ => None,
    };
    let params = ptgrm_model::export::init_params(&cfg, recipe.seed).map_err(|e| anyhow!(e))?;
    let mut store = ParamStore::new(device().autodiff(), recipe.seed, true);
    store.load_param_map(&params);
    let mut adam = Adam::default();
    let dim = cfg.refiner.prior_dim;
    let (mut t_data, mut t_prior, mut t_step) = (0.0, 0.0, 0.0);
    let warmup = 2;
    for step in 0..steps + warmup {
        let t0 = Instant::now();
        let b = set.batch(step, n);
        let t1 = Instant::now();
        let mut g = Vec::with_capacity(n * dim);
        for pi in &b.prior_inputs {
            match (prior.as_mut(), pi) {
                (Some(p), PriorInput::View(v)) => g.extend(p.compute(v)?),
                (Some(p), PriorInput::WholeExample(i)) => g.extend(p.compute(&set.examples[*i].degraded.as_ref().unwrap().to_image())?),
                (None, _) => g.extend(std::iter::repeat_n(0.0, dim)),
            }
        }
        let t2 = Instant::now();
        let dev = store.device.clone();
        let s = b.side;
        let x = Tensor::<4>::from_data(TensorData::new(b.degraded, [n, 3, s, s]), &dev);
        let y = Tensor::<4>::from_data(TensorData::new(b.clean, [n, 3, s, s]), &dev);
        let gt = Tensor::<2>::from_data(TensorData::new(g, [n, dim]), &dev);
        let (base, refined) = forward(&mut store, &cfg, &BT::R4(x), &BT::R2(gt), None);
        let loss = charbonnier(base.r4(), y.clone(), 1e-3) + charbonnier(refined.r4(), y, 1e-3);
        let grads = loss.backward();
        adam.step(&mut store, &grads, 1e-4, 0.0);
        let _ = loss.into_scalar::<f32>();
        let t3 = Instant::now();
        if step >= warmup {
            t_data += (t1 - t0).as_secs_f64();
            t_prior += (t2 - t1).as_secs_f64();
            t_step += (t3 - t2).as_secs_f64();
        }
    }
    let k = steps as f64;
    let (d, p, s) = (t_data / k, t_prior / k, t_step / k);
    println!(
        "{}: batch {n} of {}x{} crops, F {} + R {} parameters, {} threads",
        recipe.name,
        recipe.data.crop,
        recipe.data.crop,
        store.count("base."),
        store.count("refiner."),
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!("per step: data {:.1} ms, prior {:.1} ms, forward+backward+Adam {:.1} ms", d * 1e3, p * 1e3, s * 1e3);
    println!("steps/s: serial {:.2}, with fit's prefetch thread ~{:.2}", 1.0 / (d + p + s), 1.0 / s.max(d + p));
    Ok(())
}
