//! Parity: both training backends (burn `flex`, and LibTorch through tch) and ONNX Runtime on
//! the exported graph (inference) give the same outputs for the same parameters, at two odd
//! sizes, for the full model, the live fused design, the refiner alone and every ablation switch.

mod common;

use common::{max_abs_diff, random, run, session};
use ptgrm_model::base::{BaseBlock, BaseConfig, BaseHead, BaseView, DecoderUpsampling};
use ptgrm_model::export::{ModelConfig, merged_graph, refiner_graph};
use ptgrm_model::onnx_builder::ParamSource;
use ptgrm_model::ptgrm::{ABLATIONS, Head, RefinerConfig};
use ptgrm_train::burn_ops::{ParamStore, tensor_from};
use ptgrm_train::imagebuf::Image;
use ptgrm_train::model::{forward, pad_reflect};

const TOL: f32 = 1e-4;

/// (N, H, W) test sizes before padding: 1x3x40x56 and 2x3x67x45.
const SIZES: [(usize, usize, usize); 2] = [(1, 40, 56), (2, 67, 45)];

/// N random images of h x w, reflect-padded to multiples of `pad` as the engine pads them
/// (graphs take multiples of the pad size); returns (data, padded h, padded w).
fn image_batch(n: usize, h: usize, w: usize, pad: usize, seed: u64) -> (Vec<f32>, usize, usize) {
    let mut out = Vec::new();
    let (mut ph, mut pw) = (h, w);
    for i in 0..n {
        let img = Image { width: w, height: h, data: random(3 * w * h, seed + i as u64, 0.0, 1.0) };
        let p = pad_reflect(&img, pad);
        (ph, pw) = (p.height, p.width);
        out.extend(p.data);
    }
    (out, ph, pw)
}

fn burn_outputs(
    cfg: &ModelConfig,
    seed: u64,
    x: &[f32],
    g: &[f32],
    n: usize,
    h: usize,
    w: usize,
    ext: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    let mut store = ParamStore::new(ptgrm_train::run::device(), seed, false);
    let dev = store.device.clone();
    let xt = tensor_from(&[n, 3, h, w], x.to_vec(), &dev);
    let gt = tensor_from(&[n, cfg.refiner.prior_dim], g.to_vec(), &dev);
    let et = ext.map(|e| tensor_from(&[n, 3, h, w], e.to_vec(), &dev));
    let (b, r) = forward(&mut store, cfg, &xt, &gt, et);
    (b.to_vec(), r.to_vec())
}

/// The same forward on the LibTorch backend (parameters from the same deterministic init).
#[cfg(feature = "tch")]
#[allow(clippy::too_many_arguments)]
fn tch_outputs(
    cfg: &ModelConfig,
    seed: u64,
    x: &[f32],
    g: &[f32],
    n: usize,
    h: usize,
    w: usize,
    ext: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
    use ptgrm_train::tch_ops::{TT, TchOps, TchStore, tensor, values};
    let mut store = TchStore::new(seed, false, tch::Device::Cpu);
    let mut ops = TchOps { store: &mut store };
    let xt = TT(tensor(&[n, 3, h, w], x));
    let gt = TT(tensor(&[n, cfg.refiner.prior_dim], g));
    let et = ext.map(|e| TT(tensor(&[n, 3, h, w], e)));
    let (b, r) = ptgrm_train::model::forward_ops(&mut ops, cfg, &xt, &gt, et);
    (values(&b.0), values(&r.0))
}

