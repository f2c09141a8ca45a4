//! The built-in base restorer F: a compact NAFNet-style U-Net sized for live video on CPU,
//! written once against [`Ops`] (parameter prefix `base.`).
//!
//! `base = image + U(image)`: intro conv, `levels` encoder stages (blocks, then a 2x2
//! stride-2 conv doubling the width), middle blocks, decoder stages (1x1 conv + PixelShuffle 2
//! halving the width, skip added, blocks), end conv to a 3-channel residual. Blocks are NAFNet
//! blocks or plain residual blocks ([`BaseBlock`]).
//! With `internal_scale` s > 1 the U-Net runs at 1/s resolution, which cuts the cost by about
//! s², on one of two views of the image ([`BaseView`]): average-pooled by s, its correction
//! bilinearly upsampled (smooth: it cannot remove noise at full resolution), or unshuffled
//! (space-to-depth: a stride-s s x s conv sees every pixel of its patch), its correction
//! pixel-shuffled back, so every full-resolution pixel gets its own value.

use crate::layers::{conv, layer_norm, linear, padded, zero_conv, zero_linear};
use crate::ops::{Conv2d, Init, Ops};
use serde::{Deserialize, Serialize};

/// The building block of every stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseBlock {
    /// NAFNet block (LayerNorm, SimpleGate, simplified channel attention): best quality per
    /// parameter.
    Naf,
    /// conv3x3 -> LeakyReLU(0.1) -> conv3x3, plus the input: only ops that ONNX Runtime's CPU
    /// conv kernels fuse and keep in their blocked layout, so the fastest per pixel.
    Res,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaseConfig {
    pub block: BaseBlock,
    /// Width of the first stage; stage i has width * 2^i.
    pub width: usize,
    /// NAF blocks per encoder stage (its length is the number of levels).
    pub enc_blocks: Vec<usize>,
    pub middle_blocks: usize,
    /// NAF blocks per decoder stage, deepest first; same length as `enc_blocks`.
    pub dec_blocks: Vec<usize>,
    /// Expansion of the NAF block's first 1x1 conv (NAFNet: 2).
    pub dw_expand: usize,
    /// Expansion of the NAF block's feed-forward (NAFNet: 2).
    pub ffn_expand: usize,
    /// 1, 2, 4 or 8: run the network at 1/s resolution, apply the correction at full resolution.
    pub internal_scale: usize,
    /// How the network's output corrects the image.
    pub head: BaseHead,
    /// How the network sees the image when internal_scale > 1.
    pub view: BaseView,
    /// Unshuffled view only, 0 = off: over windows of this many low-resolution cells (2, 4 or
    /// 8, at most 2^levels), each sub-position's correction map keeps only its deviation from
    /// the mean of the s² sub-positions; see [`debias_phases`].
    pub phase_window: usize,
    /// After each decoder pixel shuffle, a fixed 3x3 binomial blur: it gives the four pixels
    /// of every 2x2 shuffle block equal total weight, so what the shuffle's four output
    /// channels hold on average cannot come out as a period-2 pattern (at 1/s: periods 2s, 4s
    /// and 8s in the image). The classic remedy for checkerboard artefacts; no parameters.
    pub smooth_upsampling: bool,
    /// How the decoder goes up a level: a 1x1 conv to 4x the channels and a pixel shuffle (the
    /// default), or a 1x1 conv to half the channels and a bilinear x2 resize. The second has no
    /// shuffle pattern to blur away and stays in ONNX Runtime's blocked layout: the shuffle,
    /// the edge padding and the blur of `smooth_upsampling` cost the live denoiser about 16 of
    /// its 150 ms at 1280x720, mostly as layout reorders (profile, 2 cores).
    pub decoder_upsampling: DecoderUpsampling,
    /// Unshuffled view only: each s x s cell's mean correction is bilinearly upsampled (smooth
    /// across cells) instead of repeated over the cell, and only the sub-positions' deviations
    /// from it go through the pixel shuffle. Without it F drew its cells as blocks on smooth
    /// gradients (v2: block-edge steps 2.4x the others); no parameters.
    pub smooth_cells: bool,
    /// The last conv starts at zero, so F starts as the identity (residual head) and its
    /// correction grows from the data. A random start drew corrections of about 0.4 (an
    /// unshuffled F at s = 2, width 16: loss 0.46 at step 1) that Adam, moving each weight at
    /// most about lr per step, took longer to unlearn than a 400-step try had: F was still the
    /// identity there (1 dB over the noisy input), while the full-resolution U-Net denoised.
    pub zero_init_ending: bool,
    /// After the middle blocks, each feature gets an offset computed from the means of all
    /// features over the frame (mean over H, W -> linear -> LeakyReLU -> linear, broadcast
    /// back): F's only view beyond its receptive field. Why: at 1/2 resolution the live
    /// denoiser's U-Net sees about 100 pixels, too little to tell a dark object from a dark
    /// exposure, and as a low-light F it restored structure better than v2 but brightness
    /// worse (docs/training-log.md, "Live low-light v3"). With `zero_init_ending` the last linear
    /// starts at zero, so a fine-tune that adds it starts as its checkpoint's function.
    pub global_context: bool,
    /// Res blocks start as the identity: their second conv's weight and bias start at zero
    /// (NAF blocks always do, through beta and gamma). Why: blocks added to a trained F for a
    /// fine-tune (train.init_fresh) then start at that F's exact function, as a new
    /// `global_context` does; with the default init each new block would first scramble the
    /// features the trained layers after it rely on.
    pub zero_init_blocks: bool,
    /// Pad F's k x k convolutions (intro, blocks, a 3x3 ending) by repeating the edge instead
    /// of with zeros. Why: with zero padding the frame's edge looks like black beyond it, and
    /// the low-light F, which brightens 10x and more, turned that into a dark border on flat
    /// night frames (its 16-pixel edge strips 5-7 levels of 255 below the centre, 15-20 after
    /// R's brightening). With edge padding a flat frame stays flat to its edge (F alone within
    /// 1.4 levels, models/lowlight since 2026-12-05 within 4: docs/training-log.md, "Edge padding
    /// in F"). Same parameters; changes the function near the edge, so a trained F needs a
    /// fine-tune to use it.
    pub replicate_padding: bool,
    /// With `phase_window`, residual head: F may cancel the image's own sub-position deviations
    /// over each window, by a gate in (-1, 1) per colour it predicts per window from its features:
    /// `cells -= U(gate * (I - P) A(unshuffle(image)))` (A, U: the window average and its
    /// bilinear upsampling of [`debias_phases`]; I - P: each sub-position less its cell's
    /// mean). Why: `phase_window` keeps F's correction from holding any per-sub-position mean
    /// over a window, so whatever the input holds there passes through untouched. On flat
    /// night frames that is the raw noise's: the deeper low-light F's 2 x 2 sub-position means
    /// were the input's to a slope of 0.99 (correlation 1.00, 16 captures), while its
    /// denoising cut everything else, so the one-frame grid score read 2.1 at P = 4 for a
    /// structure of 0.03 levels. The gate multiplies what the input holds, so on a flat frame
    /// it can only remove a pattern, never draw one; at an edge, where the input's
    /// sub-position means differ by design, it can learn to stay 0. Its 1x1 conv starts at
    /// zero (gate 0: the function without it), so a trained F can be fine-tuned to use it.
    pub phase_noise_gate: bool,
    /// With `phase_noise_gate`: what the gate cancels is the input's sub-position deviation
    /// less what bilinear interpolation of its own cell means gives there, so a smooth ramp,
    /// whose sub-positions differ by its slope, has nothing to cancel and an open gate leaves
    /// it intact; on flat noise the interpolation is about flat and the noise goes as before.
    /// Why: the live denoiser's gate, trained with the grid term, opened on structure too and
    /// cost 0.56 dB at sigma 50 (blockiness 1.03 -> 1.08: 2x2 cells flattened). No parameters.
    pub phase_noise_bilinear_reference: bool,
    /// With `phase_noise_gate`: the gate is `t⁴ / (t⁴ + E²)` instead of `tanh(z)`, E the
    /// window's sub-position deviation energy per colour and t a noise scale F predicts from
    /// its features: wavelet-style shrinkage, so that weak deviations (noise) are cancelled and
    /// strong ones (texture) kept within each window, which the gate alone cannot tell apart
    /// from features pooled over 8 x 8 pixels. Why: the live denoiser's tanh gate, pushed open
    /// by the grid term, took texture with the noise (0.56 dB at sigma 50, 1.05 with the
    /// bilinear reference). The conv starts near zero (see `SHRINKAGE_START`).
    pub phase_noise_shrinkage: bool,
}

