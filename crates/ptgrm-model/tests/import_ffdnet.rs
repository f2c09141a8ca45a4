//! The imported KAIR colour FFDNet, run through ONNX Runtime: denoising a kodim23 crop with
//! seeded Gaussian noise, and the restoration-model prior built from its features.

mod import_support;

use import_support::{load_rgb, photo, run_image, weights};
use prost::Message;
use ptgrm_model::import::{ffdnet, torch_file};

fn state_dict() -> Option<ptgrm_model::import::state_dict::StateDict> {
    Some(torch_file::load(&weights("ffdnet_color.pth")?).unwrap())
}

/// SplitMix64 + Box-Muller: reproducible N(0, 1) samples.
fn gaussian(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed;
    let mut next = || {
        s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (next().max(1e-300), next());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

fn psnr(a: &[f32], b: &[f32]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (1.0 / mse).log10()
}

/// A (h, w) crop of an NCHW image at (top, left).
fn crop(img: &[f32], h: usize, w: usize, top: usize, left: usize, ch: usize, cw: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * ch * cw);
    for c in 0..3 {
        for y in top..top + ch {
            out.extend_from_slice(&img[c * h * w + y * w + left..c * h * w + y * w + left + cw]);
        }
    }
    out
}

#[test]
fn denoises_kodim23_crop_at_sigma_25() {
    let Some(sd) = state_dict() else { return };
    let Some(path) = photo("val/kodim23.png") else { return };
    let (img, h, w) = load_rgb(&path);
    // 256x256 around the parrots' heads; odd-sized variant below checks the padding path
    let (ch, cw) = (256, 256);
    let clean = crop(&img, h, w, 100, 300, ch, cw);
    let noise = gaussian(23, clean.len());
    let noisy: Vec<f32> = clean.iter().zip(&noise).map(|(c, n)| c + n * 25.0 / 255.0).collect();
    let model = ffdnet::build_base(&sd, ffdnet::NoiseLevel::Fixed(25.0)).unwrap().encode_to_vec();
    let out = run_image(&model, "image", &noisy, [1, 3, ch, cw], &["base"]);
    let (shape, base) = &out[0];
    assert_eq!(shape, &[1, 3, ch, cw]);
    let (before, after) = (psnr(&noisy, &clean), psnr(base, &clean));
    eprintln!("kodim23 crop 256x256 @ (100, 300), sigma 25: PSNR {before:.2} dB -> {after:.2} dB");
    assert!((before - 20.17).abs() < 0.1, "noise of sigma 25 gives ~20.2 dB, got {before}");
    assert!(after > 32.5, "FFDNet should reach ~33-35 dB, got {after}");
}

#[test]
fn odd_sizes_keep_their_shape_and_match_the_even_result_inside() {
    let Some(sd) = state_dict() else { return };
    let Some(path) = photo("val/kodim23.png") else { return };
    let (img, h, w) = load_rgb(&path);
    let model = ffdnet::build_base(&sd, ffdnet::NoiseLevel::Fixed(25.0)).unwrap().encode_to_vec();
    let clean = crop(&img, h, w, 50, 60, 68, 46);
    let noisy: Vec<f32> = clean.iter().zip(gaussian(5, clean.len())).map(|(v, n)| v + n * 25.0 / 255.0).collect();
    let noisy_odd = crop(&noisy, 68, 46, 0, 0, 67, 45);
    let odd = run_image(&model, "image", &noisy_odd, [1, 3, 67, 45], &["base"]).remove(0);
    let even = run_image(&model, "image", &noisy, [1, 3, 68, 46], &["base"]).remove(0);
    assert_eq!(odd.0, [1, 3, 67, 45]);
    assert!(odd.1.iter().all(|v| (0.0..=1.0).contains(v)), "base is clamped to [0, 1]");
    // 12 convs at half resolution see 24 pixels around: away from the padded bottom/right
    // edge, the odd-sized result equals the even-sized one.
    let mut worst = 0f32;
    for c in 0..3 {
        for y in 0..67 - 26 {
            for x in 0..45 - 26 {
                let d = odd.1[(c * 67 + y) * 45 + x] - even.1[(c * 68 + y) * 46 + x];
                worst = worst.max(d.abs());
            }
        }
    }
    assert!(worst < 1e-4, "odd vs even crop differ by {worst} away from the edge");
}

/// The trainer's blind refiner feeds one graph many noise levels: each image of a batch must
/// get exactly what the graph with that level baked in gives it.
#[test]
fn a_noise_level_input_denoises_each_image_at_its_own_level() {
    let Some(sd) = state_dict() else { return };
    let Some(path) = photo("val/kodim23.png") else { return };
    let (img, h, w) = load_rgb(&path);
    let (side, levels) = (48, [15.0f32, 50.0]);
    let mut batch = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let clean = crop(&img, h, w, 100 + 60 * i, 300, side, side);
        batch.extend(clean.iter().zip(gaussian(40 + i as u64, clean.len())).map(|(c, n)| c + n * level / 255.0));
    }
    let blind = ffdnet::build_base(&sd, ffdnet::NoiseLevel::Input).unwrap().encode_to_vec();
    let mut session = ort::session::Session::builder(import_support::ort_env()).unwrap().commit_from_memory(&blind).unwrap();
    let image = ort::value::TensorRef::from_array_view(([2usize, 3, side, side], batch.as_slice())).unwrap();
    let sigma = ort::value::TensorRef::from_array_view(([2usize], &levels[..])).unwrap();
    let out = session.run(ort::inputs!["image" => image, ffdnet::SIGMA_INPUT => sigma]).unwrap();
    let (shape, both) = out["base"].try_extract_tensor::<f32>().unwrap();
    assert_eq!(shape.iter().map(|&d| d as usize).collect::<Vec<_>>(), [2, 3, side, side]);
    let plane = 3 * side * side;
    for (i, level) in levels.iter().enumerate() {
        let fixed = ffdnet::build_base(&sd, ffdnet::NoiseLevel::Fixed(*level)).unwrap().encode_to_vec();
        let one = run_image(&fixed, "image", &batch[i * plane..(i + 1) * plane], [1, 3, side, side], &["base"]).remove(0).1;
        let worst = one.iter().zip(&both[i * plane..(i + 1) * plane]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-5, "image {i} at sigma {level}: level input and baked level differ by {worst}");
    }
    // and the level matters: the sigma-15 image read at sigma 50 is smoothed differently
    let wrong = ffdnet::build_base(&sd, ffdnet::NoiseLevel::Fixed(50.0)).unwrap().encode_to_vec();
    let other = run_image(&wrong, "image", &batch[..plane], [1, 3, side, side], &["base"]).remove(0).1;
    assert!(other.iter().zip(&both[..plane]).any(|(a, b)| (a - b).abs() > 0.01));
}

