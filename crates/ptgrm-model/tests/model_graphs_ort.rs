//! Every exported graph in ONNX Runtime: shapes at odd sizes padded to the pad multiple,
//! parity with the pure-Rust reference backend running the same forward, IO names against the
//! manifest, and the prior switches doing what the ablations claim.

mod model_support;

use model_support::ref_ops::{RefOps, Tensor};
use model_support::{max_abs_diff, named, random, run, session};
use ptgrm_bundle::{Manifest, io};
use ptgrm_model::base::{
    BaseBlock, BaseConfig, BaseHead, BaseView, DecoderUpsampling, apply_base_head, apply_unshuffled_cells, base_forward, cells_to_pixels,
    debias_phases, unshuffled_cells, unshuffled_cells_by_definition,
};
use ptgrm_model::export::{ModelConfig, base_graph, init_params, merged_graph, parameter_counts, refiner_graph, test_prior_graph};
use ptgrm_model::joint::joint_forward;
use ptgrm_model::onnx_builder::ParamSource;
use ptgrm_model::onnx_proto::decode_model;
use ptgrm_model::ops::Ops;
use ptgrm_model::ptgrm::{ABLATIONS, RefinerConfig, refiner_forward};
use ptgrm_model::test_bundle::{Layout, TestBundleOptions, write_test_bundle};

const TOL: f32 = 1e-4;
/// The odd frame sizes (N, H, W) every graph must handle once padded.
const SIZES: [(usize, usize, usize); 2] = [(1, 40, 56), (2, 67, 45)];
/// Sizes for the comparison with the (slow, naive) reference backend.
const REF_SIZES: [(usize, usize, usize); 2] = [(1, 16, 24), (2, 13, 9)];

/// The engine's rule: H and W rounded up to the pad multiple.
fn padded(len: usize, multiple: usize) -> usize {
    len.div_ceil(multiple) * multiple
}

fn image(n: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
    random(n * 3 * h * w, seed, 0.0, 1.0)
}

fn small_refiner() -> RefinerConfig {
    RefinerConfig::paper(8)
}

#[test]
fn base_graph_matches_reference_at_padded_odd_sizes() {
    for block in [BaseBlock::Naf, BaseBlock::Res] {
        check_base(&BaseConfig { block, ..Default::default() });
    }
    check_base(&BaseConfig { block: BaseBlock::Res, head: BaseHead::Affine, ..Default::default() });
    let bilinear = BaseConfig { block: BaseBlock::Res, decoder_upsampling: DecoderUpsampling::Bilinear, ..Default::default() };
    check_base(&bilinear);
    let both = BaseConfig { smooth_upsampling: true, ..bilinear.clone() };
    assert!(both.validate().unwrap_err().contains("smooth_upsampling"), "a blur for a shuffle that is not there");
    check_base(&BaseConfig { global_context: true, ..bilinear });
}

/// With `global_context` a change far outside F's receptive field changes F's output (the frame's
/// feature means reach every pixel); without it the same pixels are untouched.
#[test]
fn global_context_lets_distant_content_change_the_output() {
    let cfg = BaseConfig {
        block: BaseBlock::Res,
        width: 8,
        internal_scale: 2,
        view: BaseView::Unshuffled,
        decoder_upsampling: DecoderUpsampling::Bilinear,
        ..Default::default()
    };
    let (n, h, w) = (1, 32, 512);
    let x = image(n, h, w, 160);
    let mut far = x.clone();
    for c in 0..3 {
        for row in 0..h {
            for col in w - 64..w {
                far[(c * h + row) * w + col] *= 0.2;
            }
        }
    }
    // The left 64 columns of every channel.
    let left = |v: &[f32]| -> Vec<f32> { v.chunks(w).flat_map(|row| row[..64].to_vec()).collect() };
    let out = |cfg: &BaseConfig, x: &[f32]| base_forward(&mut RefOps::seeded(4), cfg, &Tensor::new(&[n, 3, h, w], x.to_vec())).data;
    assert_eq!(max_abs_diff(&left(&out(&cfg, &x)), &left(&out(&cfg, &far))), 0.0, "receptive field reaches 384 pixels");
    let context = BaseConfig { global_context: true, ..cfg };
    assert!(max_abs_diff(&left(&out(&context, &x)), &left(&out(&context, &far))) > 1e-4);
}

fn check_base(cfg: &BaseConfig) {
    let g = base_graph(cfg, ParamSource::Seeded(1)).unwrap();
    assert_eq!((g.inputs.clone(), g.outputs.clone()), (vec![io::IMAGE.to_string()], vec![io::BASE.to_string()]));
    let m = cfg.pad_multiple();
    assert_eq!(m, 8 * cfg.internal_scale);
    for (n, h, w) in SIZES {
        let (h, w) = (padded(h, m), padded(w, m));
        let got = run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], image(n, h, w, 19))], &[io::BASE]);
        assert_eq!(got[0].0, vec![n, 3, h, w]);
        assert!(got[0].1.iter().all(|v| v.is_finite()));
    }
    for (i, (n, h, w)) in REF_SIZES.into_iter().enumerate() {
        let (h, w) = (padded(h, m), padded(w, m));
        let x = image(n, h, w, 20 + i as u64);
        let got = run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.clone())], &[io::BASE]);
        assert_eq!(got[0].0, vec![n, 3, h, w]);
        let want = base_forward(&mut RefOps::seeded(1), cfg, &Tensor::new(&[n, 3, h, w], x));
        let d = max_abs_diff(&got[0].1, &want.data);
        assert!(d <= TOL, "{n}x3x{h}x{w}: max abs diff {d}");
    }
}

#[test]
fn refiner_graph_matches_reference_at_padded_odd_sizes() {
    check_refiner(&small_refiner());
    check_refiner(&RefinerConfig { mask_logit_offset: 4.0, ..small_refiner() });
}

#[test]
fn per_region_prior_refiner_matches_the_reference_and_follows_each_cell() {
    // A 2x2 grid of 8-value cells; same parameters as the vector prior's mappings.
    let cfg = RefinerConfig { prior_dim: 32, prior_grid: 2, mask_logit_offset: 4.0, ..small_refiner() };
    check_refiner(&cfg);
    let vector = refiner_graph(&small_refiner(), ParamSource::Seeded(2)).unwrap();
    let grid = refiner_graph(&cfg, ParamSource::Seeded(2)).unwrap();
    assert_eq!(vector.parameter_count(), grid.parameter_count(), "a per-region prior adds no parameters");
    // Changing the top-left cell changes the top-left of the output most.
    let (h, w) = (32, 32);
    let g = random(32, 90, -1.0, 1.0);
    let mut moved = g.clone();
    for c in 0..8 {
        moved[c * 4] += 2.0;
    }
    let refine_at = |prior: Vec<f32>| {
        let inputs = [
            named(io::RESTORED, &[1, 3, h, w], image(1, h, w, 91)),
            named(io::DEGRADED, &[1, 3, h, w], image(1, h, w, 92)),
            named(io::PRIOR, &[1, 32], prior),
        ];
        run(&grid.bytes, &inputs, &[io::REFINED]).remove(0).1
    };
    let (a, b) = (refine_at(g), refine_at(moved));
    let quadrant = |y0: usize, x0: usize| -> f32 {
        let mut sum = 0.0;
        for c in 0..3 {
            for y in y0..y0 + h / 2 {
                for x in x0..x0 + w / 2 {
                    let i = (c * h + y) * w + x;
                    sum += (a[i] - b[i]).abs();
                }
            }
        }
        sum
    };
    let (top_left, bottom_right) = (quadrant(0, 0), quadrant(h / 2, w / 2));
    assert!(top_left > 2.0 * bottom_right, "top-left change {top_left}, bottom-right {bottom_right}");
}

#[test]
fn official_kernel_predictor_width_builds_and_matches_the_reference() {
    // The official code's R_p: conv(96->144) -> LReLU -> conv(144->144); ours (kernel_hidden 0
    // = nf) conv(96->16) -> conv(16->144). Inputs: nf 16 + prior embedding 64 + position 16.
    check_refiner(&RefinerConfig { kernel_hidden: 144, ..small_refiner() });
    let ours = ModelConfig { base: None, refiner: RefinerConfig::paper(1280) };
    let official = ModelConfig { base: None, refiner: RefinerConfig { kernel_hidden: 144, ..RefinerConfig::paper(1280) } };
    let r_p = |hidden: u64| 96 * hidden * 9 + hidden + hidden * 144 * 9 + 144;
    assert_eq!(r_p(16), 34_720);
    assert_eq!(r_p(144), 311_328);
    let (_, a) = parameter_counts(&ours).unwrap();
    let (_, b) = parameter_counts(&official).unwrap();
    assert_eq!(b - a, r_p(144) - r_p(16));
}