/// How F's decoder doubles its resolution (see [`BaseConfig::decoder_upsampling`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecoderUpsampling {
    #[default]
    Shuffle,
    Bilinear,
}

/// The image as F's network sees it at internal scale s > 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseView {
    /// Average-pooled by s; the correction maps are bilinearly upsampled by s.
    #[default]
    Pooled,
    /// Space-to-depth: a learned s x s stride-s embedding (pixel-unshuffle and a 1x1 conv in
    /// one), and the correction maps come back through a pixel shuffle, one value per pixel.
    /// Costs one more full-resolution read and write, and lets F denoise at full resolution.
    Unshuffled,
}

/// F's correction of the image I from the network output (upsampled when internal_scale > 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseHead {
    /// I + r: right for noise and blur at full resolution.
    #[default]
    Residual,
    /// I * (1 + a) + b with per-pixel, per-channel a and b: a low-resolution network can still
    /// amplify full-resolution detail (low light needs gains of 10x and more), which an
    /// upsampled additive residual cannot.
    Affine,
}

impl Default for BaseConfig {
    fn default() -> Self {
        BaseConfig {
            block: BaseBlock::Naf,
            width: 16,
            enc_blocks: vec![1, 1, 1],
            middle_blocks: 1,
            dec_blocks: vec![1, 1, 1],
            dw_expand: 2,
            ffn_expand: 2,
            internal_scale: 1,
            head: BaseHead::Residual,
            view: BaseView::Pooled,
            phase_window: 0,
            smooth_upsampling: false,
            decoder_upsampling: DecoderUpsampling::Shuffle,
            smooth_cells: false,
            zero_init_ending: false,
            global_context: false,
            zero_init_blocks: false,
            replicate_padding: false,
            phase_noise_gate: false,
            phase_noise_bilinear_reference: false,
            phase_noise_shrinkage: false,
        }
    }
}

