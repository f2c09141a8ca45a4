//! The bundles shipped in models/: each loads (sha256, graph I/O), carries complete provenance
//! whose recipe is the one in recipes/ (so the documented command reproduces it), is listed in
//! models/README.md with its third-party weights, and does its task on a frame.

use ptgrm::frame::PixelFormat as F;
use ptgrm::bundle::Bundle;
use ptgrm::{Engine, EngineOptions, FrameLayout, FrameMut, FrameRef, ProviderRequest};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("models"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("manifest.json").is_file())
        .collect();
    dirs.sort();
    assert!(dirs.iter().any(|d| d.ends_with("lowlight")), "the default models/lowlight must be shipped");
    dirs
}

#[test]
fn every_bundle_loads_with_complete_provenance_and_is_documented() {
    let readme = std::fs::read_to_string(root().join("models/README.md")).unwrap();
    for dir in shipped() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let bundle = Bundle::load(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        let p = &bundle.manifest.provenance;
        let recipe = p.recipe.as_deref().unwrap_or_else(|| panic!("{name}: no recipe"));
        let text = std::fs::read_to_string(root().join(recipe)).unwrap_or_else(|e| panic!("{name}: recipe {recipe}: {e}"));
        assert_eq!(Some(text.as_str()), p.recipe_text.as_deref(), "{name}: {recipe} changed since the bundle was trained");
        assert!(p.command.as_deref().is_some_and(|c| c.contains("train fit")), "{name}: no reproducing command");
        assert!(!p.data.is_empty() && p.steps > 0 && p.wall_time_s > 0.0, "{name}: data, steps and wall time are required");
        for key in ["val_psnr_base", "val_psnr_refined", "parameters_refiner"] {
            assert!(p.metrics.contains_key(key), "{name}: metric {key} missing");
        }
        assert!(!p.third_party.is_empty(), "{name}: its pretrained prior (and any external F) must be recorded");
        for w in &p.third_party {
            assert!(w.sha256.len() == 64 && w.sha256.bytes().all(|b| b.is_ascii_hexdigit()), "{name}: sha256 of {}", w.file);
            assert!(!w.licence.is_empty() && !w.version.is_empty(), "{name}: licence and version of {}", w.file);
            assert!(readme.contains(&w.sha256), "{name}: models/README.md does not list {} ({})", w.file, w.sha256);
        }
        assert!(readme.contains(&format!("`{name}/`")), "models/README.md does not list {name}/");
    }
}

fn run(engine: &mut Engine, w: usize, h: usize, src: &[u8]) -> Vec<u8> {
    let layout = FrameLayout::packed(F::Rgb8, w, h);
    let mut out = vec![0u8; src.len()];
    engine.process(&FrameRef::contiguous(layout, src).unwrap(), &mut FrameMut::contiguous(layout, &mut out).unwrap()).unwrap();
    out
}

fn mean(v: &[u8]) -> f64 {
    v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
}

/// Mean absolute difference between horizontally adjacent pixels: high for noise.
fn roughness(v: &[u8], w: usize) -> f64 {
    let row = 3 * w;
    let mut sum = 0.0;
    let mut n = 0;
    for (i, pair) in v.windows(4).enumerate() {
        if (i % row) + 3 < row {
            sum += (pair[3] as f64 - pair[0] as f64).abs();
            n += 1;
        }
    }
    sum / n as f64
}

#[test]
fn every_bundle_does_its_task_on_a_frame() {
    let (w, h) = (96, 64);
    // A smooth scene: a gradient with a soft disc.
    let clean: Vec<u8> = (0..h)
        .flat_map(|y| (0..w).flat_map(move |x| {
            let d = (((x as f64 - 48.0).powi(2) + (y as f64 - 32.0).powi(2)).sqrt() < 20.0) as u8;
            [60 + x as u8, 90 + y as u8 + 40 * d, 150 - x as u8 / 2]
        }))
        .collect();
    let mut seed = 12345u64;
    let mut noise = || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((seed >> 33) % 61) as f64 - 30.0
    };
    for dir in shipped() {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut e = Engine::load(&dir, &EngineOptions { provider: ProviderRequest::Cpu, threads: 1, ..Default::default() })
            .unwrap_or_else(|err| panic!("{name}: {err}"));
        match e.manifest().task.as_str() {
            "lowlight" => {
                let dark: Vec<u8> = clean.iter().map(|&v| v / 10).collect();
                let out = run(&mut e, w, h, &dark);
                assert!(mean(&out) > 3.0 * mean(&dark), "{name}: mean {} from a dark frame of {}", mean(&out), mean(&dark));
            }
            "denoise" => {
                let noisy: Vec<u8> = clean.iter().map(|&v| (v as f64 + noise()).clamp(0.0, 255.0) as u8).collect();
                let out = run(&mut e, w, h, &noisy);
                let (before, after) = (roughness(&noisy, w), roughness(&out, w));
                assert!(after < 0.5 * before, "{name}: roughness {before:.1} -> {after:.1}");
            }
            other => panic!("{name}: no check for task {other}"),
        }
    }
}
