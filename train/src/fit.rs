//! `train fit`: the training loop. Batches (with their priors and, for an external F, its
//! outputs) come from the feeder's thread while the current step runs; every step is a pure
//! function of (seed, step) and the checkpoint, so a run resumed after kill -9 continues exactly,
//! on this machine or another, on either backend.

use crate::backend::{Backend, LossConfig, OptimizerState, Trainer, trainer};
use crate::burn_ops::ParamStore;
use crate::checkpoint::{Checkpoint, LoopState};
use crate::data::{TrainSet, load_validation};
use crate::evaluate::{PreparedVal, Scores, prepare, score_all};
use crate::feed::{Feeder, PriorDropout};
use crate::metrics_log::MetricsLog;
use crate::onnx_run::{OnnxGraph, PriorModel};
use crate::recipe::{BaseSpec, Recipe};
use crate::run::{RunDir, device};
use anyhow::{Context, Result, anyhow, bail};
use ptgrm_model::params::ParamMap;
use ptgrm_model::ptgrm::RefinerConfig;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

pub struct FitOptions<'a> {
    pub recipe: Option<&'a Path>,
    pub out: &'a Path,
    pub resume: bool,
    /// Stop (with a checkpoint) after this many steps in this session; the run can be resumed.
    pub stop_after: Option<u64>,
    /// Lengthen the run's schedule by this many steps (with --resume; see RunDir::extend).
    pub extend_steps: Option<u64>,
    pub backend: Backend,
    /// Producer threads preparing batches (1 suits a CPU trainer; a GPU one needs more).
    pub feed_threads: usize,
    pub quiet: bool,
}

/// The recipe's prior graph G (None for `kind = "none"`), giving what the refiner reads: vectors
/// of length `prior_dim`, grids of `prior_grid`² cells.
pub fn open_prior(recipe: &Recipe, refiner: &RefinerConfig) -> Result<Option<PriorModel>> {
    let p = &recipe.prior;
    match &p.path {
        Some(path) if !p.is_none() => Ok(Some(PriorModel::load(path, refiner.prior_dim, p.input_size, refiner.prior_grid)?)),
        _ => Ok(None),
    }
}

/// The recipe's frozen external F, if its base is an ONNX graph.
pub fn open_external_base(recipe: &Recipe) -> Result<Option<OnnxGraph>> {
    match &recipe.base {
        BaseSpec::Onnx { path, .. } => Ok(Some(OnnxGraph::load(path, Some(ptgrm_bundle::io::BASE))?)),
        BaseSpec::Builtin => Ok(None),
    }
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
    let mut prior = open_prior(&run.recipe, &run.model.refiner)?;
    let mut ext = open_external_base(&run.recipe)?;
    prepare(images, prior.as_mut(), run.model.refiner.prior_dim, ext.as_mut(), run.model.pad_multiple())
}

pub fn param_store_from_checkpoint(ck: &Checkpoint, trainable: bool, seed: u64) -> Result<ParamStore> {
    let params = ck.groups.get("param").ok_or_else(|| anyhow!("checkpoint holds no parameters"))?;
    let mut store = ParamStore::new(if trainable { device().autodiff() } else { device() }, seed, trainable);
    store.load_param_map(params);
    Ok(store)
}

/// `expected` with every parameter taken from `found`, except those under a `fresh` prefix: they
/// keep `expected`'s seeded values whether or not `found` holds them, and `found`'s values
/// there are not used (a part added to a trained model, or a part retrained from scratch, such
/// as a g = 0 twin of R on a trained F). Everything else must match as in [`check_params_match`].
fn start_params(found: &ParamMap, expected: &ParamMap, fresh: &[String]) -> Result<ParamMap> {
    let is_fresh = |k: &str| fresh.iter().any(|p| k.starts_with(p.as_str()));
    let mut start = ParamMap::new();
    let mut kept = Vec::new();
    for (k, v) in expected {
        if is_fresh(k) {
            kept.push(k.as_str());
            start.insert(k.clone(), v.clone());
        } else if let Some(p) = found.get(k) {
            start.insert(k.clone(), p.clone());
        }
    }
    check_params_match(&start, expected)?;
    if let Some(k) = found.keys().find(|k| !expected.contains_key(*k) && !is_fresh(k)) {
        bail!("checkpoint parameter {k} is not in the recipe's model");
    }
    if !kept.is_empty() {
        eprintln!("{} parameters start from their initialisation, not the checkpoint (train.init_fresh): {}", kept.len(), kept.join(", "));
    }
    Ok(start)
}

fn check_params_match(found: &ParamMap, expected: &ParamMap) -> Result<()> {
    for (k, v) in expected {
        match found.get(k).map(|p| &p.shape) {
            Some(s) if *s == v.shape => {}
            Some(s) => bail!("checkpoint parameter {k} has shape {s:?}, the recipe's model needs {:?}", v.shape),
            None => bail!("checkpoint lacks parameter {k} that the recipe's model needs"),
        }
    }
    if found.len() != expected.len() {
        bail!("checkpoint has {} parameters, the recipe's model {}", found.len(), expected.len());
    }
    Ok(())
}