impl BaseConfig {
    pub fn levels(&self) -> usize {
        self.enc_blocks.len()
    }

    /// Channels of the correction maps: a residual (3) or gain and offset (6).
    pub fn head_channels(&self) -> usize {
        match self.head {
            BaseHead::Residual => 3,
            BaseHead::Affine => 6,
        }
    }

    /// H and W given to F must be multiples of this.
    pub fn pad_multiple(&self) -> usize {
        (1 << self.levels()) * self.internal_scale
    }

    /// True when F sees the space-to-depth view (and so corrects every pixel).
    pub fn is_unshuffled(&self) -> bool {
        self.view == BaseView::Unshuffled && self.internal_scale > 1
    }

    pub fn validate(&self) -> Result<(), String> {
        let bad = |m: String| Err(format!("base config: {m}"));
        if self.width == 0 || self.dw_expand == 0 || self.ffn_expand == 0 {
            return bad("width, dw_expand and ffn_expand must be positive".into());
        }
        if (self.width * self.dw_expand) % 2 != 0 || (self.width * self.ffn_expand) % 2 != 0 {
            return bad("width * dw_expand and width * ffn_expand must be even (SimpleGate halves them)".into());
        }
        if self.enc_blocks.len() != self.dec_blocks.len() {
            return bad(format!("enc_blocks has {} levels but dec_blocks {}", self.enc_blocks.len(), self.dec_blocks.len()));
        }
        if self.levels() > 5 {
            return bad(format!("{} levels is more than the 5 supported", self.levels()));
        }
        if ![1, 2, 4, 8].contains(&self.internal_scale) {
            return bad(format!("internal_scale {} must be 1, 2, 4 or 8", self.internal_scale));
        }
        if self.smooth_upsampling && self.decoder_upsampling == DecoderUpsampling::Bilinear {
            return bad(
                "smooth_upsampling blurs pixel-shuffle patterns; decoder_upsampling = \"bilinear\" has none (set one of them)".into()
            );
        }
        if self.smooth_cells && !self.is_unshuffled() {
            return bad("smooth_cells applies only to the unshuffled view (view = \"unshuffled\", internal_scale > 1)".into());
        }
        if self.phase_noise_gate && (self.phase_window == 0 || self.head != BaseHead::Residual) {
            return bad("phase_noise_gate cancels what phase_window leaves of the image's own sub-position means: it needs phase_window > 0 and head = \"residual\"".into());
        }
        if (self.phase_noise_bilinear_reference || self.phase_noise_shrinkage) && !self.phase_noise_gate {
            return bad("phase_noise_bilinear_reference and phase_noise_shrinkage change what phase_noise_gate does: they need phase_noise_gate = true".into());
        }
        if self.phase_window != 0 {
            if !self.is_unshuffled() {
                return bad("phase_window applies only to the unshuffled view (view = \"unshuffled\", internal_scale > 1)".into());
            }
            if ![2, 4, 8].contains(&self.phase_window) || self.phase_window > 1 << self.levels() {
                return bad(format!("phase_window {} must be 2, 4 or 8 and at most 2^levels = {}", self.phase_window, 1 << self.levels()));
            }
        }
        Ok(())
    }
}

/// F: `image` `[N, 3, H, W]` (H, W multiples of `pad_multiple`) -> restored `[N, 3, H, W]`.
pub fn base_forward<O: Ops>(o: &mut O, cfg: &BaseConfig, image: &O::T) -> O::T {
    if cfg.is_unshuffled() {
        let cells = unshuffled_cells(o, cfg, image);
        return apply_unshuffled_cells(o, cfg, image, &cells).0;
    }
    let s = cfg.internal_scale;
    let x = if s > 1 { o.avg_pool(image, s) } else { image.clone() };
    let y = base_head(o, cfg, &x);
    let y = o.upsample_bilinear(&y, cfg.head_channels(), s);
    apply_base_head(o, cfg, image, &y)
}

/// The network's correction (`head_channels` maps) for `x`, at `x`'s resolution (pooled view).
pub fn base_head<O: Ops>(o: &mut O, cfg: &BaseConfig, x: &O::T) -> O::T {
    let h = conv_k(o, cfg, "base.intro", x, 3, cfg.width, 3, 1, false);
    let h = unet_body(o, cfg, h);
    unet_ending(o, cfg, &h, cfg.head_channels(), 3, 1)
}

/// The network's correction maps for the unshuffled view, still as cells: the image embedded
/// by a stride-s s x s conv, the U-Net at 1/s, `head_channels * s²` maps (map-major, then
/// sub-position: pixel-shuffle order) at 1/s. The last conv is 1x1: with s² times the maps a
/// 3x3 one cost more than the whole U-Net (measured at s = 8, width 32: 12.6 fps at 1280x720;
/// the context comes from the blocks before it).
pub fn unshuffled_cells<O: Ops>(o: &mut O, cfg: &BaseConfig, image: &O::T) -> O::T {
    let h = unshuffled_features(o, cfg, image);
    if cfg.phase_window > 1 && cfg.smooth_cells {
        return pattern_free_cells(o, cfg, &h, image);
    }
    cells_by_definition(o, cfg, &h, image)
}

