//! Tiny end to end: a few training steps on two small photos -> resume after stop and after
//! kill -9 reproduce the uninterrupted run exactly -> export -> the bundle loads in the
//! runtime and runs -> burn and ONNX Runtime agree on the trained weights.

mod common;

use common::{max_abs_diff, random, run, session};
use ptgrm::frame::{FrameLayout, FrameMut, FrameRef, PixelFormat};
use ptgrm::{Engine, EngineOptions, ProviderRequest};
use ptgrm_bundle::Manifest;
use ptgrm_model::export::{test_grid_prior_graph, test_prior_graph};
use ptgrm_model::onnx_builder::ParamSource;
use ptgrm_train::burn_ops::tensor_from;
use ptgrm_train::checkpoint::Checkpoint;
use ptgrm_train::fit::{FitOptions, fit, param_store_from_checkpoint};
use ptgrm_train::imagebuf::Image;
use ptgrm_train::model::{forward, pad_reflect};
use ptgrm_train::run::RunDir;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STEPS: u64 = 24;
const PRIOR_DIM: usize = 8;

/// A photo-like test image: smooth gradients plus texture, different per seed.
fn photo(w: usize, h: usize, seed: u64) -> Image {
    let tex = random(3 * w * h, seed, -0.08, 0.08);
    let mut img = Image::new(w, h);
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                let base = 0.2 + 0.6 * ((x as f32 / w as f32) * (0.5 + 0.2 * c as f32) + (y as f32 / h as f32) * 0.4);
                let stripes = 0.1 * (((x + 2 * y) as f32 * 0.7 + seed as f32).sin());
                *img.at_mut(c, y, x) = (base + stripes + tex[(c * h + y) * w + x]).clamp(0.0, 1.0);
            }
        }
    }
    img
}

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    recipe: PathBuf,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    for sub in ["train", "val"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    photo(48, 40, 1).save_png(&root.join("train/a.png")).unwrap();
    photo(40, 56, 2).save_png(&root.join("train/b.png")).unwrap();
    photo(44, 36, 3).save_png(&root.join("val/c.png")).unwrap();
    let prior = test_prior_graph(PRIOR_DIM, ParamSource::Seeded(3)).unwrap();
    std::fs::write(root.join("prior.onnx"), &prior.bytes).unwrap();
    let recipe = format!(
        r#"
name = "tiny"
task = "test"
seed = 9
[model.base]
width = 8
enc_blocks = [1, 1]
dec_blocks = [1, 1]
middle_blocks = 1
[model.refiner]
nf = 8
prior_hidden = 16
prior_embed = 8
pos_channels = 4
restormer_blocks = 1
ca_hidden = 4
decoder_channels = 16
[base]
kind = "builtin"
[prior]
kind = "test-prior"
dim = {PRIOR_DIM}
path = "{root}/prior.onnx"
[data]
train = ["{root}/train"]
val = ["{root}/val"]
crop = 16
prior_view = 32
val_crop = 0
[[degradation]]
kind = "low_light"
exposure = [0.1, 0.3]
[train]
steps = {STEPS}
batch = 2
lr = 1e-3
warmup_steps = 2
val_every = 8
checkpoint_every = 2
"#,
        root = root.display()
    );
    let path = root.join("tiny.toml");
    std::fs::write(&path, recipe).unwrap();
    Fixture { _dir: dir, root, recipe: path }
}

fn fit_run(recipe: Option<&Path>, out: &Path, resume: bool, stop_after: Option<u64>) {
    fit(&FitOptions { resume, stop_after, ..common::fit_options(recipe, out) }).unwrap();
}

fn final_params(run: &Path) -> ptgrm_model::params::ParamMap {
    Checkpoint::read(&run.join("checkpoint.bin")).unwrap().groups["param"].clone()
}