fn save(run: &RunDir, params: ParamMap, t: &dyn Trainer, state: &LoopState) -> Result<()> {
    let opt = t.optimizer_state();
    let groups = BTreeMap::from([("param".to_string(), params), ("adam_m".to_string(), opt.m), ("adam_v".to_string(), opt.v)]);
    Checkpoint { state: state.clone(), groups }.write_atomic(&run.checkpoint())
}

/// An inference store (burn, no autodiff) holding `params`, for validation.
fn inference_store(params: &ParamMap, seed: u64) -> ParamStore {
    let mut store = ParamStore::new(device(), seed, false);
    store.load_param_map(params);
    store
}

fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0) as u64;
    if s >= 3600 { format!("{}h{:02}m", s / 3600, s % 3600 / 60) } else { format!("{}m{:02}s", s / 60, s % 60) }
}

pub fn fit(opts: &FitOptions) -> Result<()> {
    let run = if opts.resume {
        let mut run = RunDir::open(opts.out)?;
        if let Some(r) = opts.recipe {
            let text = std::fs::read_to_string(r).with_context(|| format!("reading {}", r.display()))?;
            if text != run.recipe_text {
                bail!("--recipe {} differs from the recipe the run in {} was started with", r.display(), opts.out.display());
            }
        }
        if let Some(n) = opts.extend_steps {
            run.extend(n)?;
            eprintln!("schedule extended by {n} steps to {} (cosine over the new total)", run.recipe.train.steps);
        }
        run
    } else {
        if opts.extend_steps.is_some() {
            bail!("--extend-steps lengthens an existing run: use it with --resume");
        }
        let r = opts.recipe.ok_or_else(|| anyhow!("--recipe is required to start a run"))?;
        RunDir::create(opts.out, r)?
    };
    let recipe = &run.recipe;
    let cfg = &run.model;
    let tc = &recipe.train;
    let builtin = matches!(recipe.base, BaseSpec::Builtin);
    let loss = LossConfig::of(recipe);

    let train_set = Arc::new(TrainSet::load(&recipe.data, &recipe.degradation, recipe.seed)?);
    let val = prepared_validation(&run, None)?;
    let expected = ptgrm_model::export::init_params(cfg, recipe.seed).map_err(|e| anyhow!(e))?;
    let (n_base, n_ref) = (ptgrm_model::params::count_prefix(&expected, "base."), ptgrm_model::params::count_prefix(&expected, "refiner."));
    eprintln!(
        "{}: {} | F {} parameters ({}), R {} parameters | {} validation images | backend {}",
        recipe.name,
        train_set.describe(),
        n_base,
        if builtin { "built in, trained" } else { "external, frozen" },
        n_ref,
        val.len(),
        opts.backend.name()
    );

    // Parameters, optimizer and loop state: fresh or from the checkpoint.
    let (mut trainer, mut state) = if opts.resume && run.checkpoint().exists() {
        let ck = Checkpoint::read(&run.checkpoint())?;
        let params = ck.groups.get("param").ok_or_else(|| anyhow!("checkpoint holds no parameters"))?;
        check_params_match(params, &expected)?;
        let opt = OptimizerState {
            t: ck.state.adam_t,
            m: ck.groups.get("adam_m").cloned().unwrap_or_default(),
            v: ck.groups.get("adam_v").cloned().unwrap_or_default(),
        };
        eprintln!("resuming at step {} of {}", ck.state.step, tc.steps);
        (trainer(opts.backend, cfg, loss, recipe.seed, params, Some(&opt), &tc.trainable)?, ck.state)
    } else if let Some(from) = &tc.init_from {
        let path = if from.is_dir() { from.join(crate::run::CHECKPOINT_FILE) } else { from.clone() };
        let ck = Checkpoint::read(&path).with_context(|| format!("train.init_from {}", from.display()))?;
        let params = ck.groups.get("param").ok_or_else(|| anyhow!("{} holds no parameters", path.display()))?;
        let params = start_params(params, &expected, &tc.init_fresh).with_context(|| format!("train.init_from {}", path.display()))?;
        eprintln!("starting from the parameters of {} (its step {})", path.display(), ck.state.step);
        (trainer(opts.backend, cfg, loss, recipe.seed, &params, None, &tc.trainable)?, LoopState::default())
    } else {
        (trainer(opts.backend, cfg, loss, recipe.seed, &expected, None, &tc.trainable)?, LoopState::default())
    };
    let mut log = MetricsLog::open(&run.dir, state.step)?;

    if state.step >= tc.steps {
        eprintln!("run already complete ({} steps); lengthen it with --resume --extend-steps N", state.step);
        return Ok(());
    }

    if cfg.refiner.prior_grid > 0 && train_set.view_reuse <= 1 {
        bail!(
            "a per-region prior (model.refiner.prior_grid) is cut to each crop from its view's grid, which only the view pool keeps: set data.view_reuse > 1"
        );
    }
    let open = || Ok((open_prior(recipe, &cfg.refiner)?, open_external_base(recipe)?));
    let mut feeder = Feeder::start(
        Arc::clone(&train_set),
        &open,
        (state.step, tc.steps),
        tc.batch,
        cfg.refiner.prior_dim,
        PriorDropout { rate: tc.prior_dropout, seed: recipe.seed },
        opts.feed_threads,
    )?;

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
        let p = feeder.recv()?;
        debug_assert_eq!(p.step, state.step);
        let batch = p.step_batch();
        let lr = tc.lr_at(state.step);
        let r = trainer.step(&batch, lr);
        let (l, lb, lr_) = (r.loss, r.loss_base, r.loss_refined);
        if !r.applied {
            bail!(
                "loss became {l} at step {} (base {lb}, refined {lr_}); stopped without applying it. The last checkpoint \
                 (step {}) is intact: lower train.lr or set train.grad_clip, then resume",
                state.step + 1,
                Checkpoint::read(&run.checkpoint()).map(|c| c.state.step).unwrap_or(0)
            );
        }
        let gnorm = r.grad_norm;
        if !gnorm.is_finite() {
            bail!("gradient norm became {gnorm} at step {}; lower train.lr or set train.grad_clip, then resume", state.step + 1);
        }
        state.step += 1;
        session_steps += 1;
        state.adam_t = trainer.adam_steps();
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
        let validating = state.step % tc.val_every == 0 || is_last;
        let checkpointing = state.step % tc.checkpoint_every == 0 || validating || stopping;
        let params = (validating || checkpointing).then(|| trainer.params());
        if validating {
            let mut infer = inference_store(params.as_ref().expect("params taken"), recipe.seed);
            let (_, mean, _) = score_all(&mut infer, cfg, &val, false)?;
            state.metrics = mean.to_map("val_");
            log.val_row(state.step, &mean, state.wall_time_s)?;
            if !tty && !opts.quiet {
                print_val(state.step, &mean);
            }
        }
        if checkpointing {
            save(&run, params.expect("params taken"), trainer.as_ref(), &state)?;
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
            return Ok(());
        }
    }
    if tty {
        eprintln!();
    }
    drop(feeder);
    eprintln!("done: {} steps in {} | {}", state.step, fmt_duration(state.wall_time_s), last_val(&state.metrics));
    Ok(())
}

