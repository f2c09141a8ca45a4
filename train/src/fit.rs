//! `train fit`: the training loop. Batches (with their priors and, for an external F, its
//! outputs) are prepared on a second thread while the current step runs; every step is a pure
//! function of (seed, step) and the checkpoint, so a run resumed after kill -9 continues exactly.

use crate::adam::Adam;
use crate::burn_ops::{ParamStore, BT};
use crate::checkpoint::{Checkpoint, LoopState};
use crate::data::{load_validation, Batch, PriorInput, TrainSet};
use crate::evaluate::{prepare, score_all, PreparedVal, Scores};
use crate::metrics_log::MetricsLog;
use crate::model::{charbonnier, forward};
use crate::onnx_run::{OnnxGraph, PriorModel};
use crate::recipe::BaseSpec;
use crate::run::{device, RunDir};
use anyhow::{anyhow, bail, Context, Result};
use burn::tensor::{Tensor, TensorData};
use ptgrm_model::params::{ParamMap, ParamValue};
use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

pub struct FitOptions<'a> {
    pub recipe: Option<&'a Path>,
    pub out: &'a Path,
    pub resume: bool,
    /// Stop (with a checkpoint) after this many steps in this session; the run can be resumed.
    pub stop_after: Option<u64>,
    pub quiet: bool,
}

/// A prepared training step: the batch, the priors `[N*D]`, external F's outputs.
struct Prepared {
    step: u64,
    batch: Batch,
    priors: Vec<f32>,
    external_base: Option<Vec<f32>>,
}

pub fn open_prior(run: &RunDir) -> Result<Option<PriorModel>> {
    let p = &run.recipe.prior;
    match &p.path {
        Some(path) if !p.is_none() => Ok(Some(PriorModel::load(path, run.model.refiner.prior_dim, p.input_size)?)),
        _ => Ok(None),
    }
}