fn check_refiner(cfg: &RefinerConfig) {
    let cfg = cfg.clone();
    let g = refiner_graph(&cfg, ParamSource::Seeded(2)).unwrap();
    assert_eq!(g.inputs, vec![io::RESTORED, io::DEGRADED, io::PRIOR]);
    assert_eq!(g.outputs, vec![io::REFINED]);
    let m = cfg.pad_multiple();
    for (i, (n, h, w)) in SIZES.into_iter().chain(REF_SIZES).enumerate() {
        let (h, w) = (padded(h, m), padded(w, m));
        let (r, d) = (image(n, h, w, 30 + i as u64), image(n, h, w, 40 + i as u64));
        let p = random(n * cfg.prior_dim, 50 + i as u64, -1.0, 1.0);
        let got = run(
            &g.bytes,
            &[
                named(io::RESTORED, &[n, 3, h, w], r.clone()),
                named(io::DEGRADED, &[n, 3, h, w], d.clone()),
                named(io::PRIOR, &[n, cfg.prior_dim], p.clone()),
            ],
            &[io::REFINED],
        );
        assert_eq!(got[0].0, vec![n, 3, h, w]);
        if i < SIZES.len() {
            assert!(got[0].1.iter().all(|v| v.is_finite()));
            continue; // the naive reference is too slow at full test sizes
        }
        let want = refiner_forward(
            &mut RefOps::seeded(2),
            &cfg,
            &Tensor::new(&[n, 3, h, w], r),
            &Tensor::new(&[n, 3, h, w], d),
            &Tensor::new(&[n, cfg.prior_dim], p),
        );
        let diff = max_abs_diff(&got[0].1, &want.data);
        assert!(diff <= TOL, "{n}x3x{h}x{w}: max abs diff {diff}");
    }
}

/// Runs a refiner graph on fixed inputs with the given prior.
fn refine(bytes: &[u8], dim: usize, prior: Vec<f32>) -> Vec<f32> {
    let (n, h, w) = (1, 16, 24);
    let inputs = [
        named(io::RESTORED, &[n, 3, h, w], image(n, h, w, 60)),
        named(io::DEGRADED, &[n, 3, h, w], image(n, h, w, 61)),
        named(io::PRIOR, &[n, dim], prior),
    ];
    run(bytes, &inputs, &[io::REFINED]).remove(0).1
}

#[test]
fn every_ablation_exports_runs_and_keeps_its_prior_contract() {
    let base = small_refiner();
    for name in ABLATIONS {
        let cfg = base.ablation(name).unwrap();
        let g = refiner_graph(&cfg, ParamSource::Seeded(3)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (n, h, w) = SIZES[1];
        let (h, w) = (padded(h, cfg.pad_multiple()), padded(w, cfg.pad_multiple()));
        let inputs = [
            named(io::RESTORED, &[n, 3, h, w], image(n, h, w, 70)),
            named(io::DEGRADED, &[n, 3, h, w], image(n, h, w, 71)),
            named(io::PRIOR, &[n, cfg.prior_dim], random(n * cfg.prior_dim, 72, -1.0, 1.0)),
        ];
        let out = run(&g.bytes, &inputs, &[io::REFINED]);
        assert_eq!(out[0].0, vec![n, 3, h, w], "{name}");
        assert!(out[0].1.iter().all(|v| v.is_finite()), "{name}: non-finite output");

        let a = refine(&g.bytes, cfg.prior_dim, random(cfg.prior_dim, 80, -1.0, 1.0));
        let b = refine(&g.bytes, cfg.prior_dim, random(cfg.prior_dim, 81, -1.0, 1.0));
        let prior_matters = max_abs_diff(&a, &b) > 1e-6;
        let expect = !matches!(*name, "no-prior" | "large-no-prior");
        assert_eq!(prior_matters, expect, "{name}: the prior input {} change the output", if expect { "must" } else { "must not" });
    }
}

#[test]
fn reduced_internal_resolution_keeps_full_size_io() {
    let base = BaseConfig { internal_scale: 2, ..Default::default() };
    let refiner = RefinerConfig { internal_scale: 4, ..small_refiner() };
    let cfg = ModelConfig { base: Some(base.clone()), refiner: refiner.clone() };
    assert_eq!(cfg.pad_multiple(), 16);
    let g = merged_graph(&base, &refiner, ParamSource::Seeded(4)).unwrap();
    for (n, h, w) in REF_SIZES {
        let (h, w) = (padded(h, 16), padded(w, 16));
        let x = image(n, h, w, 90);
        let p = random(n * 8, 91, -1.0, 1.0);
        let got =
            run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.clone()), named(io::PRIOR, &[n, 8], p.clone())], &[io::REFINED, io::BASE]);
        assert_eq!(got[0].0, vec![n, 3, h, w]);
        assert_eq!(got[1].0, vec![n, 3, h, w]);
        let mut r = RefOps::seeded(4);
        let want_base = base_forward(&mut r, &base, &Tensor::new(&[n, 3, h, w], x.clone()));
        let want = refiner_forward(&mut r, &refiner, &want_base, &Tensor::new(&[n, 3, h, w], x), &Tensor::new(&[n, 8], p));
        assert!(max_abs_diff(&got[1].1, &want_base.data) <= TOL);
        assert!(max_abs_diff(&got[0].1, &want.data) <= TOL);
    }
}

#[test]
fn merged_graph_equals_base_then_refiner() {
    let (bc, rc) = (BaseConfig::default(), small_refiner());
    let merged = merged_graph(&bc, &rc, ParamSource::Seeded(5)).unwrap();
    assert_eq!(merged.inputs, vec![io::IMAGE, io::PRIOR]);
    assert_eq!(merged.outputs, vec![io::REFINED, io::BASE]);
    let base = base_graph(&bc, ParamSource::Seeded(5)).unwrap();
    let refiner = refiner_graph(&rc, ParamSource::Seeded(5)).unwrap();
    let (n, h, w) = (2, 24, 32);
    let x = image(n, h, w, 100);
    let p = random(n * 8, 101, -1.0, 1.0);
    let m =
        run(&merged.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.clone()), named(io::PRIOR, &[n, 8], p.clone())], &[io::REFINED, io::BASE]);
    let b = run(&base.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.clone())], &[io::BASE]).remove(0).1;
    let r = run(
        &refiner.bytes,
        &[named(io::RESTORED, &[n, 3, h, w], b.clone()), named(io::DEGRADED, &[n, 3, h, w], x), named(io::PRIOR, &[n, 8], p)],
        &[io::REFINED],
    )
    .remove(0)
    .1;
    assert!(max_abs_diff(&m[1].1, &b) <= 1e-6);
    assert!(max_abs_diff(&m[0].1, &r) <= 1e-5);
}

#[test]
fn test_prior_graph_gives_unit_vectors_at_any_size() {
    let g = test_prior_graph(16, ParamSource::Seeded(6)).unwrap();
    for (n, h, w) in [(1, 40, 56), (2, 67, 45), (1, 3, 5)] {
        let out = run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], image(n, h, w, 110))], &[io::PRIOR]);
        assert_eq!(out[0].0, vec![n, 16]);
        for v in out[0].1.chunks(16) {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        }
    }
}

#[test]
fn default_refiner_stays_under_one_million_parameters() {
    for d in [512, 1280] {
        let cfg = ModelConfig { base: Some(BaseConfig::default()), refiner: RefinerConfig::paper(d) };
        let (b, r) = parameter_counts(&cfg).unwrap();
        println!("prior dim {d}: base F {b} parameters, refiner R {r} parameters");
        assert!(r < 1_000_000, "R has {r} parameters with D = {d}");
        assert!(b > 0);
    }
}

/// The full-resolution skip is one nf -> nf 3x3 conv (weights and bias) and nothing else.
#[test]
fn full_res_skip_adds_one_conv_and_stays_under_one_million_parameters() {
    let plain = RefinerConfig::paper(1280);
    let skip = RefinerConfig { full_res_skip: true, ..plain.clone() };
    let count = |refiner: RefinerConfig| parameter_counts(&ModelConfig { base: None, refiner }).unwrap().1;
    let (a, b) = (count(plain.clone()), count(skip));
    assert_eq!(b - a, (plain.nf * plain.nf * 9 + plain.nf) as u64);
    assert!(b < 1_000_000, "R has {b} parameters");
}