/// [`unshuffled_cells`] as its options define it, one step after the other: the ending conv,
/// then [`debias_phases`], then [`smooth_cell_phases`]. The graphs use the folded form when both
/// remedies are on; this is what that form is tested against.
pub fn unshuffled_cells_by_definition<O: Ops>(o: &mut O, cfg: &BaseConfig, image: &O::T) -> O::T {
    let h = unshuffled_features(o, cfg, image);
    cells_by_definition(o, cfg, &h, image)
}

/// The image embedded by a stride-s s x s conv and run through the U-Net body, at 1/s.
fn unshuffled_features<O: Ops>(o: &mut O, cfg: &BaseConfig, image: &O::T) -> O::T {
    let s = cfg.internal_scale;
    let h = conv(o, "base.embed", image, 3, cfg.width, s, Conv2d { stride: s, padding: 0, groups: 1 }, true);
    unet_body(o, cfg, h)
}

fn cells_by_definition<O: Ops>(o: &mut O, cfg: &BaseConfig, h: &O::T, image: &O::T) -> O::T {
    let s = cfg.internal_scale;
    let (maps, phases) = (cfg.head_channels(), s * s);
    let y = unet_ending(o, cfg, h, maps * phases, 1, phases);
    let y = if cfg.phase_window > 1 { debias_phases(o, &y, maps, phases, cfg.phase_window) } else { y };
    let y = if cfg.phase_noise_gate {
        let pooled = o.avg_pool(h, cfg.phase_window);
        let cancel = phase_noise_cancellation(o, cfg, &pooled, image);
        let cancel = o.upsample_bilinear(&cancel, maps * phases, cfg.phase_window);
        o.add(&y, &cancel)
    } else {
        y
    };
    if cfg.smooth_cells { smooth_cell_phases(o, &y, maps, s) } else { y }
}

/// `smooth_cell_phases(debias_phases(ending(h)))` computed with its linear parts folded into
/// the 1x1 ending conv (W, b), the same function to float rounding. With P the projection onto
/// each map's sub-position mean, M that mean, A the window average and U its bilinear
/// upsampling (both keep constants and commute with channel maps):
///   cells = (I − P)·W·(h − U(A(h))) + B(M·W·h + M·b),  B = [`Ops::bilinear_phases`],
/// so the window mean is taken of F's `width` features instead of its `maps·s²` output
/// channels and the sub-position means never exist at full channel count. At 1280x720 the
/// unfolded form's four passes over the 96 channels at 1/4 took about 28 of the live low-light
/// model's 168 ms (ONNX Runtime profile, 2 cores). (I − P)·W and M·W are products of the
/// parameters with constants, which ONNX Runtime folds once when the session is created.
fn pattern_free_cells<O: Ops>(o: &mut O, cfg: &BaseConfig, h: &O::T, image: &O::T) -> O::T {
    let (s, c, window) = (cfg.internal_scale, cfg.width, cfg.phase_window);
    let (maps, phases) = (cfg.head_channels(), s * s);
    let out = maps * phases;
    let (w, b) = unet_ending_params(o, cfg, out, 1, phases);
    // Constant channel maps: M averages each map's sub-positions, I − P removes that average.
    let mut mean = vec![0.0f32; maps * out];
    let mut remove_mean = vec![0.0f32; out * out];
    for m in 0..maps {
        for p in 0..phases {
            mean[m * out + m * phases + p] = 1.0 / phases as f32;
            for q in 0..phases {
                let (i, j) = (m * phases + p, m * phases + q);
                remove_mean[i * out + j] = if p == q { 1.0 } else { 0.0 } - 1.0 / phases as f32;
            }
        }
    }
    let mean = o.constant(&[1, 1, maps, out], &mean);
    let remove_mean = o.constant(&[1, 1, out, out], &remove_mean);
    let w_rows = o.reshape(&w, &[1, 1, out, c]);
    let w_dev = o.matmul(&remove_mean, &w_rows);
    let w_dev = o.reshape(&w_dev, &[out, c, 1, 1]);
    let w_mean = o.matmul(&mean, &w_rows);
    let w_mean = o.reshape(&w_mean, &[maps, c, 1, 1]);
    let b_col = o.reshape(&b, &[1, 1, out, 1]);
    let b_mean = o.matmul(&mean, &b_col);
    let b_mean = o.reshape(&b_mean, &[maps]);

    let deviation = if out <= c {
        // (I − P)·W·h + U(−(I − P)·W·A(h)): the window mean is mapped at 1/(s·window) and the
        // full-resolution pass is an add, which ONNX Runtime keeps in its blocked layout; the
        // subtraction below is not blocked, and reordering for it cost the live denoiser
        // (12 maps from 16 features) 9 % of its time at 1280x720. Where the maps outnumber the
        // features (low light: 96 from 16) the upsampling and add on the maps cost as much.
        let w_dev_neg = o.mul_scalar(&w_dev, -1.0);
        let pooled = o.avg_pool(h, window);
        let local = o.conv2d(&pooled, &w_dev_neg, None, Conv2d::same(1));
        let local = if cfg.phase_noise_gate {
            let cancel = phase_noise_cancellation(o, cfg, &pooled, image);
            o.add(&local, &cancel)
        } else {
            local
        };
        let local = o.upsample_bilinear(&local, out, window);
        let deviation = o.conv2d(h, &w_dev, None, Conv2d::same(1));
        o.add(&deviation, &local)
    } else {
        let pooled = o.avg_pool(h, window);
        let local = o.upsample_bilinear(&pooled, c, window);
        let detail = o.sub(h, &local);
        let deviation = o.conv2d(&detail, &w_dev, None, Conv2d::same(1));
        if cfg.phase_noise_gate {
            let cancel = phase_noise_cancellation(o, cfg, &pooled, image);
            let cancel = o.upsample_bilinear(&cancel, out, window);
            o.add(&deviation, &cancel)
        } else {
            deviation
        }
    };
    let cell_mean = o.conv2d(h, &w_mean, Some(&b_mean), Conv2d::same(1));
    let smooth = o.bilinear_phases(&cell_mean, maps, s);
    o.add(&deviation, &smooth)
}