fn print_val(step: u64, m: &Scores) {
    eprintln!(
        "validation at step {step}: PSNR input {:.2} base {:.2} refined {:.2} dB | SSIM input {:.4} base {:.4} refined {:.4}",
        m.psnr_input, m.psnr_base, m.psnr_refined, m.ssim_input, m.ssim_base, m.ssim_refined
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptgrm_model::params::ParamValue;

    fn map(entries: &[(&str, f32)]) -> ParamMap {
        entries.iter().map(|(k, v)| (k.to_string(), ParamValue { shape: vec![1], data: vec![*v] })).collect()
    }

    /// A fine-tune that adds a part to a trained model starts from the trained values and the
    /// new part's initialisation; anything else missing or left over is an error naming it.
    #[test]
    fn init_from_fills_only_listed_fresh_parameters() {
        let expected = map(&[("refiner.a", 0.0), ("refiner.t_m.exposure.weight", 0.0)]);
        let trained = map(&[("refiner.a", 5.0)]);
        let fresh = vec!["refiner.t_m.exposure".to_string()];
        let start = start_params(&trained, &expected, &fresh).unwrap();
        assert_eq!(start, map(&[("refiner.a", 5.0), ("refiner.t_m.exposure.weight", 0.0)]));

        let err = start_params(&trained, &expected, &[]).unwrap_err().to_string();
        assert!(err.contains("lacks parameter refiner.t_m.exposure.weight"), "{err}");
        let extra = map(&[("refiner.a", 5.0), ("refiner.old", 1.0)]);
        let err = start_params(&extra, &expected, &fresh).unwrap_err().to_string();
        assert!(err.contains("refiner.old"), "{err}");
    }

    /// R retrained from scratch on a trained F (e.g. its g = 0 twin, which has no prior
    /// mappings): F comes from the checkpoint, every parameter of R from its initialisation, and
    /// R's parameters the new model lacks are not an error.
    #[test]
    fn init_fresh_restarts_a_part_the_checkpoint_holds() {
        let expected = map(&[("base.a", 0.0), ("refiner.a", 0.0)]);
        let trained = map(&[("base.a", 5.0), ("refiner.a", 6.0), ("refiner.t_m.fc1.weight", 7.0)]);
        let start = start_params(&trained, &expected, &["refiner.".to_string()]).unwrap();
        assert_eq!(start, map(&[("base.a", 5.0), ("refiner.a", 0.0)]));
        let err = start_params(&trained, &expected, &["refiner.a".to_string()]).unwrap_err().to_string();
        assert!(err.contains("refiner.t_m.fc1.weight"), "{err}");
    }
}