/// R told the exposure (`exposure_input`) starts as the refiner it is added to (its mapping is
/// zero-initialised, so a fine-tune from a checkpoint without it starts at that checkpoint's
/// function); once the mapping is trained, the exported graph reads the frame as the reference does.
#[test]
fn exposure_input_starts_as_the_plain_refiner_and_exports_like_the_reference() {
    let plain = small_refiner();
    let with = RefinerConfig { exposure_input: true, ..plain.clone() };
    let dim = plain.prior_dim;
    let params = |refiner: &RefinerConfig| init_params(&ModelConfig { base: None, refiner: refiner.clone() }, 4).unwrap();
    let p = random(dim, 70, -1.0, 1.0);
    let before = refiner_graph(&plain, ParamSource::Given(params(&plain))).unwrap();
    let mut trained = params(&with);
    let added = refiner_graph(&with, ParamSource::Given(trained.clone())).unwrap();
    let at_start = refine(&added.bytes, dim, p.clone());
    assert!(max_abs_diff(&refine(&before.bytes, dim, p.clone()), &at_start) <= 1e-6);

    let mapping: Vec<_> = trained.keys().filter(|k| k.contains(".exposure.")).cloned().collect();
    assert_eq!(mapping.len(), 4, "{mapping:?}");
    for k in &mapping {
        for (i, x) in trained.get_mut(k).unwrap().data.iter_mut().enumerate() {
            *x = 3.0 * ((i % 7) as f32 - 3.0);
        }
    }
    let after = refiner_graph(&with, ParamSource::Given(trained.clone())).unwrap();
    let got = refine(&after.bytes, dim, p.clone());
    let changed = max_abs_diff(&got, &at_start);
    assert!(changed > 1e-3, "a trained exposure mapping changes nothing: {changed}");
    let (n, h, w) = (1, 16, 24);
    let want = refiner_forward(
        &mut RefOps { seed: 4, given: trained },
        &with,
        &Tensor::new(&[n, 3, h, w], image(n, h, w, 60)),
        &Tensor::new(&[n, 3, h, w], image(n, h, w, 61)),
        &Tensor::new(&[n, dim], p),
    );
    let d = max_abs_diff(&got, &want.data);
    assert!(d <= TOL, "max abs diff {d}");
    // It feeds the prior mappings, so a refiner without them rejects it.
    let concat = RefinerConfig { exposure_input: true, ..plain.ablation("prior-concat").unwrap() };
    assert!(refiner_graph(&concat, ParamSource::Seeded(0)).unwrap_err().contains("exposure_input"));
}

/// R with a filter of F's output (`restored_filter`) starts as the refiner without it (its
/// weights come from a zero-initialised conv); with weights set, the exported graph filters Î
/// as documented: Î' = Î + Σ_d w_d (Î shifted by d − Î), edges repeated, then Eq. 1. Checked
/// against a direct computation: with R's head zeroed, Ī = I_d + (Î' − I_d)·sigmoid(0).
#[test]
fn restored_filter_starts_as_the_plain_refiner_and_filters_f_as_defined() {
    let plain = RefinerConfig { zero_init_head: true, ..small_refiner() };
    let with = RefinerConfig { restored_filter: true, ..plain.clone() };
    let dim = plain.prior_dim;
    let p = random(dim, 70, -1.0, 1.0);
    let params = |refiner: &RefinerConfig| init_params(&ModelConfig { base: None, refiner: refiner.clone() }, 4).unwrap();
    let before = refine(&refiner_graph(&plain, ParamSource::Given(params(&plain))).unwrap().bytes, dim, p.clone());
    let mut trained = params(&with);
    let at_start = refine(&refiner_graph(&with, ParamSource::Given(trained.clone())).unwrap().bytes, dim, p.clone());
    assert!(max_abs_diff(&before, &at_start) <= 1e-6);

    // One filter everywhere: its bias, the eight neighbours in row order.
    let w = [0.05f32, 0.10, -0.02, 0.20, 0.15, 0.0, 0.07, 0.30];
    trained.get_mut("refiner.dec.filter.bias").unwrap().data.copy_from_slice(&w);
    let got = refine(&refiner_graph(&with, ParamSource::Given(trained)).unwrap().bytes, dim, p);
    let (h, wd) = (16usize, 24usize);
    let (restored, degraded) = (image(1, h, wd, 60), image(1, h, wd, 61));
    let at = |c: usize, y: isize, x: isize| {
        let (y, x) = (y.clamp(0, h as isize - 1) as usize, x.clamp(0, wd as isize - 1) as usize);
        restored[(c * h + y) * wd + x]
    };
    let offsets = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)];
    let mut worst = 0f32;
    for c in 0..3 {
        for y in 0..h as isize {
            for x in 0..wd as isize {
                let centre = at(c, y, x);
                let filtered = centre + offsets.iter().zip(w).map(|(&(dy, dx), wt)| wt * (at(c, y + dy, x + dx) - centre)).sum::<f32>();
                let i = (c * h + y as usize) * wd + x as usize;
                let want = degraded[i] + (filtered - degraded[i]) * 0.5;
                worst = worst.max((got[i] - want).abs());
            }
        }
    }
    assert!(worst <= 1e-5, "max abs diff {worst}");
    // It filters at full resolution only.
    let scaled = RefinerConfig { restored_filter: true, internal_scale: 2, ..small_refiner() };
    assert!(refiner_graph(&scaled, ParamSource::Seeded(0)).unwrap_err().contains("restored_filter"));
}

#[test]
fn trained_weights_round_trip_into_the_exported_graph() {
    let cfg = ModelConfig { base: None, refiner: small_refiner() };
    let params = init_params(&cfg, 7).unwrap();
    assert!(params.keys().all(|k| k.starts_with("refiner.")));
    let from_map = refiner_graph(&cfg.refiner, ParamSource::Given(params.clone())).unwrap();
    let seeded = refiner_graph(&cfg.refiner, ParamSource::Seeded(7)).unwrap();
    assert_eq!(from_map.bytes, seeded.bytes);
    // A changed weight changes the output; a missing one is an error naming it.
    let mut changed = params.clone();
    changed.get_mut("refiner.dec.out.bias").unwrap().data[1] += 0.5;
    let other = refiner_graph(&cfg.refiner, ParamSource::Given(changed)).unwrap();
    let p = random(8, 120, -1.0, 1.0);
    assert!(max_abs_diff(&refine(&seeded.bytes, 8, p.clone()), &refine(&other.bytes, 8, p)) > 0.1);
    let mut missing = params;
    missing.remove("refiner.t_m.fc1.weight");
    let err = refiner_graph(&cfg.refiner, ParamSource::Given(missing)).unwrap_err();
    assert!(err.contains("refiner.t_m.fc1.weight"), "{err}");
}

#[test]
fn invalid_configs_are_errors() {
    let bad = RefinerConfig { heads: 3, ..small_refiner() };
    assert!(refiner_graph(&bad, ParamSource::Seeded(0)).unwrap_err().contains("heads"));
    let bad = BaseConfig { internal_scale: 3, ..Default::default() };
    assert!(base_graph(&bad, ParamSource::Seeded(0)).unwrap_err().contains("internal_scale"));
    assert!(small_refiner().ablation("no-such").unwrap_err().contains("unknown ablation"));
    // Fused upsampling: a merged graph of F and R at one internal scale, nothing else.
    let fused = RefinerConfig { internal_scale: 8, fused_upsampling: true, ..small_refiner() };
    assert!(refiner_graph(&fused, ParamSource::Seeded(0)).unwrap_err().contains("merged graph"));
    let other_scale = BaseConfig { internal_scale: 4, ..Default::default() };
    assert!(merged_graph(&other_scale, &fused, ParamSource::Seeded(0)).unwrap_err().contains("same internal scale"));
    let external = ModelConfig { base: None, refiner: fused };
    assert!(external.validate().unwrap_err().contains("built-in F"));
}