/// Scale of the gate's pre-activation. Why: Adam moves each weight by about lr per step, and a
/// fine-tune at lr 1e-4 over 2,000 steps could move the gate's bias by 0.2 at most, while an
/// open gate needs tanh(z) near 1 (z about 2).
const PHASE_GATE_GAIN: f32 = 16.0;

/// `-gate * (I - P) A(unshuffle(image))` at 1/(s * window), in the cells' channel order
/// (see [`BaseConfig::phase_noise_gate`]); `pooled` is F's features averaged over windows.
/// The image side is one constant stride-(s * window) convolution: each output channel
/// averages one sub-position of one colour over the window, less the mean of its cell's s²
/// sub-positions, so no unshuffled copy of the frame is made.
fn phase_noise_cancellation<O: Ops>(o: &mut O, cfg: &BaseConfig, pooled: &O::T, image: &O::T) -> O::T {
    let (s, window) = (cfg.internal_scale, cfg.phase_window);
    let (phases, k) = (s * s, s * window);
    let out = 3 * phases;
    let mut kernel = vec![0.0f32; out * 3 * k * k];
    for colour in 0..3 {
        for phase in 0..phases {
            let row = colour * phases + phase;
            for dy in 0..k {
                for dx in 0..k {
                    let own = (dy % s) * s + dx % s == phase;
                    let weight = (if own { 1.0 } else { 0.0 } - 1.0 / phases as f32) / (window * window) as f32;
                    kernel[((row * 3 + colour) * k + dy) * k + dx] = weight;
                }
            }
        }
    }
    let kernel = o.constant(&[out, 3, k, k], &kernel);
    let deviations = o.conv2d(image, &kernel, None, Conv2d { stride: k, padding: 0, groups: 1 });
    let deviations = if cfg.phase_noise_bilinear_reference {
        // The same window average of the cell means bilinearly interpolated to each
        // sub-position: all at 1/s and below.
        let cells = o.avg_pool(image, s);
        let interpolated = o.bilinear_phases(&cells, 3, s);
        let interpolated = o.avg_pool(&interpolated, window);
        let (_, cell_mean) = group_mean(o, &interpolated, 3, phases);
        let expected = o.sub(&interpolated, &cell_mean);
        o.sub(&deviations, &expected)
    } else {
        deviations
    };
    // One gate per colour, shared by its s² sub-positions: their deviations keep summing to
    // zero, so the cancellation never moves a cell's mean (nor what smooth_cells makes of it).
    // The gate's sign is negative: it is the cancellation's factor.
    let gate = if cfg.phase_noise_shrinkage { shrinkage_gate(o, cfg, pooled, &deviations, phases) } else { tanh_gate(o, cfg, pooled) };
    let gate = repeat_over_group(o, &gate, 3, phases);
    o.mul(&gate, &deviations)
}

/// `-tanh(z)`, z from F's pooled features by a 1x1 conv that starts at zero; tanh through
/// sigmoid (Ops has no tanh): 1 - 2 sigmoid(2z).
fn tanh_gate<O: Ops>(o: &mut O, cfg: &BaseConfig, pooled: &O::T) -> O::T {
    let z = zero_conv(o, "base.phase_gate", pooled, cfg.width, 3, 1, Conv2d::same(1));
    let z = o.mul_scalar(&z, 2.0 * PHASE_GATE_GAIN);
    let gate = o.sigmoid(&z);
    let gate = o.mul_scalar(&gate, -2.0);
    o.add_scalar(&gate, 1.0)
}

/// Where [`shrinkage_gate`]'s conv starts: a bias whose t² (1e-7) is far below the deviation
/// energy of noise even at sigma 5 (about 6e-5), so the gate starts near 0 (the checkpoint's
/// function to about 1e-5) but, unlike t = 0, with a gradient.
const SHRINKAGE_START: f32 = 2e-5;

