//! PSNR and SSIM against values computed once with scikit-image
//! (scripts/metrics-reference.py -> tests/data/metrics-reference.json).

use ptgrm::metrics::{psnr_rgb8, ssim_rgb8};
use std::path::{Path, PathBuf};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("data")
}

fn load_rgb8(relative: &str) -> (Vec<u8>, usize, usize) {
    let path = data_dir().join(relative);
    let img = image::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    (img.into_raw(), w, h)
}

#[test]
fn psnr_and_ssim_match_scikit_image() {
    let text = std::fs::read_to_string(data_dir().join("metrics-reference.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pairs = doc["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 3, "reference file lists too few pairs");
    for pair in pairs {
        let (clean, w, h) = load_rgb8(pair["clean"].as_str().unwrap());
        let (degraded, w2, h2) = load_rgb8(pair["degraded"].as_str().unwrap());
        assert_eq!((w, h), (w2, h2));
        assert_eq!((w as u64, h as u64), (pair["width"].as_u64().unwrap(), pair["height"].as_u64().unwrap()));
        let name = pair["degraded"].as_str().unwrap();
        let psnr = psnr_rgb8(&clean, &degraded, w, h).unwrap();
        let ssim = ssim_rgb8(&clean, &degraded, w, h).unwrap();
        let want_psnr = pair["psnr"].as_f64().unwrap();
        let want_ssim = pair["ssim"].as_f64().unwrap();
        assert!((psnr - want_psnr).abs() < 1e-3, "{name}: PSNR {psnr} vs scikit-image {want_psnr}");
        assert!((ssim - want_ssim).abs() < 1e-4, "{name}: SSIM {ssim} vs scikit-image {want_ssim}");
    }
}

#[test]
fn identical_images_are_perfect() {
    let (clean, w, h) = load_rgb8("metrics/clean.png");
    assert_eq!(psnr_rgb8(&clean, &clean, w, h).unwrap(), f64::INFINITY);
    assert!((ssim_rgb8(&clean, &clean, w, h).unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn ssim_is_symmetric() {
    let (clean, w, h) = load_rgb8("metrics/clean.png");
    let (noisy, _, _) = load_rgb8("metrics/noisy.png");
    let ab = ssim_rgb8(&clean, &noisy, w, h).unwrap();
    let ba = ssim_rgb8(&noisy, &clean, w, h).unwrap();
    assert!((ab - ba).abs() < 1e-12, "{ab} vs {ba}");
}

#[test]
fn mismatched_or_too_small_images_are_errors() {
    let a = vec![0u8; 20 * 20 * 3];
    let b = vec![0u8; 20 * 19 * 3];
    let err = psnr_rgb8(&a, &b, 20, 20).unwrap_err();
    assert!(err.message.contains("expected 1200"), "{err}");
    assert!(ssim_rgb8(&a, &b, 20, 20).is_err());
    let small = vec![0u8; 10 * 30 * 3];
    let err = ssim_rgb8(&small, &small, 10, 30).unwrap_err();
    assert!(err.message.contains("at least 11x11"), "{err}");
    assert!(psnr_rgb8(&[], &[], 0, 0).is_err());
}
