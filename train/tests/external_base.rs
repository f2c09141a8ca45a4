//! A frozen external F (any image->image ONNX graph) with R trained on its outputs: training
//! changes only R, the bundle holds the external base graph unchanged plus the refiner, and
//! the runtime runs it.

mod common;

use common::random;
use ptgrm::frame::{FrameLayout, FrameMut, FrameRef, PixelFormat};
use ptgrm::{Engine, EngineOptions, ProviderRequest};
use ptgrm_model::base::BaseConfig;
use ptgrm_model::export::base_graph;
use ptgrm_model::onnx_builder::ParamSource;
use ptgrm_train::checkpoint::Checkpoint;
use ptgrm_train::fit::fit;
use ptgrm_train::imagebuf::Image;

fn noisy_photo(w: usize, h: usize, seed: u64) -> Image {
    let tex = random(3 * w * h, seed, 0.0, 1.0);
    let mut img = Image::new(w, h);
    for (i, v) in img.data.iter_mut().enumerate() {
        let x = (i % w) as f32 / w as f32;
        *v = 0.3 + 0.4 * x + 0.1 * tex[i];
    }
    img
}

#[test]
fn refiner_trains_on_a_frozen_onnx_base_and_exports_both_graphs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["train", "val"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    noisy_photo(40, 40, 1).save_png(&root.join("train/a.png")).unwrap();
    noisy_photo(36, 44, 2).save_png(&root.join("train/b.png")).unwrap();
    noisy_photo(40, 32, 3).save_png(&root.join("val/c.png")).unwrap();
    // The "third-party" F: an untrained built-in F exported to ONNX (image -> base).
    let small = BaseConfig { width: 4, enc_blocks: vec![1], dec_blocks: vec![1], ..Default::default() };
    let external = base_graph(&small, ParamSource::Seeded(4)).unwrap();
    std::fs::write(root.join("f.onnx"), &external.bytes).unwrap();
    let recipe = common::tiny_external_recipe(root, "tiny-denoise", "f.onnx", "base F", "", [25, 25], 6, 3);
    std::fs::write(root.join("r.toml"), recipe).unwrap();
    let run = root.join("run");
    fit(&common::fit_options(Some(&root.join("r.toml")), &run)).unwrap();
    let ck = Checkpoint::read(&run.join("checkpoint.bin")).unwrap();
    assert_eq!(ck.state.step, 6);
    assert!(ck.groups["param"].keys().all(|k| k.starts_with("refiner.")), "only R has trainable parameters");
    assert!(ck.state.metrics["val_psnr_base"].is_finite());

    let bundle = root.join("bundle");
    let m = ptgrm_train::export::export(&run, &bundle).unwrap();
    assert_eq!(std::fs::read(bundle.join("base.onnx")).unwrap(), external.bytes, "F is shipped unchanged");
    assert!(m.graphs.refiner.is_some() && m.graphs.merged.is_none() && m.graphs.prior.is_none());
    assert_eq!(m.prior.kind, "none");
    assert_eq!(m.provenance.third_party.len(), 1);

    let mut engine = Engine::load(&bundle, &EngineOptions { provider: ProviderRequest::Cpu, threads: 1, ..Default::default() }).unwrap();
    let (w, h) = (30usize, 22usize);
    let input = noisy_photo(w, h, 5).to_rgb8();
    let mut output = vec![0u8; input.len()];
    let layout = FrameLayout::new(PixelFormat::Rgb8, w, h, [3 * w, 0, 0]);
    engine.process(&FrameRef::new(layout.clone(), &[&input]).unwrap(), &mut FrameMut::new(layout, vec![&mut output[..]]).unwrap()).unwrap();
    assert_ne!(output, input);

    // `train bench` times external-F recipes on both backends, the way fit runs them; its last
    // line is exactly `steps/s <number>` (scripts read it). A wrong backend is named.
    let backends: &[&str] = if cfg!(feature = "tch") { &["tch", "flex"] } else { &["flex"] };
    for backend in backends {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
            .args(["bench", "--steps", "2", "--warmup", "1", "--backend", backend, "--recipe"])
            .arg(root.join("r.toml"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "bench {backend}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("external, frozen") && stdout.contains(&format!("backend {backend}")), "{stdout}");
        let last = stdout.lines().last().unwrap();
        let rate: f64 = last.strip_prefix("steps/s ").unwrap_or_else(|| panic!("last line {last:?}")).parse().unwrap();
        assert!(rate > 0.0 && rate.is_finite(), "{last}");
    }
    // A bench that must be refused: its error message.
    let refused = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_train"))
            .arg("bench")
            .args(args)
            .arg("--recipe")
            .arg(root.join("r.toml"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "bench {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = refused(&["--backend", "cuda-magic"]);
    assert!(err.contains("cuda-magic") && err.contains("tch, tch-cuda, flex"), "{err}");
    // The GPU backend on a machine (or a LibTorch) without CUDA: refused, saying why.
    if std::env::var_os("CUDA_VISIBLE_DEVICES").is_none() && !std::path::Path::new("/dev/nvidia0").exists() {
        let err = refused(&["--backend", "tch-cuda", "--steps", "1"]);
        assert!(err.contains("tch-cuda") && err.contains("no CUDA device"), "{err}");
    }
}