/// Asserts the tch backend's outputs equal ONNX Runtime's (no-op without the tch feature).
#[allow(unused_variables, clippy::too_many_arguments)]
fn assert_tch_matches(
    cfg: &ModelConfig,
    seed: u64,
    x: &[f32],
    g: &[f32],
    n: usize,
    h: usize,
    w: usize,
    ext: Option<&[f32]>,
    ort: (&[f32], Option<&[f32]>),
    what: &str,
) {
    #[cfg(feature = "tch")]
    {
        let (tb, tr) = tch_outputs(cfg, seed, x, g, n, h, w, ext);
        let dr = max_abs_diff(&tr, ort.0);
        let db = ort.1.map(|b| max_abs_diff(&tb, b)).unwrap_or(0.0);
        eprintln!("tch {what} {n}x3x{h}x{w}: refined max diff {dr:.2e}, base {db:.2e}");
        assert!(dr <= TOL && db <= TOL, "tch {what} {n}x3x{h}x{w}: refined {dr}, base {db}");
    }
}

fn assert_merged_parity(cfg: &ModelConfig, seed: u64) {
    let graph = merged_graph(cfg.base.as_ref().unwrap(), &cfg.refiner, ParamSource::Seeded(seed)).unwrap();
    let mut s = session(&graph.bytes);
    for (n, h0, w0) in SIZES {
        let (x, h, w) = image_batch(n, h0, w0, cfg.pad_multiple(), 100);
        let g = random(n * cfg.refiner.prior_dim, 7, -0.1, 0.1);
        let (bb, br) = burn_outputs(cfg, seed, &x, &g, n, h, w, None);
        let out = run(&mut s, &[("image", vec![n, 3, h, w], &x), ("prior", vec![n, cfg.refiner.prior_dim], &g)], &["refined", "base"]);
        let (dr, db) = (max_abs_diff(&br, &out[0]), max_abs_diff(&bb, &out[1]));
        eprintln!("{n}x3x{h}x{w}: refined max diff {dr:.2e}, base {db:.2e}");
        assert!(dr <= TOL && db <= TOL, "{n}x3x{h}x{w}: refined {dr}, base {db}");
        assert_tch_matches(cfg, seed, &x, &g, n, h, w, None, (&out[0], Some(&out[1])), "merged");
        // Outputs must depend on the input (not a constant graph).
        assert!(max_abs_diff(&br, &x) > 1e-3);
    }
}

#[test]
fn merged_model_matches_onnx_runtime_with_random_weights() {
    assert_merged_parity(&ModelConfig { base: Some(BaseConfig::default()), refiner: RefinerConfig::default() }, 11);
}

/// The live design: F and R at 1/8 resolution with one fused upsampling (affine F head with
/// Eq. 1, and the residual heads of both).
#[test]
fn fused_low_resolution_model_matches_onnx_runtime() {
    for (base_head, refiner_head) in [(BaseHead::Affine, Head::MaskResidual), (BaseHead::Residual, Head::ResidualOnly)] {
        let base = BaseConfig { block: BaseBlock::Res, head: base_head, internal_scale: 8, ..Default::default() };
        let refiner = RefinerConfig {
            internal_scale: 8,
            fused_upsampling: true,
            mask_logit_offset: 4.0,
            head: refiner_head,
            ..RefinerConfig::paper(32)
        };
        assert_merged_parity(&ModelConfig { base: Some(base), refiner }, 13);
    }
    // v2: F on the unshuffled view at 1/4 (per-pixel correction through a pixel shuffle), R at 1/8.
    let base =
        BaseConfig { block: BaseBlock::Res, head: BaseHead::Affine, internal_scale: 4, view: BaseView::Unshuffled, ..Default::default() };
    let refiner = RefinerConfig { internal_scale: 8, fused_upsampling: true, mask_logit_offset: 4.0, ..RefinerConfig::paper(32) };
    assert_merged_parity(&ModelConfig { base: Some(base.clone()), refiner: refiner.clone() }, 17);
    // v2 without shuffle patterns: debiased sub-positions and blurred decoder shuffles.
    let base = BaseConfig { phase_window: 4, smooth_upsampling: true, smooth_cells: true, ..base };
    assert_merged_parity(&ModelConfig { base: Some(base.clone()), refiner: refiner.clone() }, 19);
    // The live denoiser's form: residual cells at 1/2, fewer maps than features, so the window
    // mean is mapped at low resolution and added (base::pattern_free_cells' other branch).
    let base = BaseConfig { head: BaseHead::Residual, internal_scale: 2, zero_init_ending: false, ..base };
    assert_merged_parity(&ModelConfig { base: Some(base.clone()), refiner: refiner.clone() }, 23);
    // A decoder that goes up by a bilinear resize instead of a pixel shuffle.
    let base = BaseConfig { smooth_upsampling: false, decoder_upsampling: DecoderUpsampling::Bilinear, ..base };
    assert_merged_parity(&ModelConfig { base: Some(base.clone()), refiner: refiner.clone() }, 29);
    // Live low-light v3: the same F told the frame's feature means (one more reduction over H, W).
    let base = BaseConfig { global_context: true, ..base };
    assert_merged_parity(&ModelConfig { base: Some(base.clone()), refiner: refiner.clone() }, 31);
    // ... with F's and R's convolutions padded by the edge (a Pad before each k x k conv).
    let base = BaseConfig { replicate_padding: true, ..base };
    let refiner = RefinerConfig { replicate_padding: true, ..refiner };
    assert_merged_parity(&ModelConfig { base: Some(base), refiner }, 37);
}