#[test]
fn fused_upsampling_graph_matches_the_reference_and_keeps_full_size_io() {
    let base = BaseConfig { internal_scale: 8, head: BaseHead::Affine, ..Default::default() };
    let refiner = RefinerConfig { internal_scale: 8, fused_upsampling: true, mask_logit_offset: 4.0, ..small_refiner() };
    let cfg = ModelConfig { base: Some(base.clone()), refiner: refiner.clone() };
    assert_eq!(cfg.pad_multiple(), 64);
    // Fusing changes where the networks run, not their parameters.
    let unfused = ModelConfig { refiner: RefinerConfig { fused_upsampling: false, ..refiner.clone() }, ..cfg.clone() };
    assert_eq!(parameter_counts(&cfg).unwrap(), parameter_counts(&unfused).unwrap());
    let g = merged_graph(&base, &refiner, ParamSource::Seeded(6)).unwrap();
    let (n, h, w) = (1, 64, 128);
    let x = image(n, h, w, 110);
    let p = random(n * 8, 111, -1.0, 1.0);
    let got = run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.clone()), named(io::PRIOR, &[n, 8], p.clone())], &[io::REFINED, io::BASE]);
    assert_eq!(got[0].0, vec![n, 3, h, w]);
    let (want_base, want) =
        joint_forward(&mut RefOps::seeded(6), &base, &refiner, &Tensor::new(&[n, 3, h, w], x.clone()), &Tensor::new(&[n, 8], p));
    assert!(max_abs_diff(&got[1].1, &want_base.data) <= TOL);
    assert!(max_abs_diff(&got[0].1, &want.data) <= TOL);
    // Full-resolution detail of the input reaches both outputs (only the corrections are low-res).
    assert!(max_abs_diff(&got[1].1, &x) > 1e-3);
}

#[test]
fn unshuffled_view_matches_the_reference_and_corrects_each_pixel() {
    // F on the space-to-depth view at 1/4, R at its own 1/8, as the live v2 design.
    let base = BaseConfig { internal_scale: 4, head: BaseHead::Affine, view: BaseView::Unshuffled, ..Default::default() };
    check_base(&base);
    let refiner = RefinerConfig { internal_scale: 8, fused_upsampling: true, mask_logit_offset: 4.0, ..small_refiner() };
    let cfg = ModelConfig { base: Some(base.clone()), refiner: refiner.clone() };
    assert_eq!(cfg.validate(), Ok(()));
    let g = merged_graph(&base, &refiner, ParamSource::Seeded(7)).unwrap();
    let (n, h, w) = (1, 64, 96);
    let x = image(n, h, w, 120);
    let p = random(n * 8, 121, -1.0, 1.0);
    let got = run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.clone()), named(io::PRIOR, &[n, 8], p.clone())], &[io::REFINED, io::BASE]);
    let (want_base, want) =
        joint_forward(&mut RefOps::seeded(7), &base, &refiner, &Tensor::new(&[n, 3, h, w], x.clone()), &Tensor::new(&[n, 8], p));
    assert!(max_abs_diff(&got[1].1, &want_base.data) <= TOL);
    assert!(max_abs_diff(&got[0].1, &want.data) <= TOL);
}

#[test]
fn phase_window_matches_the_reference_and_keeps_per_pixel_detail() {
    let base = BaseConfig {
        internal_scale: 4,
        head: BaseHead::Affine,
        view: BaseView::Unshuffled,
        phase_window: 4,
        smooth_upsampling: true,
        smooth_cells: true,
        ..Default::default()
    };
    check_base(&base);
    let refiner = RefinerConfig { internal_scale: 8, fused_upsampling: true, mask_logit_offset: 4.0, ..small_refiner() };
    let g = merged_graph(&base, &refiner, ParamSource::Seeded(8)).unwrap();
    let (n, h, w) = (1, 64, 96);
    let x = image(n, h, w, 140);
    let p = random(n * 8, 141, -1.0, 1.0);
    let got = run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.clone()), named(io::PRIOR, &[n, 8], p.clone())], &[io::REFINED, io::BASE]);
    let (want_base, want) =
        joint_forward(&mut RefOps::seeded(8), &base, &refiner, &Tensor::new(&[n, 3, h, w], x.clone()), &Tensor::new(&[n, 8], p));
    assert!(max_abs_diff(&got[1].1, &want_base.data) <= TOL);
    assert!(max_abs_diff(&got[0].1, &want.data) <= TOL);
}

#[test]
fn phase_window_and_smooth_upsampling_leave_no_pattern_on_a_flat_image() {
    // A flat grey image through an unshuffled F with random weights: every cell sees the same
    // patch, so any variation of the correction inside the frame's centre is a pattern drawn
    // by the pixel shuffles (the final one per sub-position, the decoder's per 2x2 block).
    let (n, h, w) = (1, 256, 256);
    let flat = Tensor::new(&[n, 3, h, w], vec![0.3; 3 * h * w]);
    let spread = |phase_window: usize, smooth_upsampling: bool| -> f32 {
        let cfg = BaseConfig {
            block: BaseBlock::Res,
            enc_blocks: vec![1, 1],
            dec_blocks: vec![1, 1],
            internal_scale: 4,
            view: BaseView::Unshuffled,
            phase_window,
            smooth_upsampling,
            ..Default::default()
        };
        let out = base_forward(&mut RefOps::seeded(12), &cfg, &flat);
        // Centre 64 x 64 (16 cells): beyond the reach of the borders' padding.
        let centre: Vec<f32> = (96..160).flat_map(|y| (96..160).map(move |x| (y, x))).map(|(y, x)| out.data[y * w + x]).collect();
        centre.iter().cloned().fold(f32::MIN, f32::max) - centre.iter().cloned().fold(f32::MAX, f32::min)
    };
    let plain = spread(0, false);
    assert!(plain > 1e-3, "random weights should draw a pattern without the remedies ({plain})");
    assert!(spread(4, false) > 1e-3, "the decoder's shuffles still draw one");
    let both = spread(4, true);
    assert!(both < 1e-5 * plain.max(1.0) + 1e-6, "pattern left: {both} (without: {plain})");
}

#[test]
fn smooth_cells_interpolate_cell_means_and_keep_per_pixel_detail() {
    let (maps, s, h, w) = (2, 4, 8, 8);
    let phases = s * s;
    // Cell means on a ramp (cell x + 2 cell y), no detail: a nearest placement would draw 4x4
    // blocks; the bilinear one steps no more across a cell edge than inside a cell.
    let ramp: Vec<f32> = (0..maps * phases * h * w)
        .map(|i| {
            let (cy, cx) = ((i / w) % h, i % w);
            (cx + 2 * cy) as f32
        })
        .collect();
    let out = cells_to_pixels(&mut RefOps::seeded(0), &Tensor::new(&[1, maps * phases, h, w], ramp), maps, s);
    let (fw, fh) = (w * s, h * s);
    assert_eq!(out.shape, vec![1, maps, fh, fw]);
    let row = (fh / 2) * fw;
    let steps: Vec<f32> = (s..fw - s - 1).map(|x| out.data[row + x + 1] - out.data[row + x]).collect();
    let spread = steps.iter().cloned().fold(f32::MIN, f32::max) - steps.iter().cloned().fold(f32::MAX, f32::min);
    assert!(spread < 1e-5, "uneven steps along a row: {steps:?}");
    // Zero-mean detail per cell goes through the pixel shuffle unchanged.
    let mut detail = random(maps * phases * h * w, 160, -1.0, 1.0);
    for m in 0..maps {
        for cell in 0..h * w {
            let mean = (0..phases).map(|k| detail[(m * phases + k) * h * w + cell]).sum::<f32>() / phases as f32;
            (0..phases).for_each(|k| detail[(m * phases + k) * h * w + cell] -= mean);
        }
    }
    let y = Tensor::new(&[1, maps * phases, h, w], detail);
    let out = cells_to_pixels(&mut RefOps::seeded(0), &y, maps, s);
    let shuffled = RefOps::seeded(0).pixel_shuffle(&y, s);
    assert!(max_abs_diff(&out.data, &shuffled.data) < 1e-5);
}