fn assert_same_params(a: &ptgrm_model::params::ParamMap, b: &ptgrm_model::params::ParamMap, what: &str) {
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (k, v) in a {
        let d = max_abs_diff(&v.data, &b[k].data);
        assert!(d <= 1e-6, "{what}: parameter {k} differs by {d}");
    }
}

fn train_steps_logged(run: &Path) -> Vec<u64> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1) == Some("train"))
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect()
}

#[test]
fn train_resume_export_and_run_in_the_runtime() {
    let fx = fixture();
    let straight = fx.root.join("run-straight");
    fit_run(Some(&fx.recipe), &straight, false, None);
    let ck = Checkpoint::read(&straight.join("checkpoint.bin")).unwrap();
    assert_eq!(ck.state.step, STEPS);
    assert!(ck.state.metrics["val_psnr_refined"].is_finite());
    assert!(straight.join("plot.png").exists());
    assert_eq!(train_steps_logged(&straight), (1..=STEPS).collect::<Vec<_>>());
    let params = final_params(&straight);
    let init = ptgrm_model::export::init_params(&RunDir::open(&straight).unwrap().model, 9).unwrap();
    let moved = params.iter().map(|(k, v)| max_abs_diff(&v.data, &init[k].data)).fold(0.0, f32::max);
    assert!(moved > 1e-4, "training did not change the parameters");

    // Stopped after a few steps, then resumed: identical result.
    let stopped = fx.root.join("run-stopped");
    fit_run(Some(&fx.recipe), &stopped, false, Some(5));
    assert_eq!(Checkpoint::read(&stopped.join("checkpoint.bin")).unwrap().state.step, 5);
    fit_run(None, &stopped, true, None);
    assert_same_params(&params, &final_params(&stopped), "stop + resume");
    assert_eq!(train_steps_logged(&stopped), (1..=STEPS).collect::<Vec<_>>());

    // Killed with SIGKILL mid-run (as soon as a checkpoint past step 0 exists), then resumed.
    let killed = fx.root.join("run-killed");
    let mut child = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["fit", "--quiet", "--recipe"])
        .arg(&fx.recipe)
        .arg("--out")
        .arg(&killed)
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let ckpt = killed.join("checkpoint.bin");
    while !ckpt.exists() && t0.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    let killed_at = Checkpoint::read(&ckpt).unwrap().state.step;
    eprintln!("child status {status:?}, checkpoint at step {killed_at}");
    fit_run(None, &killed, true, None);
    assert_same_params(&params, &final_params(&killed), "kill -9 + resume");
    assert_eq!(train_steps_logged(&killed), (1..=STEPS).collect::<Vec<_>>());

    // Eval writes per-image scores and, on request, the images.
    let shots = fx.root.join("shots");
    ptgrm_train::eval::eval(&straight, true, None, &[], Some(&shots)).unwrap();
    let ev: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(straight.join("eval.json")).unwrap()).unwrap();
    assert_eq!(ev["images"].as_array().unwrap().len(), 1);
    assert!(ev["mean"]["psnr_refined"].as_f64().unwrap() > ev["mean"]["psnr_input"].as_f64().unwrap());
    for kind in ["input", "base", "refined", "clean"] {
        let img = image::open(shots.join(format!("c-{kind}.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (44, 36));
    }

    // `train eval | head -1`: the reader goes away after the first line; train stops quietly
    // (SIGPIPE, as Unix filters do) instead of panicking in println!.
    let mut child = Command::new(env!("CARGO_BIN_EXE_train"))
        .args(["eval", "--run"])
        .arg(&straight)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut first).unwrap();
    assert!(!first.is_empty());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Other photo folders (`train eval --val DIR`): scored in their own file, named per photo,
    // and eval.json keeps the recipe's validation score.
    let before = std::fs::read_to_string(straight.join("eval.json")).unwrap();
    ptgrm_train::eval::eval(&straight, true, None, &[fx.root.join("train")], None).unwrap();
    assert_eq!(std::fs::read_to_string(straight.join("eval.json")).unwrap(), before);
    let other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("eval-other-photos.json")).unwrap()).unwrap();
    let names: Vec<&str> = other["images"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().any(|n| n.ends_with("a.png")) && names.iter().any(|n| n.ends_with("b.png")), "{names:?}");
    let missing = ptgrm_train::eval::eval(&straight, true, None, &[fx.root.join("no-such-folder")], None).unwrap_err();
    assert!(format!("{missing:#}").contains("no-such-folder"), "{missing:#}");

    // Export and check the manifest's provenance.
    let bundle = fx.root.join("bundle");
    let m = ptgrm_train::export::export(&straight, &bundle).unwrap();
    let back = Manifest::read(&bundle).unwrap();
    assert_eq!(back, m);
    assert_eq!(m.provenance.steps, STEPS);
    assert!(m.provenance.recipe_text.as_deref().unwrap().contains("name = \"tiny\""));
    assert!(m.provenance.metrics.contains_key("val_psnr_refined"));
    assert!(m.provenance.data.iter().any(|d| d.contains("train") && d.contains("2 files")));
    assert!(m.graphs.merged.is_some() && m.graphs.prior.is_some());

    // Parity on the trained weights: burn vs ONNX Runtime on the exported merged graph.
    let run_dir = RunDir::open(&straight).unwrap();
    let cfg = &run_dir.model;
    let mut store = param_store_from_checkpoint(&ck_final(&straight), false, 9).unwrap();
    let merged = std::fs::read(bundle.join("model.onnx")).unwrap();
    let mut s = session(&merged);
    for (n, h0, w0) in [(1usize, 40usize, 56usize), (2, 67, 45)] {
        let mut x = Vec::new();
        let (mut h, mut w) = (h0, w0);
        for i in 0..n {
            let p = pad_reflect(&photo(w0, h0, 10 + i as u64), cfg.pad_multiple());
            (h, w) = (p.height, p.width);
            x.extend(p.data);
        }
        let g = random(n * PRIOR_DIM, 4, -0.3, 0.3);
        let dev = store.device.clone();
        let (bb, br) =
            forward(&mut store, cfg, &tensor_from(&[n, 3, h, w], x.clone(), &dev), &tensor_from(&[n, PRIOR_DIM], g.clone(), &dev), None);
        let out = run(&mut s, &[("image", vec![n, 3, h, w], &x), ("prior", vec![n, PRIOR_DIM], &g)], &["refined", "base"]);
        let (dr, db) = (max_abs_diff(&br.to_vec(), &out[0]), max_abs_diff(&bb.to_vec(), &out[1]));
        assert!(dr <= 1e-4 && db <= 1e-4, "trained weights {n}x3x{h}x{w}: refined {dr}, base {db}");
    }

    // The runtime loads the bundle and restores a frame.
    let opts = EngineOptions { provider: ProviderRequest::Cpu, threads: 1, ..Default::default() };
    let mut engine = Engine::load(&bundle, &opts).unwrap();
    let (w, h) = (50usize, 38usize);
    let input = photo(w, h, 20).to_rgb8();
    let mut output = vec![0u8; input.len()];
    let layout = FrameLayout::new(PixelFormat::Rgb8, w, h, [3 * w, 0, 0]);
    let fin = FrameRef::new(layout.clone(), &[&input]).unwrap();
    let mut fout = FrameMut::new(layout, vec![&mut output[..]]).unwrap();
    engine.process(&fin, &mut fout).unwrap();
    drop(fout);
    assert_ne!(output, input, "the engine's output equals its input");
}

