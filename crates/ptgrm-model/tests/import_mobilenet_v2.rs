//! The imported torchvision MobileNetV2 prior, run through ONNX Runtime on packaged photos.

mod import_support;

use import_support::{load_rgb, photo, run_image, weights};
use prost::Message;
use ptgrm_model::import::{mobilenet_v2, torch_file};

fn graph(with_logits: bool) -> Option<Vec<u8>> {
    let pth = weights("mobilenet_v2-b0353104.pth")?;
    let sd = torch_file::load(&pth).unwrap();
    Some(mobilenet_v2::build_prior(&sd, with_logits, None, false).unwrap().encode_to_vec())
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).max_by(|&a, &b| v[a].total_cmp(&v[b])).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// (prior, logits) of one photo.
fn classify(model: &[u8], file: &str) -> Option<(Vec<f32>, Vec<f32>)> {
    let (img, h, w) = load_rgb(&photo(file)?);
    let mut out = run_image(model, "image", &img, [1, 3, h, w], &["prior", "logits"]);
    let (logits_shape, logits) = out.pop().unwrap();
    let (prior_shape, prior) = out.pop().unwrap();
    assert_eq!(prior_shape, [1, 1280]);
    assert_eq!(logits_shape, [1, 1000]);
    Some((prior, logits))
}

#[test]
fn top1_class_of_packaged_photos_is_right() {
    let Some(model) = graph(true) else { return };
    // ImageNet classes: 281 tabby .. 285 Egyptian cat; 967 espresso, 968 cup, 504 coffee mug.
    let Some((cat_prior, cat)) = classify(&model, "train/skimage-chelsea.png") else { return };
    let top_cat = argmax(&cat);
    eprintln!("chelsea: top-1 class {top_cat}");
    assert!((281..=285).contains(&top_cat), "chelsea classified as {top_cat}");
    let Some((coffee_prior, coffee)) = classify(&model, "train/skimage-coffee.png") else { return };
    let top_coffee = argmax(&coffee);
    eprintln!("coffee: top-1 class {top_coffee}");
    assert!([967, 968, 504].contains(&top_coffee), "coffee classified as {top_coffee}");

    // more photos from scripts/fetch-data.sh (Debian opencv-doc and mate-backgrounds):
    // 950 orange, 335 fox squirrel, 372 baboon, 301 ladybug
    for (file, class) in [
        ("train/opencv-orange.jpg", 950),
        ("train/opencv-squirrel_cls.jpg", 335),
        ("train/opencv-baboon.jpg", 372),
        ("train/mate-LadyBird.jpg", 301),
    ] {
        let Some((_, logits)) = classify(&model, file) else { continue };
        assert_eq!(argmax(&logits), class, "{file}");
    }

    let norm: f32 = cosine(&cat_prior, &cat_prior).sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "prior is L2-normalized, norm {norm}");
    let apart = cosine(&cat_prior, &coffee_prior);
    eprintln!("cosine(chelsea, coffee) = {apart}");
    assert!(apart < 0.8, "different scenes give different priors (cosine {apart})");
}

#[test]
fn prior_takes_any_size_and_batches_consistently() {
    let Some(model) = graph(false) else { return };
    let Some(path) = photo("train/skimage-chelsea.png") else { return };
    let (img, h, w) = load_rgb(&path);
    // an odd-sized crop, twice in one batch, and its mirror image
    let (ch, cw) = (97, 131);
    let mut crop = vec![0.0f32; 3 * ch * cw];
    let mut mirror = crop.clone();
    for c in 0..3 {
        for y in 0..ch {
            for x in 0..cw {
                let v = img[c * h * w + (y + 40) * w + x + 150];
                crop[(c * ch + y) * cw + x] = v;
                mirror[(c * ch + y) * cw + (cw - 1 - x)] = v;
            }
        }
    }
    let batch = [crop.clone(), crop].concat();
    let out = run_image(&model, "image", &batch, [2, 3, ch, cw], &["prior"]);
    let (shape, prior) = &out[0];
    assert_eq!(shape, &[2, 1280]);
    let (a, b) = prior.split_at(1280);
    assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5), "batch rows of the same image agree");
    let m = run_image(&model, "image", &mirror, [1, 3, ch, cw], &["prior"]);
    let same = cosine(a, &m[0].1);
    eprintln!("cosine(crop, mirrored crop) = {same}");
    assert!(same > 0.8, "a mirrored view keeps the prior close (cosine {same})");
}

#[test]
fn prior_of_a_large_frame_is_stable_under_one_pixel_shifts() {
    let Some(model) = graph(false) else { return };
    let Some(path) = photo("train/mate-Storm.jpg") else { return };
    let (img, h, w) = load_rgb(&path);
    let (ch, cw) = (1080, 1600);
    let mut priors = Vec::new();
    for off in [0, 1] {
        let mut c = Vec::with_capacity(3 * ch * cw);
        for k in 0..3 {
            for y in off..off + ch {
                c.extend_from_slice(&img[k * h * w + y * w + off..k * h * w + y * w + off + cw]);
            }
        }
        priors.push(run_image(&model, "image", &c, [1, 3, ch, cw], &["prior"]).remove(0).1);
    }
    // a plain bilinear downscale aliases: about 0.998 here; the prefiltered one about 0.9995
    let c = cosine(&priors[0], &priors[1]);
    eprintln!("cosine(frame, frame shifted by 1 px) = {c}");
    assert!(c > 0.999, "prior drifts under a 1-pixel shift (cosine {c})");
}

