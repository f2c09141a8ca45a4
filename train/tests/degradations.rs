//! Each synthetic degradation checked by a property measured on its output.

use ptgrm_train::degrade::*;
use ptgrm_train::imagebuf::Image;
use ptgrm_train::rng::Rng;

fn std_and_mean(xs: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
    let n = xs.clone().count() as f64;
    let mean = xs.clone().sum::<f64>() / n;
    let var = xs.map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (var.sqrt(), mean)
}

fn random_image(w: usize, h: usize, seed: u64) -> Image {
    let mut r = Rng::new(seed);
    let mut img = Image::new(w, h);
    img.data.iter_mut().for_each(|v| *v = r.uniform() as f32);
    img
}

#[test]
fn gaussian_noise_has_the_requested_std() {
    let clean = Image::filled(256, 256, [0.5; 3]);
    for sigma in [15.0, 25.0, 50.0] {
        let d = GaussianNoise { sigma: [sigma, sigma], clip: false, shot: [0.0, 0.0], quantize: false, mosaic: 0.0, chroma_subsample: 0.0 };
        let noisy = Degradation::GaussianNoise(d).apply(&clean, &mut Rng::new(1));
        let (std, mean) = std_and_mean(noisy.data.iter().map(|&v| v as f64 - 0.5));
        assert!((std * 255.0 - sigma).abs() < 0.02 * sigma, "sigma {sigma}: measured {}", std * 255.0);
        assert!(mean.abs() < 0.002, "noise mean {mean}");
    }
}

#[test]
fn camera_noise_variance_grows_with_the_signal() {
    // Poisson-Gaussian in the heteroscedastic form: var(v) = sigma^2 + shot * v.
    let (sigma, shot) = (5.0, 0.004);
    let d = GaussianNoise { sigma: [sigma, sigma], clip: false, shot: [shot, shot], quantize: false, mosaic: 0.0, chroma_subsample: 0.0 };
    for level in [0.1f64, 0.4, 0.8] {
        let clean = Image::filled(256, 256, [level as f32; 3]);
        let noisy = Degradation::GaussianNoise(d.clone()).apply(&clean, &mut Rng::new(7));
        let (std, _) = std_and_mean(noisy.data.iter().map(|&v| v as f64 - level));
        let expected = ((sigma / 255.0).powi(2) + shot * level).sqrt();
        assert!((std - expected).abs() < 0.02 * expected, "level {level}: std {std}, expected {expected}");
    }
}

#[test]
fn quantized_camera_noise_is_8_bit() {
    let d = GaussianNoise { sigma: [10.0, 10.0], clip: true, shot: [0.0, 0.01], quantize: true, mosaic: 0.0, chroma_subsample: 0.0 };
    let noisy = Degradation::GaussianNoise(d).apply(&random_image(64, 64, 8), &mut Rng::new(9));
    assert!(noisy.data.iter().all(|&v| (v * 255.0 - (v * 255.0).round()).abs() < 1e-3 && (0.0..=1.0).contains(&v)));
}

#[test]
fn demosaiced_camera_noise_is_blotchy_and_only_the_noise_is_interpolated() {
    let grey = Image::filled(96, 96, [0.5; 3]);
    let camera = GaussianNoise { mosaic: 1.0, chroma_subsample: 0.0, quantize: false, ..GaussianNoise::white([25.0, 25.0]) };
    let mut rng = Rng::new(4);
    let drawn = camera.sample(&mut rng);
    assert!(drawn.mosaic.is_some() && !drawn.chroma_subsample);
    let noisy = camera.apply(&grey, &drawn, &mut rng);
    let (right, across) = noise_correlations(&noisy, 0.5);
    assert!(right > 0.3 && across.abs() < 0.05, "correlations {right} {across}");
    // sigma 0: the scene comes back untouched, whatever its detail.
    let scene = random_image(21, 14, 6);
    let quiet = NoiseSample { sigma: 0.0, ..drawn };
    assert_eq!(camera.apply(&scene, &quiet, &mut rng), scene);
}