/// `-t⁴ / (t⁴ + E²)`: E the window's deviation energy per colour (the sum over its s²
/// sub-positions of the squared deviations), t from F's pooled features (a noise scale it
/// learns). A window whose deviations are weak against t, as noise's are, is cancelled almost
/// wholly; a strong one, as a texture's, is kept (see [`BaseConfig::phase_noise_shrinkage`]).
/// Squared ratios, not t² / (t² + E): that soft form, with t set to cancel 94 % of noise,
/// still took a fifth of a pattern with 60 times noise's energy.
fn shrinkage_gate<O: Ops>(o: &mut O, cfg: &BaseConfig, pooled: &O::T, deviations: &O::T, phases: usize) -> O::T {
    let squares = o.mul(deviations, deviations);
    let energy = group_weighted_sum(o, &squares, 3, phases, 1.0);
    let w = o.param("base.phase_gate.weight", &[3, cfg.width, 1, 1], Init::Const(0.0));
    let b = o.param("base.phase_gate.bias", &[3], Init::Const(SHRINKAGE_START));
    let t = o.conv2d(pooled, &w, Some(&b), Conv2d::same(1));
    let t = o.mul_scalar(&t, PHASE_GATE_GAIN);
    let t2 = o.mul(&t, &t);
    let t4 = o.mul(&t2, &t2);
    let e2 = o.mul(&energy, &energy);
    let total = o.add(&t4, &e2);
    let total = o.add_scalar(&total, 1e-24);
    let gate = o.div(&t4, &total);
    o.mul_scalar(&gate, -1.0)
}

/// (restored Î, correction Î - image) from the unshuffled view's cells. Each map group is
/// shuffled on its own and the affine head's gain and offset never exist together at full
/// resolution: at 640x360 the full-resolution resize, adds, channel split and subtraction of
/// the straightforward form took about a third of the live low-light model's time (ONNX
/// Runtime profile, 2 cores); this form does four full-resolution ops besides the shuffles.
pub fn apply_unshuffled_cells<O: Ops>(o: &mut O, cfg: &BaseConfig, image: &O::T, cells: &O::T) -> (O::T, O::T) {
    let s = cfg.internal_scale;
    let per_map = 3 * s * s;
    let correction = match cfg.head {
        BaseHead::Residual => o.pixel_shuffle(cells, s),
        BaseHead::Affine => {
            let gain_cells = o.slice_channels(cells, 0, per_map);
            let offset_cells = o.slice_channels(cells, per_map, 2 * per_map);
            let gain = o.pixel_shuffle(&gain_cells, s);
            let offset = o.pixel_shuffle(&offset_cells, s);
            let scaled = o.mul(image, &gain);
            o.add(&scaled, &offset)
        }
    };
    (o.add(image, &correction), correction)
}

/// `y` (`maps` groups of s² sub-position channels at 1/s) to `maps` maps at full resolution:
/// each cell's mean bilinearly upsampled, plus the sub-positions' deviations from it pixel-
/// shuffled into place (see [`BaseConfig::smooth_cells`]).
pub fn cells_to_pixels<O: Ops>(o: &mut O, y: &O::T, maps: usize, s: usize) -> O::T {
    let cells = smooth_cell_phases(o, y, maps, s);
    o.pixel_shuffle(&cells, s)
}

/// [`cells_to_pixels`] before its pixel shuffle: each sub-position's value minus its cell's
/// mean, plus that mean bilinearly interpolated to the sub-position, all at 1/s (so the whole
/// remedy costs no full-resolution op).
pub fn smooth_cell_phases<O: Ops>(o: &mut O, y: &O::T, maps: usize, s: usize) -> O::T {
    let (cell_mean, repeated) = group_mean(o, y, maps, s * s);
    let deviation = o.sub(y, &repeated);
    let smooth = o.bilinear_phases(&cell_mean, maps, s);
    o.add(&deviation, &smooth)
}

/// The mean of each group of `phases` consecutive channels (`maps` groups), and that mean
/// repeated back over its group's channels; 1x1 grouped convs with constant weights.
fn group_mean<O: Ops>(o: &mut O, y: &O::T, maps: usize, phases: usize) -> (O::T, O::T) {
    let mean = group_weighted_sum(o, y, maps, phases, 1.0 / phases as f32);
    let repeated = repeat_over_group(o, &mean, maps, phases);
    (mean, repeated)
}

/// `weight` times the sum of each group of `phases` consecutive channels (`maps` groups).
fn group_weighted_sum<O: Ops>(o: &mut O, y: &O::T, maps: usize, phases: usize, weight: f32) -> O::T {
    let w = o.constant(&[maps, phases, 1, 1], &vec![weight; maps * phases]);
    o.conv2d(y, &w, None, Conv2d { stride: 1, padding: 0, groups: maps })
}

/// Each of `maps` channels repeated over a group of `phases` consecutive channels.
fn repeat_over_group<O: Ops>(o: &mut O, x: &O::T, maps: usize, phases: usize) -> O::T {
    let w = o.constant(&[maps * phases, 1, 1, 1], &vec![1.0; maps * phases]);
    o.conv2d(x, &w, None, Conv2d { stride: 1, padding: 0, groups: maps })
}