/// (step, loss, lr) of every train row of a run's metrics.csv.
fn train_curve(run: &Path) -> Vec<(u64, String, String)> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[1] == "train")
        .map(|f| (f[0].parse().unwrap(), f[2].to_string(), f[5].to_string()))
        .collect()
}

/// The procedure of docs/training.md for long runs: a run stopped mid-way is snapshotted into
/// the repository (checkpoints/NAME, as committed), the original machine is gone, and the run
/// resumed from the snapshot on a fresh clone ends on the same loss curve and parameters as the
/// uninterrupted run. A second snapshot replaces the first.
#[test]
fn committed_snapshot_resumes_on_a_fresh_clone_on_the_same_curve() {
    let fx = fixture();
    let straight = fx.root.join("straight");
    fit_run(Some(&fx.recipe), &straight, false, None);

    let run = fx.root.join("machine-a/runs/tiny");
    fit_run(Some(&fx.recipe), &run, false, Some(7));
    let committed = fx.root.join("clone/checkpoints/tiny");
    let bytes = ptgrm_train::run::snapshot(&run, &committed).unwrap();
    assert!(bytes > 0 && committed.join("checkpoint.bin").exists());
    fit_run(None, &run, true, Some(4));
    ptgrm_train::run::snapshot(&run, &committed).unwrap();
    assert_eq!(ck_final(&committed).state.step, 11, "the second snapshot replaces the first");
    std::fs::remove_dir_all(fx.root.join("machine-a")).unwrap();

    fit_run(None, &committed, true, None);
    assert_same_params(&final_params(&straight), &final_params(&committed), "snapshot + resume");
    assert_eq!(train_curve(&committed), train_curve(&straight));

    // No checkpoint yet: a clear error.
    let empty = fx.root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = format!("{:#}", ptgrm_train::run::snapshot(&empty, &fx.root.join("x")).unwrap_err());
    assert!(e.contains("no checkpoint"), "{e}");
}