/// With `--exposure-mean`, a noisy capture of a photo at 5 % exposure gets nearly the prior of
/// the photo itself (the scene, not the exposure), and much nearer than without the normalisation.
#[test]
fn exposure_normalised_prior_sees_the_scene_in_a_dark_capture() {
    let Some(pth) = weights("mobilenet_v2-b0353104.pth") else { return };
    let sd = torch_file::load(&pth).unwrap();
    let plain = mobilenet_v2::build_prior(&sd, false, None, false).unwrap().encode_to_vec();
    let normalised = mobilenet_v2::build_prior(&sd, false, Some(0.45), false).unwrap().encode_to_vec();
    let Some(file) = photo("train/skimage-chelsea.png") else { return };
    let (img, h, w) = load_rgb(&file);
    // 5 % exposure plus uniform noise of standard deviation 0.005 (a tenth of the mean signal).
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let dark: Vec<f32> = img
        .iter()
        .map(|v| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            (v * 0.05 + u * 0.005 * 12f32.sqrt()).max(0.0)
        })
        .collect();
    let prior = |model: &[u8], x: &[f32]| run_image(model, "image", x, [1, 3, h, w], &["prior"]).pop().unwrap().1;
    let plain_cos = cosine(&prior(&plain, &img), &prior(&plain, &dark));
    let normalised_cos = cosine(&prior(&normalised, &img), &prior(&normalised, &dark));
    eprintln!("cosine(photo, 5 % exposure): plain {plain_cos:.3}, exposure-normalised {normalised_cos:.3}");
    assert!(normalised_cos > 0.85, "exposure-normalised prior of the dark capture drifts: cosine {normalised_cos}");
    assert!(1.0 - normalised_cos < 0.5 * (1.0 - plain_cos), "normalisation does not help: {normalised_cos} vs {plain_cos}");
}

#[test]
fn grid_prior_describes_each_half_of_a_split_frame() {
    let Some(pth) = weights("mobilenet_v2-b0353104.pth") else { return };
    let sd = torch_file::load(&pth).unwrap();
    let global = mobilenet_v2::build_prior(&sd, false, None, false).unwrap().encode_to_vec();
    let grid = mobilenet_v2::build_prior(&sd, false, None, true).unwrap().encode_to_vec();
    let (Some(cat), Some(coffee)) = (photo("train/skimage-chelsea.png"), photo("train/skimage-coffee.png")) else { return };
    let ((a, ah, aw), (b, bh, bw)) = (load_rgb(&cat), load_rgb(&coffee));
    // The cat on the left, the coffee on the right, each its top-left 256x256.
    let side = 256.min(ah).min(aw).min(bh).min(bw);
    let square = |img: &[f32], h: usize, w: usize| -> Vec<f32> {
        (0..3 * side * side).map(|i| img[(i / (side * side)) * h * w + (i / side % side) * w + i % side]).collect()
    };
    let (sa, sb) = (square(&a, ah, aw), square(&b, bh, bw));
    let mut frame = vec![0.0f32; 3 * side * 2 * side];
    for c in 0..3 {
        for y in 0..side {
            let row = (c * side + y) * 2 * side;
            frame[row..row + side].copy_from_slice(&sa[(c * side + y) * side..][..side]);
            frame[row + side..row + 2 * side].copy_from_slice(&sb[(c * side + y) * side..][..side]);
        }
    }
    let prior_of = |img: &[f32], w: usize| run_image(&global, "image", img, [1, 3, side, w], &["prior"]).remove(0).1;
    let (g_cat, g_coffee) = (prior_of(&sa, side), prior_of(&sb, side));
    let (shape, cells) = run_image(&grid, "image", &frame, [1, 3, side, 2 * side], &["prior"]).remove(0);
    let n = mobilenet_v2::GRID_CELLS;
    assert_eq!(shape, [1, 1280 * n * n]);
    let cell = |y: usize, x: usize| -> Vec<f32> { (0..1280).map(|c| cells[(c * n + y) * n + x]).collect() };
    let (mut left, mut right) = ((0.0, 0.0), (0.0, 0.0));
    for y in 0..n {
        for x in [0, 1] {
            let v = cell(y, x);
            assert!((cosine(&v, &v) - 1.0).abs() < 1e-3, "cell ({y}, {x}) is L2-normalised");
            left.0 += cosine(&v, &g_cat);
            left.1 += cosine(&v, &g_coffee);
        }
        for x in [n - 2, n - 1] {
            let v = cell(y, x);
            right.0 += cosine(&v, &g_cat);
            right.1 += cosine(&v, &g_coffee);
        }
    }
    eprintln!("left cells vs cat / coffee {left:?}, right {right:?}");
    assert!(left.0 > left.1, "the left cells look like the cat: {left:?}");
    assert!(right.1 > right.0, "the right cells look like the coffee: {right:?}");
}