#[test]
fn clipped_gaussian_noise_stays_in_range() {
    let clean = random_image(64, 64, 2);
    let d = Degradation::GaussianNoise(GaussianNoise::white([50.0, 50.0]));
    let noisy = d.apply(&clean, &mut Rng::new(3));
    assert!(noisy.data.iter().all(|&v| (0.0..=1.0).contains(&v)));
}

#[test]
fn low_light_scales_linear_brightness_by_the_exposure() {
    let clean = random_image(128, 96, 4);
    let ll = LowLight { quantize: false, ..LowLight::default() };
    for exposure in [0.03, 0.1, 0.3] {
        let s = LowLightSample {
            exposure,
            gamma: 2.2,
            photons: f64::INFINITY,
            read_noise: 0.0,
            gains: [1.0; 3],
            mosaic: None,
            chroma_subsample: false,
        };
        let dark = ll.apply(&clean, &s, &mut Rng::new(5));
        let lin_in: f64 = clean.data.iter().map(|&v| (v as f64).powf(2.2)).sum();
        let lin_out: f64 = dark.data.iter().map(|&v| (v as f64).powf(2.2)).sum();
        assert!((lin_out / lin_in - exposure).abs() < 1e-3 * exposure, "exposure {exposure}: {}", lin_out / lin_in);
        assert!(dark.mean() < clean.mean());
    }
}

#[test]
fn well_exposed_captures_keep_the_scene_and_the_rest_stay_dark() {
    let clean = random_image(64, 48, 6);
    let quiet = LowLight { photons: [1e12, 1e12], read_noise: [1e-9, 1e-9], quantize: false, ..LowLight::default() };
    let ll = LowLight { well_exposed: 0.3, ..quiet.clone() };
    let mut rng = Rng::new(8);
    let (mut exposed, n) = (0, 400);
    for _ in 0..n {
        let s = ll.sample(&mut rng);
        if s.exposure == 1.0 {
            exposed += 1;
            assert_eq!(s.gains, [1.0; 3], "a well-exposed capture is also white-balanced");
            let out = ll.apply(&clean, &s, &mut Rng::new(9));
            let worst = out.data.iter().zip(&clean.data).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "a noiseless well-exposed capture is the scene: off by {worst}");
        } else {
            assert!(s.exposure <= quiet.exposure[1]);
        }
    }
    assert!((90..150).contains(&exposed), "{exposed} of {n} captures well exposed at probability 0.3");
}

#[test]
fn low_light_noise_follows_poisson_gaussian_model() {
    let (x, gamma, e, photons, read) = (0.6f64, 2.2, 0.1, 1000.0, 0.002);
    let clean = Image::filled(200, 200, [x as f32; 3]);
    let ll = LowLight { quantize: false, ..LowLight::default() };
    let s = LowLightSample { exposure: e, gamma, photons, read_noise: read, gains: [1.0; 3], mosaic: None, chroma_subsample: false };
    let dark = ll.apply(&clean, &s, &mut Rng::new(6));
    let signal = x.powf(gamma) * e;
    let expected_std = (signal / photons + read * read).sqrt();
    let (std, mean) = std_and_mean(dark.data.iter().map(|&v| (v as f64).powf(gamma)));
    assert!((mean - signal).abs() < 0.01 * signal, "mean {mean} vs {signal}");
    assert!((std - expected_std).abs() < 0.05 * expected_std, "std {std} vs {expected_std}");
}

