//! A frozen F that takes the noise level as an input (FFDNet imported with `--sigma input`):
//! one refiner trained over a range of levels. The trainer must tell F each view's drawn
//! level (pooled training views and validation images alike), and a bundle must ship F at one
//! fixed level, checked to be the same network.

mod common;

use ptgrm_model::import::ffdnet::SIGMA_INPUT;
use ptgrm_model::onnx_builder::{Dim, OnnxBuilder};
use ptgrm_train::data::TrainSet;
use ptgrm_train::fit::{fit, prepared_validation};
use ptgrm_train::onnx_run::OnnxGraph;
use ptgrm_train::pool::ViewPool;
use ptgrm_train::recipe::Recipe;
use ptgrm_train::run::RunDir;
use std::path::Path;

/// A stand-in for FFDNet whose output shows the level it was given: base = 0 * conv(image) +
/// level / 255 everywhere. The 3x3 conv (81 weights, scaled by `weight`) is "the network" the
/// export check compares. `level`: Some(v) bakes v in, None makes it the `sigma` input.
fn level_graph(level: Option<f32>, weight: f32) -> Vec<u8> {
    use prost::Message;
    let w: Vec<f32> = (0..81).map(|i| weight * (i as f32 + 1.0) / 81.0).collect();
    let mut b = OnnxBuilder::with_params(Default::default());
    let x = b.input("image", &[Dim::Named("N"), Dim::Fixed(3), Dim::Named("H"), Dim::Named("W")]);
    let w = b.initializer("net.weight", &[3, 3, 3, 3], &w);
    let features = b.node("Conv", &[&x.name, &w.name], vec![ptgrm_model::onnx_builder::attr_ints("pads", &[1, 1, 1, 1])], x.shape.clone());
    let zero = b.const_f32(&[1], &[0.0]);
    let silenced = b.node("Mul", &[&features.name, &zero.name], vec![], x.shape.clone());
    let column = match level {
        Some(v) => b.const_f32(&[1, 1, 1, 1], &[v / 255.0]),
        None => {
            let sigma = b.input(SIGMA_INPUT, &[Dim::Named("N")]);
            let shape = b.const_i64(&[4], &[-1, 1, 1, 1]);
            let col = b.node("Reshape", &[&sigma.name, &shape.name], vec![], vec![None, Some(1), Some(1), Some(1)]);
            let scale = b.const_f32(&[1], &[1.0 / 255.0]);
            b.node("Mul", &[&col.name, &scale.name], vec![], col.shape.clone())
        }
    };
    let base = b.node("Add", &[&silenced.name, &column.name], vec![], x.shape.clone());
    b.output(&base, "base", &[Dim::Named("N"), Dim::Fixed(3), Dim::Named("H"), Dim::Named("W")]);
    b.finish("level_base").unwrap().encode_to_vec()
}

fn photo(path: &Path, w: usize, h: usize, seed: u64) {
    let tex = common::random(3 * w * h, seed, 0.2, 0.8);
    let mut img = ptgrm_train::imagebuf::Image::new(w, h);
    img.data.copy_from_slice(&tex);
    img.save_png(path).unwrap();
}

#[test]
fn each_view_reaches_f_with_its_own_noise_level_and_bundles_ship_f_at_a_fixed_level() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for sub in ["train", "val"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    photo(&root.join("train/a.png"), 40, 40, 1);
    photo(&root.join("train/b.png"), 36, 44, 2);
    photo(&root.join("val/c.png"), 40, 32, 3);
    photo(&root.join("val/d.png"), 32, 32, 4);
    std::fs::write(root.join("f.onnx"), level_graph(None, 1.0)).unwrap();
    std::fs::write(root.join("f25.onnx"), level_graph(Some(25.0), 1.0)).unwrap();
    std::fs::write(root.join("other25.onnx"), level_graph(Some(25.0), 2.0)).unwrap();
    let text = common::tiny_external_recipe(
        root,
        "blind",
        "f.onnx",
        "base F (noise level as input)",
        "view_reuse = 2\npool_views = 4",
        [5, 55],
        4,
        2,
    );
    std::fs::write(root.join("r.toml"), &text).unwrap();

    // Pooled training views: every crop of F's output holds its view's drawn level, and the
    // levels differ from view to view.
    let r = Recipe::parse(&text, "test").unwrap();
    let set = TrainSet::load(&r.data, &r.degradation, r.seed).unwrap();
    let mut graph = OnnxGraph::load(&root.join("f.onnx"), Some("base")).unwrap();
    assert!(graph.takes_level());
    let mut pool = ViewPool::new(set.pool_views, set.view_reuse);
    let mut seen = Vec::new();
    for step in 0..6u64 {
        let (_, _, base, _) = pool.batch(&set, step, 2, None, 4, Some(&mut graph)).unwrap();
        let base = base.unwrap();
        for i in 0..2 {
            let (_, id) = pool.view_of(step * 2 + i as u64);
            let level = set.synthetic_view(id).2.expect("a gaussian_noise chain draws a level");
            assert!((5.0..=55.0).contains(&level), "drawn level {level}");
            let crop = &base[i * 3 * 16 * 16..(i + 1) * 3 * 16 * 16];
            assert!(crop.iter().all(|v| (v - level / 255.0).abs() < 1e-6), "step {step} crop {i}: F was not told level {level}");
            seen.push(level);
        }
    }
    assert!(seen.iter().any(|l| (l - seen[0]).abs() > 1.0), "one level for every view: {seen:?}");

    // A run trains through the feeder, and its validation images reach F with their own level.
    let run = root.join("run");
    fit(&common::fit_options(Some(&root.join("r.toml")), &run)).unwrap();
    let val = prepared_validation(&RunDir::open(&run).unwrap(), None).unwrap();
    for v in &val {
        let level = v.val.noise_level.expect("validation draws a level");
        let base = v.external_base.as_ref().unwrap();
        assert!(base.data.iter().all(|x| (x - level / 255.0).abs() < 1e-6), "{}: F was not told level {level}", v.val.name);
    }

    // A bundle cannot feed a level: export names the way out, then ships F at a fixed level,
    // and only the same network.
    use ptgrm_train::export::{ExportOptions, export, export_with};
    let err = export(&run, &root.join("b0")).unwrap_err().to_string();
    assert!(err.contains("noise level") && err.contains("--base"), "{err}");
    let other = ExportOptions { base: Some(root.join("other25.onnx")) };
    let err = export_with(&run, &root.join("b1"), &other).unwrap_err().to_string();
    assert!(err.contains("does not hold the weights"), "{err}");
    let fixed = ExportOptions { base: Some(root.join("f25.onnx")) };
    let m = export_with(&run, &root.join("b2"), &fixed).unwrap();
    assert_eq!(std::fs::read(root.join("b2/base.onnx")).unwrap(), std::fs::read(root.join("f25.onnx")).unwrap());
    assert_eq!(m.graphs.base.as_ref().unwrap().inputs, ["image"]);
    assert!(m.provenance.third_party[0].role.contains("f25.onnx"), "{:?}", m.provenance.third_party);
    let command = m.provenance.command.unwrap();
    assert!(command.ends_with(&format!(" --base {}", root.join("f25.onnx").display())), "{command}");
    // and the runtime runs it
    let engine = ptgrm::Engine::load(
        &root.join("b2"),
        &ptgrm::EngineOptions { provider: ptgrm::ProviderRequest::Cpu, threads: 1, ..Default::default() },
    );
    assert!(engine.is_ok(), "{:?}", engine.err());
}