#[test]
fn unshuffled_tail_shuffles_each_map_group_alone_and_means_the_same() {
    // The fast tail (gain and offset shuffled apart, the correction formed directly) must be
    // the plain composition: shuffle every map, then the head's formula, then subtract.
    for head in [BaseHead::Affine, BaseHead::Residual] {
        let (s, h, w) = (4, 3, 5);
        let cfg = BaseConfig { head, view: BaseView::Unshuffled, internal_scale: s, ..Default::default() };
        let maps = cfg.head_channels();
        let mut o = RefOps::seeded(0);
        let cells = Tensor::new(&[2, maps * s * s, h, w], random(2 * maps * s * s * h * w, 170, -0.5, 0.5));
        let image = Tensor::new(&[2, 3, h * s, w * s], image(2, h * s, w * s, 171));
        let (restored, correction) = apply_unshuffled_cells(&mut o, &cfg, &image, &cells);
        let shuffled = o.pixel_shuffle(&cells, s);
        let plain = apply_base_head(&mut o, &cfg, &image, &shuffled);
        assert!(max_abs_diff(&restored.data, &plain.data) < 1e-6, "{head:?}: restored differs");
        let plain_correction: Vec<f32> = plain.data.iter().zip(&image.data).map(|(r, i)| r - i).collect();
        assert!(max_abs_diff(&correction.data, &plain_correction) < 1e-6, "{head:?}: correction differs");
    }
}

#[test]
fn debiased_phases_lose_a_fixed_pattern_and_keep_cell_to_cell_detail() {
    // 2 maps x 16 sub-positions on a 16 x 16 cell grid: a fixed bias per sub-position (what a
    // pixel shuffle draws as a period-4 grid) on top of independent per-cell values (noise a
    // denoiser must cancel pixel by pixel).
    let (maps, phases, h, w) = (2, 16, 16, 16);
    let detail = random(maps * phases * h * w, 150, -1.0, 1.0);
    let bias = random(maps * phases, 151, -0.5, 0.5);
    let data: Vec<f32> = detail.iter().enumerate().map(|(i, d)| d + bias[i / (h * w)]).collect();
    let y = Tensor::new(&[1, maps * phases, h, w], data);
    let out = debias_phases(&mut RefOps::seeded(0), &y, maps, phases, 4);
    let channel_mean = |v: &[f32], c: usize| v[c * h * w..(c + 1) * h * w].iter().sum::<f32>() / (h * w) as f32;
    for m in 0..maps {
        let means: Vec<f32> = (0..phases).map(|k| channel_mean(&out.data, m * phases + k)).collect();
        let spread = means.iter().cloned().fold(f32::MIN, f32::max) - means.iter().cloned().fold(f32::MAX, f32::min);
        assert!(spread < 1e-4, "map {m}: sub-position means still differ by {spread}");
    }
    // Each sub-position keeps most of its cell-to-cell variation (window 4: about 15/16).
    let centred = |v: &[f32], c: usize| {
        let mu = channel_mean(v, c);
        v[c * h * w..(c + 1) * h * w].iter().map(|x| x - mu).collect::<Vec<f32>>()
    };
    let (mut kept, mut had) = (0.0f64, 0.0f64);
    for c in 0..maps * phases {
        let a = centred(&out.data, c);
        let b = centred(&detail, c);
        kept += a.iter().zip(&b).map(|(x, y)| (x * y) as f64).sum::<f64>();
        had += b.iter().map(|y| (y * y) as f64).sum::<f64>();
    }
    assert!(kept / had > 0.85, "kept {:.3} of the per-cell detail", kept / had);
}

#[test]
fn only_the_unshuffled_view_sees_pixels_inside_a_patch() {
    // Swap neighbouring columns inside every 4-pixel patch: the 4x4 means do not change, so a
    // pooled F computes the same residual; an unshuffled F sees the difference (that is what
    // lets it remove noise at full resolution).
    let (n, h, w) = (1, 32, 32);
    let x = image(n, h, w, 130);
    let mut swapped = x.clone();
    for row in swapped.chunks_mut(w) {
        for patch in row.chunks_mut(4) {
            patch.swap(0, 1);
        }
    }
    let residual = |view: BaseView, input: &[f32]| -> Vec<f32> {
        let cfg = BaseConfig { internal_scale: 4, view, ..Default::default() };
        let t = Tensor::new(&[n, 3, h, w], input.to_vec());
        let out = base_forward(&mut RefOps::seeded(9), &cfg, &t);
        out.data.iter().zip(input).map(|(o, i)| o - i).collect()
    };
    assert!(max_abs_diff(&residual(BaseView::Pooled, &x), &residual(BaseView::Pooled, &swapped)) < 1e-6);
    assert!(max_abs_diff(&residual(BaseView::Unshuffled, &x), &residual(BaseView::Unshuffled, &swapped)) > 1e-4);
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ptgrm-model-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn test_bundles_load_and_their_graphs_match_the_manifest() {
    let cases = [(Layout::Split, true), (Layout::Merged, true), (Layout::Split, false)];
    for (i, (layout, prior_graph)) in cases.into_iter().enumerate() {
        let dir = temp_dir(&format!("bundle{i}"));
        let opts = TestBundleOptions { layout, prior_graph, prior_dim: 16, ..Default::default() };
        let written = write_test_bundle(&dir, &opts).unwrap();
        let m = Manifest::read(&dir).unwrap();
        assert_eq!(m, written);
        assert_eq!(m.pad_multiple, 8);
        assert_eq!(m.prior.dim, 16);
        assert!(m.provenance.note.as_deref().unwrap_or("").contains("untrained"));
        assert_eq!(m.graphs.prior.is_some(), prior_graph);
        for (role, gf) in m.graphs.iter() {
            let bytes = Manifest::read_graph(&dir, role, gf).unwrap();
            let graph = decode_model(&bytes).unwrap().graph.unwrap();
            let names = |v: &[ptgrm_model::onnx_proto::ValueInfoProto]| -> Vec<String> {
                v.iter().map(|x| x.name.clone().unwrap_or_default()).collect()
            };
            assert_eq!(names(&graph.input), gf.inputs, "{role} inputs");
            assert_eq!(names(&graph.output), gf.outputs, "{role} outputs");
            let s = session(&bytes);
            let ort_in: Vec<String> = s.inputs().iter().map(|x| x.name().to_string()).collect();
            let ort_out: Vec<String> = s.outputs().iter().map(|x| x.name().to_string()).collect();
            assert_eq!(ort_in, gf.inputs, "{role} inputs as ONNX Runtime sees them");
            assert_eq!(ort_out, gf.outputs, "{role} outputs as ONNX Runtime sees them");
            assert!(gf.parameters > 0);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
    // An unwritable destination is an error, not a panic.
    let err = write_test_bundle(std::path::Path::new("/proc/ptgrm-no-such-dir"), &TestBundleOptions::default()).unwrap_err();
    assert!(err.contains("/proc/ptgrm-no-such-dir"), "{err}");
}

/// A zero-initialised head makes the untrained refiner the fixed blend of Eq. 1 with
/// I_m = sigmoid(offset) and I_r = 0, whatever the prior and the other (random) weights.
#[test]
fn zero_initialised_head_starts_from_the_offset_blend() {
    let offset = 4.0f32;
    let cfg = RefinerConfig { zero_init_head: true, mask_logit_offset: offset, ..small_refiner() };
    let g = refiner_graph(&cfg, ParamSource::Seeded(8)).unwrap();
    let (n, h, w) = (1, 24, 32);
    let (restored, degraded) = (image(n, h, w, 120), image(n, h, w, 121));
    let p = random(n * 8, 122, -1.0, 1.0);
    let got = run(
        &g.bytes,
        &[
            named(io::RESTORED, &[n, 3, h, w], restored.clone()),
            named(io::DEGRADED, &[n, 3, h, w], degraded.clone()),
            named(io::PRIOR, &[n, 8], p),
        ],
        &[io::REFINED],
    );
    let m = 1.0 / (1.0 + (-offset).exp());
    let want: Vec<f32> = restored.iter().zip(&degraded).map(|(r, d)| d + (r - d) * m).collect();
    assert!(max_abs_diff(&got[0].1, &want) <= 1e-5);
}

/// The pattern-free cells (phase_window + smooth_cells, the shipped live graphs) are computed
/// with the smoothing folded into the ending conv; that must be the function the options
/// define, for the affine low-light head at 1/4 and the residual denoiser head at 1/2, and the
/// exported graph must compute it too. The ending gets random weights: its ICNR start repeats
/// each map over the sub-positions, which the sub-position remedies would leave untouched.
#[test]
fn folded_pattern_free_cells_equal_their_definition() {
    // (head, s, phase_noise_gate, phase_noise_bilinear_reference, phase_noise_shrinkage)
    for (head, s, phase_noise_gate, phase_noise_bilinear_reference, phase_noise_shrinkage) in [
        (BaseHead::Affine, 4, false, false, false),
        (BaseHead::Residual, 2, false, false, false),
        (BaseHead::Residual, 2, true, false, false),
        (BaseHead::Residual, 2, true, true, false),
        (BaseHead::Residual, 2, true, true, true),
    ] {
        let cfg = BaseConfig {
            block: BaseBlock::Res,
            head,
            internal_scale: s,
            view: BaseView::Unshuffled,
            phase_window: 4,
            smooth_upsampling: true,
            smooth_cells: true,
            phase_noise_gate,
            phase_noise_bilinear_reference,
            phase_noise_shrinkage,
            ..Default::default()
        };
        let out = cfg.head_channels() * s * s;
        let mut given = ptgrm_model::params::ParamMap::new();
        let weight = random(out * cfg.width, 160, -0.5, 0.5);
        given.insert("base.ending.weight".into(), ptgrm_model::params::ParamValue { shape: vec![out, cfg.width, 1, 1], data: weight });
        given.insert("base.ending.bias".into(), ptgrm_model::params::ParamValue { shape: vec![out], data: random(out, 161, -0.5, 0.5) });
        if phase_noise_gate {
            // The gate starts at zero (no effect); random weights make it matter.
            let gate = random(3 * cfg.width, 163, -2.0, 2.0).iter().map(|v| v * if phase_noise_shrinkage { 0.01 } else { 1.0 }).collect();
            given.insert("base.phase_gate.weight".into(), ptgrm_model::params::ParamValue { shape: vec![3, cfg.width, 1, 1], data: gate });
            // Shrinkage: t = 16 (W h + b) against deviation energies of about 1e-3.
            let scale = if phase_noise_shrinkage { 0.01 } else { 1.0 };
            let bias = random(3, 164, -1.0, 1.0).iter().map(|v| v * scale).collect();
            given.insert("base.phase_gate.bias".into(), ptgrm_model::params::ParamValue { shape: vec![3], data: bias });
        }
        let (n, h, w) = (2, 64, 96);
        let x = Tensor::new(&[n, 3, h, w], image(n, h, w, 162));
        let ops = || RefOps { seed: 6, given: given.clone() };
        let folded = unshuffled_cells(&mut ops(), &cfg, &x);
        let defined = unshuffled_cells_by_definition(&mut ops(), &cfg, &x);
        let d = max_abs_diff(&folded.data, &defined.data);
        assert!(
            d <= 1e-5,
            "{head:?} at 1/{s} (phase_noise_gate {phase_noise_gate}, reference {phase_noise_bilinear_reference}): folded - defined {d} (shrinkage {phase_noise_shrinkage})"
        );
        let spread = defined.data.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(spread > 0.1, "{head:?}: the cells must not be trivial ({spread})");

        let mut params = base_graph(&cfg, ParamSource::Seeded(6)).unwrap().params;
        params.extend(given.clone());
        let g = base_graph(&cfg, ParamSource::Given(params)).unwrap();
        let got = run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.data.clone())], &[io::BASE]).remove(0).1;
        let want = base_forward(&mut ops(), &cfg, &x);
        assert!(max_abs_diff(&got, &want.data) <= TOL, "{head:?}: exported graph");
    }
}