#[test]
fn restoration_prior_is_a_normalized_feature_vector_that_tells_images_apart() {
    let Some(sd) = state_dict() else { return };
    let opts = ffdnet::PriorOptions { sigma: 25.0, layer: None, size: None };
    let (model, dim) = ffdnet::build_prior(&sd, opts).unwrap();
    assert_eq!(dim, 96);
    let model = model.encode_to_vec();
    let Some(a_path) = photo("val/kodim23.png") else { return };
    let Some(b_path) = photo("val/monarch.png") else { return };
    let mut priors = Vec::new();
    for p in [a_path, b_path] {
        let (img, h, w) = load_rgb(&p);
        let c = crop(&img, h, w, 0, 0, 128, 160);
        let out = run_image(&model, "image", &c, [1, 3, 128, 160], &["prior"]);
        assert_eq!(out[0].0, [1, 96]);
        priors.push(out[0].1.clone());
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    assert!((dot(&priors[0], &priors[0]) - 1.0).abs() < 1e-4);
    let cos = dot(&priors[0], &priors[1]);
    eprintln!("restoration prior cosine(kodim23, monarch) = {cos}");
    assert!(cos < 0.999, "different images give different priors ({cos})");
}

#[test]
fn prior_layer_out_of_range_is_refused() {
    let Some(sd) = state_dict() else { return };
    let opts = ffdnet::PriorOptions { sigma: 25.0, layer: Some(12), size: None };
    let err = ffdnet::build_prior(&sd, opts).unwrap_err().to_string();
    assert!(err.contains("1..=11"), "{err}");
}

#[test]
fn resized_restoration_prior_runs_on_large_frames_and_is_exact_at_its_size() {
    let Some(sd) = state_dict() else { return };
    let Some(path) = photo("val/kodim23.png") else { return };
    let (img, h, w) = load_rgb(&path);
    let build = |size| {
        let opts = ffdnet::PriorOptions { sigma: 25.0, layer: None, size };
        ffdnet::build_prior(&sd, opts).unwrap().0.encode_to_vec()
    };
    let (resized, plain) = (build(Some(128)), build(None));
    let prior = |model: &[u8], data: &[f32], ch: usize, cw: usize| {
        let out = run_image(model, "image", data, [1, 3, ch, cw], &["prior"]).remove(0);
        assert_eq!(out.0, [1, 96]);
        out.1
    };
    // nearest resize of a 128x128 input to 128x128 is the identity
    let small = crop(&img, h, w, 10, 20, 128, 128);
    let (a, b) = (prior(&resized, &small, 128, 128), prior(&plain, &small, 128, 128));
    assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6), "resize path changes a 128x128 input");
    // a whole frame: noise moves the prior
    let (clean, big) = (crop(&img, h, w, 0, 0, 512, 768), [1usize, 3, 512, 768]);
    let noisy: Vec<f32> = clean.iter().zip(gaussian(9, clean.len())).map(|(c, n)| c + n * 25.0 / 255.0).collect();
    let (pc, pn) = (prior(&resized, &clean, big[2], big[3]), prior(&resized, &noisy, big[2], big[3]));
    let cos: f32 = pc.iter().zip(&pn).map(|(x, y)| x * y).sum();
    eprintln!("restoration prior at 128x128: cos(clean frame, noisy frame) = {cos}");
    assert!(cos < 0.9995, "noise of sigma 25 must change the prior (cosine {cos})");
}