#[test]
fn refiner_and_every_ablation_match_onnx_runtime() {
    let seed = 5;
    let small_dim = 32;
    // Every ablation, the full model with the frame-mean-free correction (one reduction over
    // H, W that all three backends must place alike), with the full-resolution skip, and told
    // the exposure (zero-initialised there: the graph's build, not its trained values), and
    // with its convolutions padded by the edge, and with a per-region prior.
    let mean_free = RefinerConfig { mean_free_correction: true, ..RefinerConfig::paper(small_dim) };
    let skip = RefinerConfig { full_res_skip: true, ..mean_free.clone() };
    let exposure = RefinerConfig { exposure_input: true, ..RefinerConfig::paper(small_dim) };
    let replicate = RefinerConfig { replicate_padding: true, zero_init_head: true, ..RefinerConfig::paper(small_dim) };
    let filter = RefinerConfig { restored_filter: true, ..RefinerConfig::paper(small_dim) };
    // A per-region prior: 2x2 cells of 8 values, resized onto the latent (with the exposure added per cell).
    let grid = RefinerConfig { prior_grid: 2, exposure_input: true, ..RefinerConfig::paper(small_dim) };
    let cases = ABLATIONS.iter().map(|name| (*name, RefinerConfig::paper(small_dim).ablation(name).unwrap())).chain([
        ("mean-free-correction", mean_free),
        ("full-res-skip", skip),
        ("exposure-input", exposure),
        ("replicate-padding", replicate),
        ("restored-filter", filter),
        ("per-region-prior", grid),
    ]);
    for (name, refiner) in cases {
        let cfg = ModelConfig { base: None, refiner };
        let graph = refiner_graph(&cfg.refiner, ParamSource::Seeded(seed)).unwrap();
        let mut s = session(&graph.bytes);
        for (n, h0, w0) in SIZES {
            let (x, h, w) = image_batch(n, h0, w0, cfg.pad_multiple(), 200);
            let (restored, _, _) = image_batch(n, h0, w0, cfg.pad_multiple(), 300);
            let g = random(n * small_dim, 9, -0.2, 0.2);
            let (_, br) = burn_outputs(&cfg, seed, &x, &g, n, h, w, Some(&restored));
            let out = run(
                &mut s,
                &[("restored", vec![n, 3, h, w], &restored), ("degraded", vec![n, 3, h, w], &x), ("prior", vec![n, small_dim], &g)],
                &["refined"],
            );
            let d = max_abs_diff(&br, &out[0]);
            assert!(d <= TOL, "ablation {name} at {n}x3x{h}x{w}: max diff {d}");
            assert_tch_matches(&cfg, seed, &x, &g, n, h, w, Some(&restored), (&out[0], None), name);
        }
    }
}