/// `--extend-steps N` lengthens a finished run: it continues from its last step to the new
/// total with the recipe's schedule stretched over it (the documented rule), records the
/// extension in run.json and in the exported bundle's provenance command, and is refused
/// without --resume.
#[test]
fn extend_steps_lengthens_a_finished_run_with_the_stretched_schedule() {
    let fx = fixture();
    let out = fx.root.join("ext");
    fit_run(Some(&fx.recipe), &out, false, None);
    let opts = |extend, resume| FitOptions { resume, extend_steps: Some(extend), ..common::fit_options(None, &out) };
    fit(&opts(8, true)).unwrap();
    assert_eq!(ck_final(&out).state.step, STEPS + 8);
    let run = RunDir::open(&out).unwrap();
    assert_eq!(run.recipe.train.steps, STEPS + 8);
    assert_eq!(run.info.extended_steps, 8);
    let curve = train_curve(&out);
    assert_eq!(curve.iter().map(|c| c.0).collect::<Vec<_>>(), (1..=STEPS + 8).collect::<Vec<_>>());
    // The lr of the steps after the extension follows the schedule over the new total.
    for (step, _, lr) in &curve[STEPS as usize..] {
        let want = run.recipe.train.lr_at(step - 1);
        let got: f64 = lr.parse().unwrap();
        assert!((got - want).abs() <= 1e-3 * want, "step {step}: lr {got}, schedule says {want}");
    }
    let m = ptgrm_train::export::export(&out, &fx.root.join("ext-bundle")).unwrap();
    assert_eq!(m.provenance.steps, STEPS + 8);
    assert!(m.provenance.command.as_deref().unwrap().contains("--extend-steps 8"));
    // Exported from a snapshot kept elsewhere, the provenance still extends the directory the
    // fit wrote (the copy is already extended) and then snapshots it to where the export reads.
    let kept = fx.root.join("kept");
    ptgrm_train::run::snapshot(&out, &kept).unwrap();
    let m = ptgrm_train::export::export(&kept, &fx.root.join("kept-bundle")).unwrap();
    let command = m.provenance.command.as_deref().unwrap();
    let (o, k) = (out.display(), kept.display());
    let want = format!(
        "--out {o} && train fit --out {o} --resume --extend-steps 8 && train snapshot --run {o} --out {k} && train export --run {k} "
    );
    assert!(command.contains(&want), "{command}");
    let e = format!("{:#}", fit(&FitOptions { recipe: Some(&fx.recipe), out: &fx.root.join("new"), ..opts(3, false) }).unwrap_err());
    assert!(e.contains("--resume"), "{e}");
}