/// The live graphs' F at 1/2 (pattern-free cells, zero ending: F's own correction is 0, so
/// what the output shows is the gate's cancellation) with the phase-noise options given.
fn gated_live_f(phase_noise_gate: bool, phase_noise_bilinear_reference: bool) -> BaseConfig {
    BaseConfig {
        block: BaseBlock::Res,
        internal_scale: 2,
        view: BaseView::Unshuffled,
        phase_window: 4,
        decoder_upsampling: DecoderUpsampling::Bilinear,
        smooth_cells: true,
        zero_init_ending: true,
        phase_noise_gate,
        phase_noise_bilinear_reference,
        ..Default::default()
    }
}

/// Each colour's largest 2 x 2 sub-position mean less the four's mean, over the whole frame of
/// `img` (one image, planar RGB, `h` x `w`; bilinear upsampling with clamped edges keeps a
/// field's frame mean, so the gate's effect shows whole here).
fn sub_position_spread(img: &[f32], h: usize, w: usize) -> f64 {
    let mut worst = 0f64;
    for c in 0..3 {
        let mut sums = [0f64; 4];
        for y in 0..h {
            for x in 0..w {
                sums[(y % 2) * 2 + x % 2] += img[c * h * w + y * w + x] as f64;
            }
        }
        let means = sums.map(|v| v / (h * w / 4) as f64);
        let mean = means.iter().sum::<f64>() / 4.0;
        worst = worst.max(means.iter().map(|m| (m - mean).abs()).fold(0.0, f64::max));
    }
    worst
}

/// `phase_noise_gate` on a flat noisy frame: at its zero start F is unchanged, and with the
/// gate open (bias 10: tanh 1) the output's 2 x 2 sub-position means, which are the input's
/// noise and which `phase_window` alone passes through untouched, are gone; the mean level
/// stays.
#[test]
fn an_open_phase_noise_gate_removes_the_inputs_sub_position_means() {
    let (n, h, w) = (1, 128, 128);
    let noisy: Vec<f32> = random(3 * h * w, 170, 0.2, 0.4);
    let x = Tensor::new(&[n, 3, h, w], noisy.clone());
    let cfg = |phase_noise_gate| gated_live_f(phase_noise_gate, false);
    let sub_position_spread = |img: &[f32]| sub_position_spread(img, h, w);
    let closed = base_forward(&mut RefOps::seeded(3), &cfg(true), &x);
    let without = base_forward(&mut RefOps::seeded(3), &cfg(false), &x);
    assert!(max_abs_diff(&closed.data, &without.data) <= 1e-6, "a zero gate must leave F as it was");
    let mut given = ptgrm_model::params::ParamMap::new();
    given.insert("base.phase_gate.bias".into(), ptgrm_model::params::ParamValue { shape: vec![3], data: vec![10.0; 3] });
    let open = base_forward(&mut RefOps { seed: 3, given }, &cfg(true), &x);
    let (before, after) = (sub_position_spread(&noisy), sub_position_spread(&open.data));
    assert!(before > 5e-4, "the noise must leave sub-position means to remove ({before})");
    assert!(after < 0.1 * before, "sub-position means left: {after} of {before}");
    let mean = |v: &[f32]| v.iter().map(|&a| a as f64).sum::<f64>() / v.len() as f64;
    assert!((mean(&open.data) - mean(&noisy)).abs() < 1e-4, "the frame's level must stay");
}

/// `phase_noise_bilinear_reference`: with the gate open, a smooth ramp keeps its sub-pixel
/// slope (its sub-positions differ by what interpolating its cell means predicts), which the
/// plain gate flattens into 2 x 2 steps; flat noise still loses most of its sub-position means.
#[test]
fn the_bilinear_reference_keeps_ramps_and_still_removes_noise() {
    let (n, h, w) = (1, 128, 128);
    let cfg = |phase_noise_bilinear_reference| gated_live_f(true, phase_noise_bilinear_reference);
    let open = |reference: bool, img: &[f32]| {
        let mut given = ptgrm_model::params::ParamMap::new();
        given.insert("base.phase_gate.bias".into(), ptgrm_model::params::ParamValue { shape: vec![3], data: vec![10.0; 3] });
        base_forward(&mut RefOps { seed: 3, given }, &cfg(reference), &Tensor::new(&[n, 3, h, w], img.to_vec())).data
    };
    // 0.002 per pixel across, 0.001 down: 0.26 over the frame, every sub-position distinct.
    let ramp: Vec<f32> = (0..3 * h * w).map(|i| 0.3 + 0.002 * (i % w) as f32 + 0.001 * (i / w % h) as f32).collect();
    // Away from the frame's edge, where bilinear interpolation clamps and no longer follows the ramp.
    let centre_error = |out: &[f32]| {
        let mut worst = 0f32;
        for c in 0..3 {
            for y in 16..h - 16 {
                for x in 16..w - 16 {
                    let i = c * h * w + y * w + x;
                    worst = worst.max((out[i] - ramp[i]).abs());
                }
            }
        }
        worst
    };
    let (kept, flattened) = (centre_error(&open(true, &ramp)), centre_error(&open(false, &ramp)));
    assert!(flattened > 5e-4, "the plain open gate should flatten the ramp's sub-positions ({flattened})");
    assert!(kept < 1e-5, "the ramp must pass: {kept} (plain gate {flattened})");
    let noisy: Vec<f32> = random(3 * h * w, 171, 0.2, 0.4);
    let spread = |img: &[f32]| sub_position_spread(img, h, w);
    let (before, after) = (spread(&noisy), spread(&open(true, &noisy)));
    assert!(after < 0.5 * before, "noise's sub-position means left: {after} of {before}");
}