pub fn open_external_base(run: &RunDir) -> Result<Option<OnnxGraph>> {
    match &run.recipe.base {
        BaseSpec::Onnx { path, .. } => Ok(Some(OnnxGraph::load(path, Some(ptgrm_model::bundle_format::io::BASE))?)),
        BaseSpec::Builtin => Ok(None),
    }
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

/// Validation images with priors (and external F outputs) computed once.
pub fn prepared_validation(run: &RunDir, val_crop: Option<usize>) -> Result<Vec<PreparedVal>> {
    let mut data = run.recipe.data.clone();
    if let Some(c) = val_crop {
        data.val_crop = c;
    }
    let images = load_validation(&data, &run.recipe.degradation, run.recipe.seed)?;
    if images.is_empty() {
        bail!("no usable validation images in {:?} / {:?}", data.val, data.val_pairs);
    }
    let mut prior = open_prior(run)?;
    let mut ext = open_external_base(run)?;
    prepare(images, prior.as_mut(), run.model.refiner.prior_dim, ext.as_mut(), run.model.pad_multiple())
}

pub fn param_store_from_checkpoint(ck: &Checkpoint, trainable: bool, seed: u64) -> Result<ParamStore> {
    let params = ck.groups.get("param").ok_or_else(|| anyhow!("checkpoint holds no parameters"))?;
    let mut store = ParamStore::new(if trainable { device().autodiff() } else { device() }, seed, trainable);
    store.load_param_map(params);
    Ok(store)
}

fn check_params_match(store: &ParamStore, expected: &ParamMap) -> Result<()> {
    for (k, v) in expected {
        match store.shapes.get(k) {
            Some(s) if *s == v.shape => {}
            Some(s) => bail!("checkpoint parameter {k} has shape {s:?}, the recipe's model needs {:?}", v.shape),
            None => bail!("checkpoint lacks parameter {k} that the recipe's model needs"),
        }
    }
    if store.shapes.len() != expected.len() {
        bail!("checkpoint has {} parameters, the recipe's model {}", store.shapes.len(), expected.len());
    }
    Ok(())
}

fn moments(map: &BTreeMap<String, Tensor<1>>) -> ParamMap {
    map.iter()
        .map(|(k, t)| {
            let data = t.to_data().convert::<f32>().try_to_vec::<f32>().expect("float moments");
            (k.clone(), ParamValue { shape: vec![data.len()], data })
        })
        .collect()
}

fn save(run: &RunDir, store: &ParamStore, adam: &Adam, state: &LoopState) -> Result<()> {
    let groups = BTreeMap::from([
        ("param".to_string(), store.to_param_map()),
        ("adam_m".to_string(), moments(&adam.m)),
        ("adam_v".to_string(), moments(&adam.v)),
    ]);
    Checkpoint { state: state.clone(), groups }.write_atomic(&run.checkpoint())
}

fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s % 3600 / 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

pub fn fit(opts: &FitOptions) -> Result<()> {
    let run = if opts.resume {
        let run = RunDir::open(opts.out)?;
        if let Some(r) = opts.recipe {
            let text = std::fs::read_to_string(r).with_context(|| format!("reading {}", r.display()))?;
            if text != run.recipe_text {
                bail!("--recipe {} differs from the recipe the run in {} was started with", r.display(), opts.out.display());
            }
        }
        run
    } else {
        let r = opts.recipe.ok_or_else(|| anyhow!("--recipe is required to start a run"))?;
        RunDir::create(opts.out, r)?
    };
    let recipe = &run.recipe;
    let cfg = &run.model;
    let tc = &recipe.train;
    let builtin = matches!(recipe.base, BaseSpec::Builtin);
    // F trained alone (the baseline the refiner is compared against): loss on F only.
    let base_alone = builtin && tc.lambda1 == 0.0;

    let train_set = Arc::new(TrainSet::load(&recipe.data, &recipe.degradation, recipe.seed)?);
    let val = prepared_validation(&run, None)?;
    let expected = ptgrm_model::export::init_params(cfg, recipe.seed).map_err(|e| anyhow!(e))?;
    let (n_base, n_ref) = (
        ptgrm_model::params::count_prefix(&expected, "base."),
        ptgrm_model::params::count_prefix(&expected, "refiner."),
    );
    eprintln!(
        "{}: {} | F {} parameters ({}), R {} parameters | {} validation images",
        recipe.name,
        train_set.describe(),
        n_base,
        if builtin { "built in, trained" } else { "external, frozen" },
        n_ref,
        val.len()
    );

    // Parameters, optimizer and loop state: fresh or from the checkpoint.
    let mut adam = Adam::default();
    let (mut store, mut state) = if opts.resume && run.checkpoint().exists() {
        let ck = Checkpoint::read(&run.checkpoint())?;
        let store = param_store_from_checkpoint(&ck, true, recipe.seed)?;
        check_params_match(&store, &expected)?;
        let inner = device();
        for (group, slot) in [("adam_m", &mut adam.m), ("adam_v", &mut adam.v)] {
            for (k, v) in ck.groups.get(group).into_iter().flatten() {
                slot.insert(k.clone(), Tensor::from_data(TensorData::new(v.data.clone(), [v.data.len()]), &inner));
            }
        }
        adam.t = ck.state.adam_t;
        eprintln!("resuming at step {} of {}", ck.state.step, tc.steps);
        (store, ck.state)
    } else {
        let mut store = ParamStore::new(device().autodiff(), recipe.seed, true);
        store.load_param_map(&expected);
        (store, LoopState::default())
    };
    let mut log = MetricsLog::open(&run.dir, state.step)?;

    if state.step >= tc.steps {
        eprintln!("run already complete ({} steps)", state.step);
        return Ok(());
    }

    // Producer thread: batches with priors and external F outputs, in step order.
    let (tx, rx) = sync_channel::<Result<Prepared>>(2);
    let producer = {
        let set = Arc::clone(&train_set);
        let mut prior = open_prior(&run)?;
        let mut ext = open_external_base(&run)?;
        let (start, end, n, dim) = (state.step, tc.steps, tc.batch, cfg.refiner.prior_dim);
        std::thread::spawn(move || {
            let mut whole_cache: HashMap<usize, Vec<f32>> = HashMap::new();
            for step in start..end {
                let made = (|| -> Result<Prepared> {
                    let batch = set.batch(step, n);
                    let mut priors = Vec::with_capacity(n * dim);
                    for pi in &batch.prior_inputs {
                        match (prior.as_mut(), pi) {
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
                    let external_base = match ext.as_mut() {
                        Some(f) => {
                            let (input, side) = if batch.context > 0 {
                                (&batch.context_degraded, batch.side + 2 * batch.context)
                            } else {
                                (&batch.degraded, batch.side)
                            };
                            let (shape, out) = f.run([n, 3, side, side], input)?;
                            if shape != [n, 3, side, side] {
                                bail!("external base {} returned shape {shape:?} for a batch of {n}x3x{side}x{side}", f.path);
                            }
                            Some(centre_crops(&out, n * 3, side, batch.side))
                        }
                        None => None,
                    };
                    Ok(Prepared { step, batch, priors, external_base })
                })();
                let failed = made.is_err();
                if tx.send(made).is_err() || failed {
                    return;
                }
            }
        })
    };

    let tty = std::io::stderr().is_terminal() && !opts.quiet;
    let session_start = Instant::now();
    let wall_before = state.wall_time_s;
    let mut last = Instant::now();
    let mut step_time_ema: Option<f64> = None;
    let mut session_steps = 0u64;
    let last_val = |m: &BTreeMap<String, f64>| match (m.get("val_psnr_base"), m.get("val_psnr_refined")) {
        (Some(b), Some(r)) => format!("val base {b:.2} refined {r:.2} dB"),
        _ => "val -".to_string(),
    };
    while state.step < tc.steps {
        let p = rx.recv().map_err(|_| anyhow!("data thread stopped"))??;
        debug_assert_eq!(p.step, state.step);
        let (n, s) = (p.batch.n, p.batch.side);
        let dev = store.device.clone();
        let x = Tensor::<4>::from_data(TensorData::new(p.batch.degraded, [n, 3, s, s]), &dev);
        let y = Tensor::<4>::from_data(TensorData::new(p.batch.clean, [n, 3, s, s]), &dev);
        let g = Tensor::<2>::from_data(TensorData::new(p.priors, [n, cfg.refiner.prior_dim]), &dev);
        let ext = p.external_base.map(|v| BT::R4(Tensor::from_data(TensorData::new(v, [n, 3, s, s]), &dev)));
        let (loss, loss_base, loss_ref) = if base_alone {
            // λ1 = 0: R gets no gradient and F none through R, so R's forward is skipped.
            let mut ops = crate::burn_ops::BurnOps::new(&mut store);
            let base = ptgrm_model::base::base_forward(&mut ops, cfg.base.as_ref().expect("built-in F"), &BT::R4(x));
            let lb = charbonnier(base.r4(), y, tc.charbonnier_eps);
            (lb.clone(), lb.clone(), lb.zeros_like())
        } else {
            let (base, refined) = forward(&mut store, cfg, &BT::R4(x), &BT::R2(g), ext);
            let loss_base = charbonnier(base.r4(), y.clone(), tc.charbonnier_eps);
            let loss_ref = charbonnier(refined.r4(), y, tc.charbonnier_eps);
            let loss = if builtin { loss_base.clone() + loss_ref.clone().mul_scalar(tc.lambda1) } else { loss_ref.clone() };
            (loss, loss_base, loss_ref)
        };
        let grads = loss.backward();
        let values = Tensor::cat(vec![loss.detach(), loss_base.detach(), loss_ref.detach()], 0)
            .to_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("loss values");
        let (l, lb, lr_) = (values[0] as f64, values[1] as f64, values[2] as f64);
        if !l.is_finite() {
            bail!(
                "loss became {l} at step {} (base {lb}, refined {lr_}); stopped without applying it. The last checkpoint \
                 (step {}) is intact: lower train.lr or set train.grad_clip, then resume",
                state.step + 1,
                Checkpoint::read(&run.checkpoint()).map(|c| c.state.step).unwrap_or(0)
            );
        }
        let lr = tc.lr_at(state.step);
        let gnorm = adam.step(&mut store, &grads, lr, tc.grad_clip);
        if !gnorm.is_finite() {
            bail!("gradient norm became {gnorm} at step {}; lower train.lr or set train.grad_clip, then resume", state.step + 1);
        }
        state.step += 1;
        session_steps += 1;
        state.adam_t = adam.t;
        let now = Instant::now();
        let dt = now.duration_since(last).as_secs_f64();
        last = now;
        step_time_ema = Some(match step_time_ema {
            Some(e) if session_steps > 2 => 0.95 * e + 0.05 * dt,
            _ => dt,
        });
        state.wall_time_s = wall_before + session_start.elapsed().as_secs_f64();
        let sps = 1.0 / step_time_ema.unwrap().max(1e-9);
        log.train_row(state.step, l, lb, lr_, lr, gnorm, sps, state.wall_time_s)?;

        let is_last = state.step == tc.steps;
        let stopping = opts.stop_after.is_some_and(|k| session_steps >= k);
        if state.step % tc.val_every == 0 || is_last {
            let mut infer = store.inference_copy();
            let (_, mean, _) = score_all(&mut infer, cfg, &val, false)?;
            state.metrics = mean.to_map("val_");
            log.val_row(state.step, &mean, state.wall_time_s)?;
            if !tty && !opts.quiet {
                print_val(state.step, &mean);
            }
        }
        if state.step % tc.checkpoint_every == 0 || state.step % tc.val_every == 0 || is_last || stopping {
            save(&run, &store, &adam, &state)?;
            log.write_plot(state.step)?;
        }
        let eta = (tc.steps - state.step) as f64 / sps;
        let line = format!(
            "step {}/{} loss {l:.5} (F {lb:.5} R {lr_:.5}) lr {lr:.2e} | {} | {sps:.2} step/s ETA {}",
            state.step,
            tc.steps,
            last_val(&state.metrics),
            fmt_duration(eta)
        );
        if tty {
            eprint!("\r{line}\x1b[K");
        } else if !opts.quiet && (state.step % 10 == 0 || is_last || state.step <= 3) {
            eprintln!("{line}");
        }
        if stopping && !is_last {
            if tty {
                eprintln!();
            }
            eprintln!("stopped after {session_steps} steps at step {} (checkpoint written; continue with --resume)", state.step);
            drop(rx);
            let _ = producer.join();
            return Ok(());
        }
    }
    if tty {
        eprintln!();
    }
    drop(rx);
    let _ = producer.join();
    eprintln!(
        "done: {} steps in {} | {}",
        state.step,
        fmt_duration(state.wall_time_s),
        last_val(&state.metrics)
    );
    Ok(())
}

fn print_val(step: u64, m: &Scores) {
    eprintln!(
        "validation at step {step}: PSNR input {:.2} base {:.2} refined {:.2} dB | SSIM input {:.4} base {:.4} refined {:.4}",
        m.psnr_input, m.psnr_base, m.psnr_refined, m.ssim_input, m.ssim_base, m.ssim_refined
    );
}