/// `train.init_from` starts a new run (fresh schedule and Adam) from another run's parameters,
/// and refuses a checkpoint whose parameters do not fit the recipe's model.
#[test]
fn init_from_starts_a_run_from_another_runs_parameters() {
    let fx = fixture();
    let source = fx.root.join("source");
    fit_run(Some(&fx.recipe), &source, false, None);
    let text = std::fs::read_to_string(&fx.recipe).unwrap();
    // One step at a negligible learning rate: the result is the source's parameters.
    let tune = text
        .replace(&format!("steps = {STEPS}"), "steps = 1")
        .replace("lr = 1e-3", &format!("lr = 1e-12\ninit_from = \"{}\"", source.display()));
    let recipe = fx.root.join("tune.toml");
    std::fs::write(&recipe, &tune).unwrap();
    let out = fx.root.join("tune");
    fit_run(Some(&recipe), &out, false, None);
    assert_eq!(ck_final(&out).state.step, 1);
    assert_same_params(&final_params(&source), &final_params(&out), "init_from");
    let init = ptgrm_model::export::init_params(&RunDir::open(&out).unwrap().model, 9).unwrap();
    let moved = final_params(&out).iter().map(|(k, v)| max_abs_diff(&v.data, &init[k].data)).fold(0.0, f32::max);
    assert!(moved > 1e-4, "the run started from the seeded init, not the source");
    // The bundle's provenance reproduces the source run first.
    let m = ptgrm_train::export::export(&out, &fx.root.join("tune-bundle")).unwrap();
    let command = m.provenance.command.as_deref().unwrap();
    assert!(command.starts_with("train fit --recipe") && command.contains(&format!("--out {}", source.display())), "{command}");
    assert!(m.provenance.note.as_deref().is_some_and(|n| n.contains("started from the parameters of")), "{:?}", m.provenance.note);
    // A run started from that one records the whole chain, oldest first.
    let again = fx.root.join("again.toml");
    std::fs::write(&again, tune.replace(&format!("init_from = \"{}\"", source.display()), &format!("init_from = \"{}\"", out.display())))
        .unwrap();
    let last = fx.root.join("again");
    fit_run(Some(&again), &last, false, None);
    let m = ptgrm_train::export::export(&last, &fx.root.join("again-bundle")).unwrap();
    let command = m.provenance.command.as_deref().unwrap();
    let at =
        |run: &Path| command.find(&format!("--out {} ", run.display())).unwrap_or_else(|| panic!("{} missing: {command}", run.display()));
    assert!(at(&source) < at(&out) && at(&out) < at(&last), "{command}");

    let wider = tune.replace("width = 8", "width = 12");
    std::fs::write(&recipe, wider).unwrap();
    let e = format!("{:#}", fit(&common::fit_options(Some(&recipe), &fx.root.join("wider"))).unwrap_err());
    assert!(e.contains("init_from") && e.contains("shape"), "{e}");
}