/// `phase_noise_shrinkage`: with t set to noise's scale, a flat noisy window's sub-position
/// means go and a strong sub-pixel pattern (a period-2 checkerboard ten times the noise's
/// deviations) stays; at the conv's start F is the checkpoint's function.
#[test]
fn shrinkage_cancels_weak_sub_position_means_and_keeps_strong_ones() {
    let (n, h, w) = (1, 128, 128);
    let cfg = BaseConfig { phase_noise_shrinkage: true, ..gated_live_f(true, false) };
    let run = |bias: f32, img: &[f32]| {
        let mut given = ptgrm_model::params::ParamMap::new();
        given.insert("base.phase_gate.bias".into(), ptgrm_model::params::ParamValue { shape: vec![3], data: vec![bias; 3] });
        base_forward(&mut RefOps { seed: 3, given }, &cfg, &Tensor::new(&[n, 3, h, w], img.to_vec())).data
    };
    let noisy: Vec<f32> = random(3 * h * w, 172, 0.25, 0.35);
    let spread = |img: &[f32]| sub_position_spread(img, h, w);
    // Start: the bias of SHRINKAGE_START leaves the output within 1 % of the input's spread.
    let start = run(2e-5, &noisy);
    assert!((spread(&start) - spread(&noisy)).abs() < 0.01 * spread(&noisy), "{} vs {}", spread(&start), spread(&noisy));
    // Uniform noise of width 0.1: window-mean deviations of about 0.007 per sub-position,
    // energy about 2e-4; t = 16 * 0.003 = 0.048 puts t² at ten times that, and the pattern's
    // energy (0.01) at four times t².
    let open = 0.003;
    let (before, after) = (spread(&noisy), spread(&run(open, &noisy)));
    assert!(after < 0.25 * before, "noise's sub-position means left: {after} of {before}");
    let patterned: Vec<f32> = noisy.iter().enumerate().map(|(i, v)| v + if (i % w + i / w % h) % 2 == 0 { 0.05 } else { -0.05 }).collect();
    let (before, after) = (spread(&patterned), spread(&run(open, &patterned)));
    assert!(after > 0.9 * before, "a strong pattern must stay: {after} of {before}");
}

/// With `mean_free_correction` the refined frame keeps F's mean colour: per image and channel
/// the correction Ī − Î averages to zero, in the exported graph as in the reference, and the
/// switch changes nothing else (the plain graph's output minus its correction mean).
#[test]
fn mean_free_correction_keeps_the_frame_mean_of_f() {
    let plain = RefinerConfig { mask_logit_offset: 2.0, ..small_refiner() };
    let free = RefinerConfig { mean_free_correction: true, ..plain.clone() };
    let (n, h, w) = (2, 24, 32);
    let (restored, degraded) = (image(n, h, w, 130), image(n, h, w, 131));
    let p = random(n * 8, 132, -1.0, 1.0);
    let refine = |cfg: &RefinerConfig| {
        let g = refiner_graph(cfg, ParamSource::Seeded(9)).unwrap();
        let inputs = [
            named(io::RESTORED, &[n, 3, h, w], restored.clone()),
            named(io::DEGRADED, &[n, 3, h, w], degraded.clone()),
            named(io::PRIOR, &[n, 8], p.clone()),
        ];
        run(&g.bytes, &inputs, &[io::REFINED]).remove(0).1
    };
    let (got_plain, got_free) = (refine(&plain), refine(&free));
    let plane = h * w;
    // Mean of refined - restored over plane k (one image, one channel).
    let shift = |out: &[f32], k: usize| {
        let (o, r) = (&out[k * plane..(k + 1) * plane], &restored[k * plane..(k + 1) * plane]);
        o.iter().zip(r).map(|(o, r)| (o - r) as f64).sum::<f64>() / plane as f64
    };
    let mut want = got_plain.clone();
    for k in 0..n * 3 {
        let m = shift(&got_plain, k);
        assert!(m.abs() > 1e-3, "the random plain refiner should shift plane {k}'s mean");
        want[k * plane..(k + 1) * plane].iter_mut().for_each(|v| *v -= m as f32);
    }
    assert!(max_abs_diff(&got_free, &want) <= 1e-5);
    for k in 0..n * 3 {
        let m = shift(&got_free, k);
        assert!(m.abs() < 1e-5, "plane {k}: correction mean {m}");
    }
    let reference = refiner_forward(
        &mut RefOps::seeded(9),
        &free,
        &Tensor::new(&[n, 3, h, w], restored.clone()),
        &Tensor::new(&[n, 3, h, w], degraded.clone()),
        &Tensor::new(&[n, 8], p.clone()),
    );
    assert!(max_abs_diff(&reference.data, &got_free) <= TOL);
    let err = RefinerConfig { fused_upsampling: true, ..free }.validate().unwrap_err();
    assert!(err.contains("mean_free_correction"), "{err}");
}

#[test]
fn zero_init_ending_starts_f_as_the_identity_and_exports_alike() {
    // The live denoiser's F (unshuffled at 1/2, residual head, pattern-free): freshly
    // initialised with zero_init_ending it returns its input exactly, in the reference and in
    // the exported graph; without it, it does not (the random start it replaces).
    let cfg = BaseConfig {
        block: BaseBlock::Res,
        internal_scale: 2,
        view: BaseView::Unshuffled,
        phase_window: 4,
        smooth_upsampling: true,
        smooth_cells: true,
        zero_init_ending: true,
        ..Default::default()
    };
    check_base(&cfg);
    let (n, h, w) = (1, 48, 64);
    let x = image(n, h, w, 150);
    let fresh = |cfg: &BaseConfig| base_forward(&mut RefOps::seeded(3), cfg, &Tensor::new(&[n, 3, h, w], x.clone())).data;
    assert!(max_abs_diff(&fresh(&cfg), &x) <= 1e-6);
    let g = base_graph(&cfg, ParamSource::Seeded(3)).unwrap();
    let got = run(&g.bytes, &[named(io::IMAGE, &[n, 3, h, w], x.clone())], &[io::BASE]);
    assert!(max_abs_diff(&got[0].1, &x) <= 1e-6);
    let random_start = BaseConfig { zero_init_ending: false, ..cfg };
    assert!(max_abs_diff(&fresh(&random_start), &x) > 1e-2);
}

/// Graph outputs that other nodes also read come straight from the node that computes them (no
/// Identity copy), and a graph input declared as an output still gets one; the values are right
/// either way.
#[test]
fn outputs_are_named_without_copies_where_a_node_computes_them() {
    use prost::Message;
    use ptgrm_model::onnx_builder::OnnxBuilder;
    use ptgrm_model::onnx_proto::DimSpec::Fixed;
    let mut b = OnnxBuilder::seeded(1);
    let dims = [Fixed(1), Fixed(2), Fixed(2), Fixed(2)];
    let x = b.input("x", &dims);
    let y = b.relu(&x);
    let z = b.add(&y, &y);
    b.output(&y, "positive", &dims);
    b.output(&z, "doubled", &dims);
    b.output(&x, "echo", &dims);
    let model = b.finish("outputs").unwrap();
    let graph = model.graph.as_ref().unwrap();
    let identities: Vec<_> = graph.node.iter().filter(|n| n.op_type.as_deref() == Some("Identity")).collect();
    assert_eq!(identities.len(), 1, "only the input needs a copy");
    assert_eq!(identities[0].input, vec!["x".to_string()]);
    let data = vec![-1.0, 2.0, -3.0, 4.0, 0.5, -0.5, 6.0, -7.0];
    let got = run(&model.encode_to_vec(), &[named("x", &[1, 2, 2, 2], data.clone())], &["positive", "doubled", "echo"]);
    let relu: Vec<f32> = data.iter().map(|v| v.max(0.0)).collect();
    assert_eq!(got[0].1, relu);
    assert_eq!(got[1].1, relu.iter().map(|v| 2.0 * v).collect::<Vec<_>>());
    assert_eq!(got[2].1, data);
}

/// A small unshuffled res-block F with a zero-initialised ending, as the live designs have.
fn live_like_base() -> BaseConfig {
    BaseConfig {
        block: BaseBlock::Res,
        width: 8,
        internal_scale: 2,
        view: BaseView::Unshuffled,
        decoder_upsampling: DecoderUpsampling::Bilinear,
        zero_init_ending: true,
        ..Default::default()
    }
}