#[test]
fn low_light_colour_cast_scales_channels_by_their_gains() {
    let clean = Image::filled(16, 16, [0.5; 3]);
    let ll = LowLight { quantize: false, ..LowLight::default() };
    let gains = [1.12, 1.0, 0.88];
    let s =
        LowLightSample { exposure: 0.2, gamma: 2.0, photons: f64::INFINITY, read_noise: 0.0, gains, mosaic: None, chroma_subsample: false };
    let dark = ll.apply(&clean, &s, &mut Rng::new(0));
    let lin = |c: usize| (dark.at(c, 3, 3) as f64).powi(2);
    assert!((lin(0) / lin(1) - 1.12).abs() < 1e-4 && (lin(2) / lin(1) - 0.88).abs() < 1e-4);
}

/// Correlation of a channel's noise with the same channel one pixel to the right, and with the
/// next channel at the same pixel (bilinear demosaicing fills each colour from its own samples,
/// so it spreads noise over neighbours but not across colours).
fn noise_correlations(noisy: &Image, clean_level: f64) -> (f64, f64) {
    let (w, h) = (noisy.width, noisy.height);
    let n = |c: usize, y: usize, x: usize| noisy.at(c, y, x) as f64 - clean_level;
    let (mut right, mut across, mut power) = (0.0, 0.0, 0.0);
    for c in 0..3 {
        for y in 1..h - 1 {
            for x in 1..w - 1 {
                right += n(c, y, x) * n(c, y, x + 1);
                across += n(c, y, x) * n((c + 1) % 3, y, x);
                power += n(c, y, x) * n(c, y, x);
            }
        }
    }
    (right / power, across / power)
}

fn sensor(mosaic: Option<(usize, usize)>, chroma_subsample: bool) -> LowLightSample {
    LowLightSample { exposure: 0.1, gamma: 1.0, photons: 2000.0, read_noise: 0.002, gains: [1.0; 3], mosaic, chroma_subsample }
}

#[test]
fn a_demosaiced_capture_has_a_cameras_spatially_correlated_noise_and_keeps_its_level() {
    let clean = Image::filled(96, 96, [0.5; 3]);
    let ll = LowLight { quantize: false, ..LowLight::default() };
    let plain = ll.apply(&clean, &sensor(None, false), &mut Rng::new(11));
    let level = 0.05;
    let (right, across) = noise_correlations(&plain, level);
    assert!(right.abs() < 0.05 && across.abs() < 0.05, "plain noise is independent: {right} {across}");
    for red_site in [(0, 0), (0, 1), (1, 0), (1, 1)] {
        let cfa = ll.apply(&clean, &sensor(Some(red_site), false), &mut Rng::new(11));
        let (right, across) = noise_correlations(&cfa, level);
        assert!(right > 0.3 && across.abs() < 0.05, "red site {red_site:?}: correlations {right} {across}");
        assert!((cfa.mean() - level).abs() < 0.002, "red site {red_site:?}: mean {}", cfa.mean());
    }
    // Only the noise goes through the demosaicing: without noise a textured scene comes out
    // exactly as from the plain sensor, edges included.
    let scene = random_image(33, 20, 5);
    let quiet = LowLightSample { photons: f64::INFINITY, read_noise: 0.0, ..sensor(Some((1, 0)), false) };
    let through_cfa = ll.apply(&scene, &quiet, &mut Rng::new(1));
    let plain = ll.apply(&scene, &LowLightSample { mosaic: None, ..quiet }, &mut Rng::new(1));
    assert!(through_cfa.data.iter().zip(&plain.data).all(|(a, b)| (a - b).abs() < 1e-6));
}

#[test]
fn bilinear_demosaicing_keeps_the_sampled_values_and_interpolates_the_rest() {
    let (w, h) = (6, 5);
    // A ramp along x: every colour's interpolated value at an inner pixel is the ramp there.
    let raw: Vec<f32> = (0..w * h).map(|i| (i % w) as f32 / 10.0).collect();
    for red_site in [(0, 0), (1, 1)] {
        let rgb = demosaic_bilinear(&raw, w, h, red_site);
        for y in 0..h {
            for x in 0..w {
                let own = cfa_channel(y, x, red_site);
                assert_eq!(rgb.at(own, y, x), raw[y * w + x]);
                if (1..w - 1).contains(&x) {
                    for c in 0..3 {
                        assert!((rgb.at(c, y, x) - x as f32 / 10.0).abs() < 1e-6, "{red_site:?} c{c} at {y},{x}");
                    }
                }
            }
        }
    }
    // Two greens, one red and one blue in every 2x2 block.
    let counts = (0..4).fold([0; 3], |mut n, i| {
        n[cfa_channel(i / 2, i % 2, (1, 0))] += 1;
        n
    });
    assert_eq!(counts, [1, 2, 1]);
}