/// Removes what a pixel shuffle would draw as a fixed pattern: `y` holds `maps` groups of
/// `phases` channels (one per sub-position of an s x s patch, pixel-shuffle order). Over windows
/// of `window` x `window` cells (average-pooled, then bilinearly upsampled back: smooth, so no
/// new pattern) each channel's local mean is replaced by its group's mean. A bias that one
/// sub-position keeps over a flat area (trained v2 at step 20,000: grid score 36 at period 4)
/// is such a local mean; per-pixel corrections (noise) vary from cell to cell and keep all but
/// about 1/window² of their energy. Linear, no parameters, all at 1/s resolution.
pub fn debias_phases<O: Ops>(o: &mut O, y: &O::T, maps: usize, phases: usize, window: usize) -> O::T {
    let local = o.avg_pool(y, window);
    let (_, group_mean) = group_mean(o, &local, maps, phases);
    let deviation = o.sub(&local, &group_mean);
    let deviation = o.upsample_bilinear(&deviation, maps * phases, window);
    o.sub(y, &deviation)
}

/// F's output from the image and its correction maps at the image's resolution.
pub fn apply_base_head<O: Ops>(o: &mut O, cfg: &BaseConfig, image: &O::T, head: &O::T) -> O::T {
    match cfg.head {
        BaseHead::Residual => o.add(image, head),
        BaseHead::Affine => {
            let gain = o.slice_channels(head, 0, 3);
            let offset = o.slice_channels(head, 3, 6);
            let scaled = o.mul(image, &gain);
            let out = o.add(image, &scaled);
            o.add(&out, &offset)
        }
    }
}

/// The U-Net body on features `h` (`width` channels in and out, same size).
fn unet_body<O: Ops>(o: &mut O, cfg: &BaseConfig, mut h: O::T) -> O::T {
    let mut c = cfg.width;
    let mut skips = Vec::new();
    for (i, &n) in cfg.enc_blocks.iter().enumerate() {
        for j in 0..n {
            h = block(o, cfg, &format!("base.enc{i}.{j}"), &h, c);
        }
        skips.push(h.clone());
        h = conv(o, &format!("base.down{i}"), &h, c, 2 * c, 2, Conv2d { stride: 2, padding: 0, groups: 1 }, true);
        c *= 2;
    }
    for j in 0..cfg.middle_blocks {
        h = block(o, cfg, &format!("base.middle.{j}"), &h, c);
    }
    if cfg.global_context {
        h = global_context(o, cfg, &h, c);
    }
    for (i, &n) in cfg.dec_blocks.iter().enumerate() {
        let level = cfg.levels() - 1 - i;
        match cfg.decoder_upsampling {
            DecoderUpsampling::Shuffle => {
                h = conv(o, &format!("base.up{level}"), &h, c, 2 * c, 1, Conv2d::same(1), false);
                h = o.pixel_shuffle(&h, 2);
                c /= 2;
                if cfg.smooth_upsampling {
                    h = binomial_blur(o, &h, c);
                }
            }
            DecoderUpsampling::Bilinear => {
                // Channels first, at the lower resolution: the 1x1 conv and the resize commute.
                h = conv(o, &format!("base.up{level}"), &h, c, c / 2, 1, Conv2d::same(1), false);
                c /= 2;
                h = o.upsample_bilinear(&h, c, 2);
            }
        }
        h = o.add(&h, &skips[level]);
        for j in 0..n {
            h = block(o, cfg, &format!("base.dec{level}.{j}"), &h, c);
        }
    }
    h
}

/// `h + expand(W2 · LReLU(W1 · mean_hw(h) + b1) + b2)`: see [`BaseConfig::global_context`].
fn global_context<O: Ops>(o: &mut O, cfg: &BaseConfig, h: &O::T, c: usize) -> O::T {
    let means = o.mean_hw(h);
    let z = linear(o, "base.context.0", &means, c, c);
    let z = o.leaky_relu(&z, 0.1);
    let z = if cfg.zero_init_ending { zero_linear(o, "base.context.1", &z, c, c) } else { linear(o, "base.context.1", &z, c, c) };
    let offsets = o.expand_hw(&z, h);
    o.add(h, &offsets)
}

/// `out_channels` maps from the U-Net's features by the last `kernel` x `kernel` conv, whose
/// output channels are initialised alike in groups of `repeat` (ICNR before a pixel shuffle;
/// 1 = plain).
fn unet_ending<O: Ops>(o: &mut O, cfg: &BaseConfig, h: &O::T, out_channels: usize, kernel: usize, repeat: usize) -> O::T {
    let (w, b) = unet_ending_params(o, cfg, out_channels, kernel, repeat);
    let (h, conv) = padded(o, cfg.replicate_padding, h, Conv2d::same(kernel));
    o.conv2d(&h, &w, Some(&b), conv)
}

/// The ending conv's weight `[out, width, k, k]` and bias `[out]`, initialised to zero
/// (`zero_init_ending`), ICNR (`repeat` > 1) or as PyTorch does.
fn unet_ending_params<O: Ops>(o: &mut O, cfg: &BaseConfig, out: usize, k: usize, repeat: usize) -> (O::T, O::T) {
    let fan_in = cfg.width * k * k;
    let (w_init, b_init) = if cfg.zero_init_ending {
        (Init::Const(0.0), Init::Const(0.0))
    } else if repeat > 1 {
        // Started as nearest-neighbour upsampling: measured without it, an unshuffled F at step
        // 1,800 drew a period-4 grid (grid score 75) that training has to unlearn.
        let bound = |init: Init| init.bound().expect("uniform inits have a bound");
        (Init::Repeat { bound: bound(Init::kaiming_uniform(fan_in)), repeat }, Init::Repeat { bound: bound(Init::bias(fan_in)), repeat })
    } else {
        (Init::kaiming_uniform(fan_in), Init::bias(fan_in))
    };
    let w = o.param("base.ending.weight", &[out, cfg.width, k, k], w_init);
    let b = o.param("base.ending.bias", &[out], b_init);
    (w, b)
}