#[test]
fn lambda1_zero_trains_f_alone_and_leaves_r_at_its_initial_weights() {
    let fx = fixture();
    let text = std::fs::read_to_string(&fx.recipe)
        .unwrap()
        .replace("warmup_steps = 2", "warmup_steps = 2\nlambda1 = 0.0")
        .replace(&format!("steps = {STEPS}"), "steps = 4");
    let recipe = fx.root.join("alone.toml");
    std::fs::write(&recipe, text).unwrap();
    let out = fx.root.join("alone");
    fit_run(Some(&recipe), &out, false, None);
    let params = final_params(&out);
    let init = ptgrm_model::export::init_params(&RunDir::open(&out).unwrap().model, 9).unwrap();
    for (k, v) in &params {
        let d = max_abs_diff(&v.data, &init[k].data);
        if k.starts_with("refiner.") {
            assert_eq!(d, 0.0, "{k} changed in an F-alone run");
        }
    }
    let f_moved =
        params.iter().filter(|(k, _)| k.starts_with("base.")).map(|(k, v)| max_abs_diff(&v.data, &init[k].data)).fold(0.0, f32::max);
    assert!(f_moved > 1e-4, "F did not train");
}

fn ck_final(run: &Path) -> Checkpoint {
    Checkpoint::read(&run.join("checkpoint.bin")).unwrap()
}

#[test]
fn bad_recipes_and_runs_give_clear_errors() {
    let fx = fixture();
    let out = fx.root.join("r");
    let missing = fit(&common::fit_options(Some(&fx.root.join("nope.toml")), &out));
    assert!(format!("{:#}", missing.unwrap_err()).contains("nope.toml"));
    let not_a_run = ptgrm_train::export::export(&fx.root.join("train"), &fx.root.join("b"));
    assert!(format!("{:#}", not_a_run.unwrap_err()).contains("not a run directory"));
    fit_run(Some(&fx.recipe), &out, false, Some(1));
    let again = fit(&common::fit_options(Some(&fx.recipe), &out));
    assert!(format!("{:#}", again.unwrap_err()).contains("--resume"));
}

#[test]
fn a_per_region_prior_trains_on_crop_windows_and_exports_its_grid() {
    let fx = fixture();
    // A 2x2 grid of 4-value cells (the MobileNetV2 grid prior's layout, small).
    let grid = test_grid_prior_graph(2, 4, ParamSource::Seeded(5)).unwrap();
    std::fs::write(fx.root.join("grid.onnx"), &grid.bytes).unwrap();
    let text = std::fs::read_to_string(&fx.recipe)
        .unwrap()
        .replace("[model.refiner]\n", "[model.refiner]\nprior_grid = 2\n")
        .replace(&format!("dim = {PRIOR_DIM}"), "dim = 16")
        .replace("prior.onnx", "grid.onnx")
        .replace(&format!("steps = {STEPS}"), "steps = 4");
    let recipe = fx.root.join("grid.toml");
    std::fs::write(&recipe, &text).unwrap();
    let run_dir = fx.root.join("grid-run");
    fit_run(Some(&recipe), &run_dir, false, None);
    let bundle = fx.root.join("grid-bundle");
    let m = ptgrm_train::export::export(&run_dir, &bundle).unwrap();
    assert_eq!((m.prior.dim, m.prior.grid), (16, Some(2)));
    let mut engine = Engine::load(&bundle, &EngineOptions { provider: ProviderRequest::Cpu, threads: 1, ..Default::default() }).unwrap();
    let (w, h) = (50usize, 38usize);
    let input = photo(w, h, 21).to_rgb8();
    let mut output = vec![0u8; input.len()];
    let layout = FrameLayout::new(PixelFormat::Rgb8, w, h, [3 * w, 0, 0]);
    engine.process(&FrameRef::new(layout.clone(), &[&input]).unwrap(), &mut FrameMut::new(layout, vec![&mut output[..]]).unwrap()).unwrap();
    assert_eq!(engine.prior_value().len(), 16);

    // Without the view pool a crop has no view to take its window from: refused by name.
    let fresh = fx.root.join("grid-fresh.toml");
    std::fs::write(&fresh, text.replace("[data]\n", "[data]\nview_reuse = 1\n")).unwrap();
    let err = fit(&common::fit_options(Some(&fresh), &fx.root.join("grid-fresh-run"))).unwrap_err();
    assert!(format!("{err:#}").contains("view_reuse"), "{err:#}");
}