#[test]
fn subsampled_chroma_keeps_luma_and_grey_detail_and_averages_colour_over_2x2() {
    // Grey detail at one-pixel period has no chroma: unchanged.
    let mut grey = random_image(8, 6, 3);
    for i in 0..48 {
        let v = grey.data[i];
        grey.data[48 + i] = v;
        grey.data[96 + i] = v;
    }
    let before = grey.clone();
    subsample_chroma_420(&mut grey);
    assert!(grey.data.iter().zip(&before.data).all(|(a, b)| (a - b).abs() < 1e-5));
    // Reddish and greenish columns: each 2x2 block gets one colour, the mean of the two, and
    // the luma of every pixel is kept.
    let mut stripes = Image::new(4, 2);
    for y in 0..2 {
        for x in 0..4 {
            let rgb = if x % 2 == 0 { [0.6, 0.4, 0.5] } else { [0.4, 0.6, 0.5] };
            (0..3).for_each(|c| *stripes.at_mut(c, y, x) = rgb[c]);
        }
    }
    let luma = |img: &Image, y, x| 0.299 * img.at(0, y, x) + 0.587 * img.at(1, y, x) + 0.114 * img.at(2, y, x);
    let lumas: Vec<f32> = (0..4).map(|x| luma(&stripes, 0, x)).collect();
    subsample_chroma_420(&mut stripes);
    for x in 0..4 {
        assert!((luma(&stripes, 1, x) - lumas[x]).abs() < 1e-4);
    }
    let cr = |img: &Image, x| img.at(0, 0, x) - luma(img, 0, x);
    assert!((cr(&stripes, 0) - cr(&stripes, 1)).abs() < 1e-4, "one chroma per block");
}

#[test]
fn low_light_draws_the_camera_stages_only_when_asked_and_as_often_as_asked() {
    let mut rng = Rng::new(12);
    let plain = LowLight::default();
    assert!((0..50).all(|_| {
        let s = plain.sample(&mut rng);
        s.mosaic.is_none() && !s.chroma_subsample
    }));
    let camera = LowLight { mosaic: 0.5, chroma_subsample: 1.0, ..LowLight::default() };
    let draws: Vec<LowLightSample> = (0..400).map(|_| camera.sample(&mut rng)).collect();
    let sensed = draws.iter().filter(|s| s.mosaic.is_some()).count();
    assert!((150..250).contains(&sensed), "{sensed} of 400 through the filter array");
    assert!(draws.iter().all(|s| s.chroma_subsample));
    let sites: std::collections::HashSet<_> = draws.iter().filter_map(|s| s.mosaic).collect();
    assert_eq!(sites.len(), 4, "every red site drawn");
}

#[test]
fn sampled_low_light_stays_within_its_exposure_range_and_is_8_bit() {
    let clean = random_image(64, 64, 7);
    let ll = LowLight::default();
    let mut rng = Rng::new(8);
    for _ in 0..20 {
        let s = ll.sample(&mut rng);
        assert!((0.03..0.3).contains(&s.exposure) && (2.0..2.6).contains(&s.gamma));
        assert!((s.gains.iter().sum::<f64>() - 3.0).abs() < 1e-9);
        let dark = ll.apply(&clean, &s, &mut rng);
        assert!(dark.data.iter().all(|&v| ((v * 255.0) - (v * 255.0).round()).abs() < 1e-3));
    }
}