/// Depthwise [1 2 1]^T [1 2 1] / 16 with replicated borders. Any period-2 pattern becomes
/// constant: each 3x3 window weighs each of the four 2x2 phases by exactly 1/4.
fn binomial_blur<O: Ops>(o: &mut O, x: &O::T, c: usize) -> O::T {
    const TAPS: [f32; 9] = [1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0];
    let weight: Vec<f32> = (0..c).flat_map(|_| TAPS.iter().map(|t| t / 16.0)).collect();
    let weight = o.constant(&[c, 1, 3, 3], &weight);
    let padded = o.pad_replicate(x, 1);
    o.conv2d(&padded, &weight, None, Conv2d { stride: 1, padding: 0, groups: c })
}

/// Size-preserving k x k conv of F with bias (`groups` groups), padded as
/// [`BaseConfig::replicate_padding`] says; `zero_init` starts weight and bias at zero.
#[allow(clippy::too_many_arguments)]
fn conv_k<O: Ops>(
    o: &mut O,
    cfg: &BaseConfig,
    name: &str,
    x: &O::T,
    cin: usize,
    cout: usize,
    k: usize,
    groups: usize,
    zero_init: bool,
) -> O::T {
    let (x, shape) = padded(o, cfg.replicate_padding, x, Conv2d::same(k).with_groups(groups));
    if zero_init { zero_conv(o, name, &x, cin, cout, k, shape) } else { conv(o, name, &x, cin, cout, k, shape, true) }
}

fn block<O: Ops>(o: &mut O, cfg: &BaseConfig, name: &str, x: &O::T, c: usize) -> O::T {
    match cfg.block {
        BaseBlock::Naf => naf_block(o, cfg, name, x, c),
        BaseBlock::Res => res_block(o, cfg, name, x, c),
    }
}

fn res_block<O: Ops>(o: &mut O, cfg: &BaseConfig, name: &str, x: &O::T, c: usize) -> O::T {
    let y = conv_k(o, cfg, &format!("{name}.res1"), x, c, c, 3, 1, false);
    let y = o.leaky_relu(&y, 0.1);
    let y = conv_k(o, cfg, &format!("{name}.res2"), &y, c, c, 3, 1, cfg.zero_init_blocks);
    o.add(x, &y)
}

/// NAFNet block: LN -> 1x1 expand -> depthwise 3x3 -> SimpleGate -> simplified channel
/// attention -> 1x1, scaled by beta; LN -> 1x1 -> SimpleGate -> 1x1, scaled by gamma.
/// beta and gamma start at 0, so a fresh block is the identity.
fn naf_block<O: Ops>(o: &mut O, cfg: &BaseConfig, name: &str, x: &O::T, c: usize) -> O::T {
    let dw = c * cfg.dw_expand;
    let n = layer_norm(o, &format!("{name}.norm1"), x, c);
    let y = conv(o, &format!("{name}.conv1"), &n, c, dw, 1, Conv2d::same(1), true);
    let y = conv_k(o, cfg, &format!("{name}.conv2"), &y, dw, dw, 3, dw, false);
    let y = simple_gate(o, &y, dw);
    let pooled = o.mean_keepdim(&y, &[2, 3]);
    let att = conv(o, &format!("{name}.sca"), &pooled, dw / 2, dw / 2, 1, Conv2d::same(1), true);
    let y = o.mul(&y, &att);
    let y = conv(o, &format!("{name}.conv3"), &y, dw / 2, c, 1, Conv2d::same(1), true);
    let beta = o.param(&format!("{name}.beta"), &[1, c, 1, 1], Init::Const(0.0));
    let y = o.mul(&y, &beta);
    let x = o.add(x, &y);

    let ffn = c * cfg.ffn_expand;
    let n = layer_norm(o, &format!("{name}.norm2"), &x, c);
    let y = conv(o, &format!("{name}.conv4"), &n, c, ffn, 1, Conv2d::same(1), true);
    let y = simple_gate(o, &y, ffn);
    let y = conv(o, &format!("{name}.conv5"), &y, ffn / 2, c, 1, Conv2d::same(1), true);
    let gamma = o.param(&format!("{name}.gamma"), &[1, c, 1, 1], Init::Const(0.0));
    let y = o.mul(&y, &gamma);
    o.add(&x, &y)
}

/// NAFNet SimpleGate: first half of the channels times the second half.
fn simple_gate<O: Ops>(o: &mut O, x: &O::T, c: usize) -> O::T {
    let a = o.slice_channels(x, 0, c / 2);
    let b = o.slice_channels(x, c / 2, c);
    o.mul(&a, &b)
}