/// Overwrites a parameter with a fixed non-zero pattern: "trained" weights for these tests.
fn set_pattern(params: &mut ptgrm_model::params::ParamMap, key: &str, scale: f32, period: usize) {
    let half = (period / 2) as f32;
    for (i, x) in params.get_mut(key).unwrap().data.iter_mut().enumerate() {
        *x = scale * ((i % period) as f32 - half);
    }
}

/// F's output on a fixed 32 x 48 image, through the exported base graph.
fn base_output(cfg: &BaseConfig, params: &ptgrm_model::params::ParamMap, x: &[f32]) -> Vec<f32> {
    let g = base_graph(cfg, ParamSource::Given(params.clone())).unwrap();
    run(&g.bytes, &[named(io::IMAGE, &[1, 3, 32, 48], x.to_vec())], &[io::BASE]).remove(0).1
}

/// F's parameters under `cfg` with a trained ending (it starts at zero, which would make F the
/// identity whatever else it holds).
fn base_params_with_trained_ending(cfg: &BaseConfig, seed: u64) -> ptgrm_model::params::ParamMap {
    let mut params = init_params(&ModelConfig { base: Some(cfg.clone()), refiner: small_refiner() }, seed).unwrap();
    params.retain(|k, _| k.starts_with("base."));
    set_pattern(&mut params, "base.ending.weight", 0.05, 5);
    set_pattern(&mut params, "base.ending.bias", 0.05, 5);
    params
}

/// A fine-tune that adds `global_context` to a trained F (train.init_fresh = ["base.context"])
/// starts from that F's exact function, and once the context's last linear has trained weights
/// the exported graph's output changes.
#[test]
fn global_context_starts_as_the_plain_f_and_then_changes_it() {
    let plain = live_like_base();
    let with = BaseConfig { global_context: true, ..plain.clone() };
    let mut params = base_params_with_trained_ending(&with, 5);
    let context_keys: Vec<String> = params.keys().filter(|k| k.starts_with("base.context.")).cloned().collect();
    assert_eq!(context_keys.len(), 4, "{context_keys:?}");
    let mut trained_f = params.clone();
    trained_f.retain(|k, _| !k.starts_with("base.context."));
    let x = image(1, 32, 48, 170);
    let before = base_output(&plain, &trained_f, &x);
    assert!(max_abs_diff(&before, &x) > 1e-3, "the trained ending changes the image");
    assert!(max_abs_diff(&base_output(&with, &params, &x), &before) <= 1e-6);
    set_pattern(&mut params, "base.context.1.bias", 0.5, 3);
    assert!(max_abs_diff(&base_output(&with, &params, &x), &before) > 1e-4);
}

/// A fine-tune that deepens a trained F (more blocks at its deep levels, `zero_init_blocks`,
/// train.init_fresh = the new blocks) starts from that F's exact function; once a new block's
/// second conv has trained weights the output changes.
#[test]
fn blocks_added_with_zero_init_start_as_the_trained_f() {
    let shallow = BaseConfig { enc_blocks: vec![0, 1], middle_blocks: 1, dec_blocks: vec![0, 1], ..live_like_base() };
    let deep = BaseConfig { enc_blocks: vec![0, 2], middle_blocks: 2, dec_blocks: vec![1, 1], zero_init_blocks: true, ..shallow.clone() };
    let mut params = base_params_with_trained_ending(&deep, 9);
    let added = ["base.enc1.1.", "base.middle.1.", "base.dec1.0."];
    let is_added = |k: &str| added.iter().any(|p| k.starts_with(p));
    assert_eq!(params.keys().filter(|k| is_added(k)).count(), 12);
    // The trained blocks are not the identity.
    let trained_res2: Vec<String> = params.keys().filter(|k| k.contains(".res2.") && !is_added(k)).cloned().collect();
    for k in &trained_res2 {
        set_pattern(&mut params, k, 0.03, 5);
    }
    let mut trained_f = params.clone();
    trained_f.retain(|k, _| !is_added(k));
    let x = image(1, 32, 48, 171);
    let before = base_output(&shallow, &trained_f, &x);
    assert!(max_abs_diff(&before, &x) > 1e-3, "the trained ending changes the image");
    assert!(max_abs_diff(&base_output(&deep, &params, &x), &before) <= 1e-5);
    set_pattern(&mut params, "base.middle.1.res2.weight", 0.05, 7);
    assert!(max_abs_diff(&base_output(&deep, &params, &x), &before) > 1e-4);
}

/// With `replicate_padding` (and no position embedding, which is there to tell places apart)
/// nothing in R can tell a flat frame's border from its middle, as long as its decoder gives
/// the four positions of each pixel shuffle the same value on a flat input (a pattern-free
/// decoder; a trained R is close to one on flat areas): the output is flat to the edge. With
/// zero padding the border differs.
#[test]
fn replicate_padding_leaves_no_border_on_a_flat_frame() {
    let (n, h, w) = (1, 32, 48);
    let border = |cfg: &RefinerConfig| {
        let mut params = init_params(&ModelConfig { base: None, refiner: cfg.clone() }, 11).unwrap();
        // Each shuffle's four sub-position channels made copies of the first.
        for name in ["refiner.dec.up1", "refiner.dec.up2"] {
            for part in ["weight", "bias"] {
                let p = params.get_mut(&format!("{name}.{part}")).unwrap();
                let per_channel = p.numel() / p.shape[0];
                for c in 0..p.shape[0] {
                    let first = c / 4 * 4;
                    for i in 0..per_channel {
                        p.data[c * per_channel + i] = p.data[first * per_channel + i];
                    }
                }
            }
        }
        let g = refiner_graph(cfg, ParamSource::Given(params)).unwrap();
        let inputs = [
            named(io::RESTORED, &[n, 3, h, w], vec![0.3; 3 * h * w]),
            named(io::DEGRADED, &[n, 3, h, w], vec![0.1; 3 * h * w]),
            named(io::PRIOR, &[n, cfg.prior_dim], random(cfg.prior_dim, 12, -1.0, 1.0)),
        ];
        let out = run(&g.bytes, &inputs, &[io::REFINED]).remove(0).1;
        let centre = |c: usize| out[(c * h + h / 2) * w + w / 2];
        (0..3 * h * w).map(|i| (out[i] - centre(i / (h * w))).abs()).fold(0.0f32, f32::max)
    };
    let zero = RefinerConfig { position_embedding: false, ..small_refiner() };
    let replicate = RefinerConfig { replicate_padding: true, ..zero.clone() };
    let (with_zeros, with_edges) = (border(&zero), border(&replicate));
    assert!(with_zeros > 1e-3, "zero padding left no border: {with_zeros}");
    assert!(with_edges < 1e-5, "a border of {with_edges} with the edge repeated");
    // Same parameters either way.
    let count = |refiner: &RefinerConfig| parameter_counts(&ModelConfig { base: None, refiner: refiner.clone() }).unwrap().1;
    assert_eq!(count(&zero), count(&replicate));
}

/// With `replicate_padding` F (the low-light layout: blocks at its deep levels, frame-wide
/// context, pattern-free cells) turns a flat frame into a flat frame, edge included; with zero
/// padding its edge differs from its centre (what drew models/lowlight's dark border on flat
/// night frames). Same parameters either way.
#[test]
fn base_replicate_padding_leaves_no_border_on_a_flat_frame() {
    let zero = BaseConfig {
        enc_blocks: vec![0, 1, 1],
        dec_blocks: vec![0, 1, 1],
        middle_blocks: 1,
        phase_window: 4,
        smooth_cells: true,
        global_context: true,
        ..live_like_base()
    };
    let replicate = BaseConfig { replicate_padding: true, ..zero.clone() };
    let params = base_params_with_trained_ending(&zero, 13);
    let (h, w) = (32, 48);
    let border = |cfg: &BaseConfig| {
        let out = base_output(cfg, &params, &vec![0.1; 3 * h * w]);
        let centre = |c: usize| out[(c * h + h / 2) * w + w / 2];
        (0..3 * h * w).map(|i| (out[i] - centre(i / (h * w))).abs()).fold(0.0f32, f32::max)
    };
    let (with_zeros, with_edges) = (border(&zero), border(&replicate));
    assert!(with_zeros > 1e-3, "zero padding left no border: {with_zeros}");
    assert!(with_edges < 1e-5, "a border of {with_edges} with the edge repeated");
    assert_eq!(base_params_with_trained_ending(&replicate, 13).len(), params.len());
}