#[test]
fn motion_blur_kernels_sum_to_one_are_centred_and_extended() {
    let mb = MotionBlur::default();
    let mut rng = Rng::new(9);
    for _ in 0..50 {
        let k = mb.sample(&mut rng);
        assert!(k.size % 2 == 1 && (7..=21).contains(&k.size));
        let sum: f32 = k.values.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
        assert!(k.values.iter().all(|&v| v >= 0.0));
        let (cx, cy) = k.centroid();
        assert!(cx.abs() < 0.5 && cy.abs() < 0.5, "centroid {cx},{cy}");
        // A trajectory, not a point: many taps carry weight.
        assert!(k.values.iter().filter(|&&v| v > 1e-3).count() >= 4);
    }
}

#[test]
fn defocus_disk_sums_to_one_and_has_the_radius_area() {
    for r in [1.0, 2.5, 4.0] {
        let k = disk_kernel(r);
        let sum: f32 = k.values.iter().sum();
        assert!((sum - 1.0).abs() < 1e-5);
        // Uniform disk: the centre weight is 1 / (pi r^2).
        let centre = k.values[k.size * k.size / 2] as f64;
        let area = 1.0 / centre;
        assert!((area - std::f64::consts::PI * r * r).abs() < 0.05 * std::f64::consts::PI * r * r, "r {r}: area {area}");
        let n = k.size;
        for y in 0..n {
            for x in 0..n {
                assert!((k.values[y * n + x] - k.values[x * n + (n - 1 - y)]).abs() < 1e-6, "not symmetric");
            }
        }
    }
}

#[test]
fn blur_keeps_flat_images_and_smooths_texture() {
    let flat = Image::filled(40, 30, [0.3, 0.5, 0.7]);
    let tex = random_image(64, 64, 10);
    for d in [Degradation::MotionBlur(MotionBlur::default()), Degradation::Defocus(Defocus { radius: [2.0, 3.0] })] {
        let out = d.apply(&flat, &mut Rng::new(11));
        assert!(out.data.iter().zip(&flat.data).all(|(a, b)| (a - b).abs() < 1e-5));
        let blurred = d.apply(&tex, &mut Rng::new(12));
        let (s0, m0) = std_and_mean(tex.data.iter().map(|&v| v as f64));
        let (s1, m1) = std_and_mean(blurred.data.iter().map(|&v| v as f64));
        assert!(s1 < 0.6 * s0, "std {s0} -> {s1}");
        assert!((m1 - m0).abs() < 0.01);
    }
}

#[test]
fn rain_only_brightens_and_covers_a_plausible_fraction() {
    let clean = random_image(128, 128, 13);
    let rain = Rain::default();
    let s = RainSample { density: 0.005, length: 15.0, angle_deg: 10.0, intensity: 0.8 };
    let out = rain.apply(&clean, &s, &mut Rng::new(14));
    assert!(out.data.iter().zip(&clean.data).all(|(a, b)| a >= b));
    let changed = out.data.iter().zip(&clean.data).filter(|(a, b)| *a - *b > 0.02).count() as f64 / out.data.len() as f64;
    // Each drop smears over ~length pixels (a few in width from anti-aliasing).
    assert!((0.02..0.4).contains(&changed), "changed fraction {changed}");
    assert!(out.mean() > clean.mean() + 0.01);
}

#[test]
fn degradations_are_reproducible_from_the_seed() {
    let clean = random_image(48, 40, 15);
    let chain = vec![Degradation::LowLight(LowLight::default()), Degradation::Rain(Rain::default())];
    let a = apply_all(&chain, &clean, &mut Rng::new(16));
    let b = apply_all(&chain, &clean, &mut Rng::new(16));
    let c = apply_all(&chain, &clean, &mut Rng::new(17));
    assert_eq!(a, b);
    assert_ne!(a, c);
}
