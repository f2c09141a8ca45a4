//! The PTG-RM refiner R (paper sec. 3; issue 3 "The model"), written once against [`Ops`].
//!
//! `refined = R(restored Î, degraded I_d, prior g)`:
//! encoder R_e -> latent f (H/4) -> PTG-SVE (Eqs. 2-3) -> PTG-CSA (Eqs. 4-7) -> decoder R_d
//! -> mask I_m and residual I_r -> Eq. 1: Ī = I_d + (Î − I_d)·I_m + I_r.
//! Every width is configurable and each ablation of issue 5 is a switch; parameter names are
//! stable (`refiner.` prefix) so trained weights map onto the exported graph.

use crate::layers::{self, layer_norm, linear, zero_linear};
use crate::ops::{Conv2d, Init, Ops};
use serde::{Deserialize, Serialize};

/// How the refiner uses the prior vector g.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriorMode {
    /// The paper: mapped by T_m / T_c and used to guide SVE and CSA.
    Guided,
    /// Ablation "no prior": the same network with g replaced by zeros inside the graph.
    Zero,
    /// Ablation "prior by plain concatenation": g is broadcast and concatenated with the
    /// latent f (then a 1x1 conv back to nf); SVE and CSA see no prior.
    Concat,
    /// The prior input is ignored entirely: no T_m / T_c (the "larger R without prior" control).
    Ignored,
}

/// The decoder head.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Head {
    /// Eq. 1: Ī = I_d + (Î − I_d)·I_m + I_r (4 output channels: mask logit, residual).
    MaskResidual,
    /// Official code: Ī = clamp(Î, 0, 1) + I_r (3 output channels).
    ResidualOnly,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RefinerConfig {
    /// D, the prior's length (1280 MobileNetV2, 512 CLIP ViT-B/32); with `prior_grid` the
    /// whole grid's (cells² times the per-cell length).
    pub prior_dim: usize,
    /// A per-region prior: g is a `prior_grid` x `prior_grid` map of features over R's input
    /// (`[N, D/cells², cells, cells]` flattened), mapped cell by cell by T_m / T_c (the same
    /// weights as for a vector) and resized bilinearly to the latent, so SVE's mask and CSA's
    /// kernels can follow what the prior network sees where; channel attention takes the mean
    /// over the cells. 0: one vector for the frame (the paper). Why: a global 1,280-d feature
    /// of 60 training photos let R fit a correction per photo, which cost on bright frames
    /// what it gained at night (docs/training-log.md, "Prior dropout"). Measured on low-light
    /// R, a 7x7 MobileNetV2 map kept that cost and lost the gain ("A per-region prior").
    pub prior_grid: usize,
    /// Latent width nf.
    pub nf: usize,
    /// Hidden and output widths of the prior mappings T_m, T_c.
    pub prior_hidden: usize,
    pub prior_embed: usize,
    /// Width of the position embeddings S_m, S_c.
    pub pos_channels: usize,
    /// Long-range branch: Restormer blocks, heads, GDFN expansion factor.
    pub restormer_blocks: usize,
    pub heads: usize,
    pub ffn_factor: f32,
    /// Kernel size k of the per-pixel spatial-attention convolution.
    pub dyn_kernel: usize,
    /// Hidden width of the kernel predictor R_p (two 3x3 convs, the second to nf·k² maps);
    /// 0 = nf, ours (about 35k parameters at nf 16, k 3). The official code's is nf·k² = 144
    /// (about 311k): ours is a narrower R_p than the paper's code, not its configuration.
    pub kernel_hidden: usize,
    /// Hidden width of the channel-attention MLP.
    pub ca_hidden: usize,
    /// Output channels of each decoder conv before PixelShuffle(2) (4 * nf keeps the width).
    pub decoder_channels: usize,
    /// LeakyReLU negative slope used throughout.
    pub slope: f32,
    /// Run R on the inputs average-pooled by this factor (1, 2, 4 or 8) and apply the upsampled
    /// mask/residual at full resolution.
    pub internal_scale: usize,
    pub prior_mode: PriorMode,
    /// PTG-SVE: false = ablation "no SVE" (f̂ = f_s + f_l).
    pub sve: bool,
    pub channel_attention: bool,
    pub spatial_attention: bool,
    pub position_embedding: bool,
    pub head: Head,
    /// Constant added to the mask logit of Eq. 1. 0 starts training from I_m = 0.5 (halfway
    /// between input and F's output, worse than F); a positive value such as 4 starts R near
    /// Ī = Î, so R refines F's output from the first step instead of first undoing its own
    /// mask. Part of the graph, so exports of older runs (0) keep their function.
    pub mask_logit_offset: f32,
    /// With a built-in F at the same internal scale (see [`crate::joint`]): R reads F's output
    /// at that scale instead of pooling it back from full resolution, and both corrections are
    /// upsampled together once, so the full-resolution work is one resize and six
    /// multiply-adds. Merged graphs only.
    pub fused_upsampling: bool,
    /// Initialise R's last conv to zero, so training starts from Ī = Î·I_m + I_d·(1 − I_m) with
    /// I_m = sigmoid(mask_logit_offset) and I_r = 0 (near F's output with an offset of 4 or
    /// more) instead of from a random residual.
    pub zero_init_head: bool,
    /// Remove the frame-wide mean (per image and channel) of R's correction Ī − Î, so R may
    /// reshape F's output but not shift the colour of the whole frame. Why: on FFDNet at sigma
    /// 25, R learned a frame-wide "blue down" from training photos whose skies clip, which wins
    /// where the input really clips and costs ~1 dB elsewhere (docs/training-log.md, "Denoising
    /// on FFDNet at scale"). The mean is over R's input (a whole frame, or one tile of a
    /// tiled frame). Not available with `fused_upsampling` (R never sees Î at full resolution).
    pub mean_free_correction: bool,
    /// Add a conv of the encoder's first (full R-input resolution) features to the decoder's
    /// last hidden layer. Why: at nf 16 the H/4 latent carries one value per pixel, fewer than
    /// the three channels of correction R must predict, so R could only make smooth changes
    /// to F's output; on FFDNet at sigma 25 it gained where inputs clip and lost on mid-tones
    /// (docs/training-log.md, "A full-resolution path for R"). R still starts at F's output (the
    /// head is zero-initialised). Off in the paper's structure and every bundle before it.
    pub full_res_skip: bool,
    /// Add a mapping of the degraded input's exposure (per-channel frame mean, compressed by a
    /// fourth root) to T_m and T_c. Why: R's encoder instance-normalises its first features,
    /// which removes a frame-wide gain, so on night captures the prior g was R's only exposure
    /// signal and its ablation measured "exposure vs none" as much as "semantics vs none"
    /// (docs/training-log.md, "A stronger structure term and an exposure-normalised prior").
    /// Zero-initialised, so a run started from a checkpoint without it starts at that
    /// checkpoint's function. Needs the prior mappings (prior modes guided and no-prior). The
    /// mean is over R's input: a whole frame, or one tile of a tiled frame.
    pub exposure_input: bool,
    /// Pad R's convolutions by repeating the edge instead of with zeros, so that nothing but
    /// the position embedding tells R where the frame ends. Alone it did not remove the dark
    /// border low-light R drew on flat night frames (R at batch 8: the 16-pixel edge strips
    /// 10-12 levels below the centre either way); that border came from F's zero padding,
    /// which R brightened along with the frame ([`crate::base::BaseConfig::replicate_padding`];
    /// docs/training-log.md, "Edge padding in F"). With both, the strips are within 4 levels. Same
    /// parameters; changes the function, so it needs training.
    pub replicate_padding: bool,
    /// R also predicts, per pixel, a zero-sum 3x3 filter that it applies to F's output before
    /// Eq. 1: Î' = Î + Σ_d w_d (Î shifted by d − Î) over the eight neighbours d, the weights
    /// shared by the three colours. It can only smooth or sharpen Î locally, never shift a
    /// flat area. Why: on FFDNet R's residual learnt nothing about F's mid-tone errors
    /// (correlation 0.02-0.03) and only added variance there, while a per-16x16-block
    /// zero-sum filter of Î, fitted on one half of a pixel checkerboard and scored on the
    /// other, gains +0.19 dB at sigma 25. Its weights come from one more zero-initialised conv
    /// of the decoder's last features, so a run started from a checkpoint without it starts at
    /// that checkpoint's function. Full resolution only (internal_scale 1). Trained on FFDNet
    /// at sigma 25 it tied the refiner without it (+0.07 dB): R left the filter all but closed
    /// (docs/training-log.md, "A filter of F's output").
    pub restored_filter: bool,
}

impl Default for RefinerConfig {
    fn default() -> Self {
        RefinerConfig {
            prior_dim: 1280,
            prior_grid: 0,
            nf: 16,
            prior_hidden: 256,
            prior_embed: 64,
            pos_channels: 16,
            restormer_blocks: 4,
            heads: 1,
            ffn_factor: 2.66,
            dyn_kernel: 3,
            kernel_hidden: 0,
            ca_hidden: 16,
            decoder_channels: 64,
            slope: 0.1,
            internal_scale: 1,
            prior_mode: PriorMode::Guided,
            sve: true,
            channel_attention: true,
            spatial_attention: true,
            position_embedding: true,
            head: Head::MaskResidual,
            mask_logit_offset: 0.0,
            fused_upsampling: false,
            zero_init_head: false,
            mean_free_correction: false,
            exposure_input: false,
            full_res_skip: false,
            replicate_padding: false,
            restored_filter: false,
        }
    }
}

/// Ablation names accepted by [`RefinerConfig::ablation`] (issue 5 / paper Table 3).
pub const ABLATIONS: &[&str] =
    &["full", "no-prior", "no-sve", "no-ca", "no-sa", "no-pos", "prior-concat", "residual-head", "large-no-prior"];

impl RefinerConfig {
    /// The paper's structure for a prior of length `prior_dim`, with our widths (the kernel
    /// predictor is narrower than the official code's: see `kernel_hidden`).
    pub fn paper(prior_dim: usize) -> RefinerConfig {
        RefinerConfig { prior_dim, ..Default::default() }
    }

    /// This configuration with one ablation applied (names in [`ABLATIONS`]).
    pub fn ablation(&self, name: &str) -> Result<RefinerConfig, String> {
        let mut c = self.clone();
        match name {
            "full" => {}
            "no-prior" => c.prior_mode = PriorMode::Zero,
            "no-sve" => c.sve = false,
            "no-ca" => c.channel_attention = false,
            "no-sa" => c.spatial_attention = false,
            "no-pos" => c.position_embedding = false,
            "prior-concat" => c.prior_mode = PriorMode::Concat,
            "residual-head" => c.head = Head::ResidualOnly,
            // Paper: "w/o SP/CA/SA", sum fusion, attention from the features alone, 4x channels.
            "large-no-prior" => {
                c.prior_mode = PriorMode::Ignored;
                c.sve = false;
                c.position_embedding = false;
                c.nf *= 4;
                c.decoder_channels *= 4;
                c.ca_hidden *= 4;
            }
            other => return Err(format!("unknown ablation {other:?}; known: {}", ABLATIONS.join(", "))),
        }
        Ok(c)
    }

    /// H and W given to R must be multiples of this.
    pub fn pad_multiple(&self) -> usize {
        4 * self.internal_scale
    }

    pub fn validate(&self) -> Result<(), String> {
        let bad = |m: String| Err(format!("refiner config: {m}"));
        if self.prior_dim == 0 || self.nf == 0 || self.prior_hidden == 0 || self.prior_embed == 0 {
            return bad("prior_dim, nf, prior_hidden and prior_embed must be positive".into());
        }
        if self.heads == 0 || self.nf % self.heads != 0 {
            return bad(format!("nf {} must be a multiple of heads {}", self.nf, self.heads));
        }
        if self.dyn_kernel % 2 == 0 {
            return bad(format!("dyn_kernel {} must be odd", self.dyn_kernel));
        }
        if self.decoder_channels % 4 != 0 || self.decoder_channels == 0 {
            return bad(format!("decoder_channels {} must be a positive multiple of 4 (PixelShuffle 2)", self.decoder_channels));
        }
        if ![1, 2, 4, 8].contains(&self.internal_scale) {
            return bad(format!("internal_scale {} must be 1, 2, 4 or 8", self.internal_scale));
        }
        if self.position_embedding && self.pos_channels == 0 {
            return bad("pos_channels must be positive when position_embedding is on".into());
        }
        if !(self.ffn_factor > 0.0) || self.ca_hidden == 0 {
            return bad("ffn_factor and ca_hidden must be positive".into());
        }
        if self.restored_filter && (self.internal_scale != 1 || self.fused_upsampling) {
            return bad("restored_filter filters F's output at full resolution: it needs internal_scale 1 and no fused_upsampling".into());
        }
        if self.mean_free_correction && self.fused_upsampling {
            return bad("mean_free_correction needs F's full-resolution output; it cannot be combined with fused_upsampling".into());
        }
        if self.prior_grid > 0 {
            let plane = self.prior_grid * self.prior_grid;
            if self.prior_dim % plane != 0 {
                return bad(format!("prior_dim {} is not prior_grid² = {plane} cells of equal length", self.prior_dim));
            }
            if !self.uses_mapping() {
                return bad("prior_grid is read by the prior mappings T_m, T_c: it needs prior_mode guided or zero".into());
            }
        }
        if self.exposure_input && !self.uses_mapping() {
            return bad("exposure_input feeds the prior mappings T_m, T_c: it needs prior_mode guided or zero".into());
        }
        Ok(())
    }

    fn uses_mapping(&self) -> bool {
        matches!(self.prior_mode, PriorMode::Guided | PriorMode::Zero)
    }

    pub fn head_channels(&self) -> usize {
        match self.head {
            Head::MaskResidual => 4,
            Head::ResidualOnly => 3,
        }
    }
}

/// R: `restored` and `degraded` `[N, 3, H, W]` (H, W multiples of `pad_multiple`), `prior`
/// `[N, D]` -> refined `[N, 3, H, W]`.
pub fn refiner_forward<O: Ops>(o: &mut O, cfg: &RefinerConfig, restored: &O::T, degraded: &O::T, prior: &O::T) -> O::T {
    let s = cfg.internal_scale;
    let (r_in, d_in) = if s > 1 { (o.avg_pool(restored, s), o.avg_pool(degraded, s)) } else { (restored.clone(), degraded.clone()) };
    let (head, filter) = refiner_core(o, cfg, &r_in, &d_in, prior);
    let head = o.upsample_bilinear(&head, cfg.head_channels(), s);
    let filtered = match &filter {
        Some(weights) => filter_restored(o, restored, weights),
        None => restored.clone(),
    };
    let refined = match cfg.head {
        Head::MaskResidual => {
            let logit = o.slice_channels(&head, 0, 1);
            let mask = mask_from_logit(o, cfg, &logit);
            let resid = o.slice_channels(&head, 1, 4);
            let diff = o.sub(&filtered, degraded);
            apply_mask_residual(o, degraded, &diff, &mask, &resid)
        }
        Head::ResidualOnly => apply_residual_only(o, &filtered, &head),
    };
    if cfg.mean_free_correction {
        let correction = o.sub(&refined, restored);
        let frame_mean = o.mean_keepdim(&correction, &[2, 3]);
        o.sub(&refined, &frame_mean)
    } else {
        refined
    }
}

/// Î + Σ_d w_d (Î shifted by d − Î): `weights` `[N, 8, H, W]` for the eight neighbours in row
/// order (the centre left out), shared by the three colours; the centre tap is −Σ_d w_d, so
/// the filter sums to one and leaves a flat area as it is. Edge pixels repeat at the border.
pub fn filter_restored<O: Ops>(o: &mut O, restored: &O::T, weights: &O::T) -> O::T {
    let total = o.sum_keepdim(weights, &[1]);
    let centre = o.mul_scalar(&total, -1.0);
    let before = o.slice_channels(weights, 0, 4);
    let after = o.slice_channels(weights, 4, 8);
    let taps = o.concat(&[&before, &centre, &after]);
    let kernels = o.concat(&[&taps, &taps, &taps]);
    let delta = o.dynamic_conv(restored, &kernels, 3, 3);
    o.add(restored, &delta)
}

/// R's head at its inputs' resolution with the mask activated: `[mask, residual]` (4 channels)
/// for Eq. 1, the residual (3) for the residual-only head.
pub fn refiner_head<O: Ops>(o: &mut O, cfg: &RefinerConfig, restored: &O::T, degraded: &O::T, prior: &O::T) -> O::T {
    let (head, _) = refiner_core(o, cfg, restored, degraded, prior);
    match cfg.head {
        Head::MaskResidual => {
            let logit = o.slice_channels(&head, 0, 1);
            let mask = mask_from_logit(o, cfg, &logit);
            let resid = o.slice_channels(&head, 1, 4);
            o.concat(&[&mask, &resid])
        }
        Head::ResidualOnly => head,
    }
}

fn mask_from_logit<O: Ops>(o: &mut O, cfg: &RefinerConfig, logit: &O::T) -> O::T {
    let logit = if cfg.mask_logit_offset != 0.0 { o.add_scalar(logit, cfg.mask_logit_offset) } else { logit.clone() };
    o.sigmoid(&logit)
}

/// Eq. 1 with `diff` = Î − I_d: Ī = I_d + diff·I_m + I_r.
pub fn apply_mask_residual<O: Ops>(o: &mut O, degraded: &O::T, diff: &O::T, mask: &O::T, resid: &O::T) -> O::T {
    let masked = o.mul(diff, mask);
    let corrected = o.add(degraded, &masked);
    o.add(&corrected, resid)
}

/// The official code's head: Ī = clamp(Î, 0, 1) + I_r.
pub fn apply_residual_only<O: Ops>(o: &mut O, restored: &O::T, resid: &O::T) -> O::T {
    let base = o.clamp(restored, 0.0, 1.0);
    o.add(&base, resid)
}

/// One of R's convolutions, padded as `replicate_padding` says.
#[allow(clippy::too_many_arguments)]
fn conv<O: Ops>(o: &mut O, cfg: &RefinerConfig, name: &str, x: &O::T, cin: usize, cout: usize, k: usize, conv: Conv2d, bias: bool) -> O::T {
    let (x, conv) = layers::padded(o, cfg.replicate_padding, x, conv);
    layers::conv(o, name, &x, cin, cout, k, conv, bias)
}

/// Size-preserving k x k conv of R with bias.
fn conv_same<O: Ops>(o: &mut O, cfg: &RefinerConfig, name: &str, x: &O::T, cin: usize, cout: usize, k: usize) -> O::T {
    conv(o, cfg, name, x, cin, cout, k, Conv2d::same(k), true)
}

/// Encoder -> SVE -> CSA -> decoder; returns the head's pre-activation output at the input size
/// and, with `restored_filter`, the filter weights `[N, 8, H, W]`.
fn refiner_core<O: Ops>(o: &mut O, cfg: &RefinerConfig, restored: &O::T, degraded: &O::T, prior: &O::T) -> (O::T, Option<O::T>) {
    let (nf, a) = (cfg.nf, cfg.slope);
    let g = match cfg.prior_mode {
        PriorMode::Zero => Some(o.mul_scalar(prior, 0.0)),
        PriorMode::Ignored => None,
        PriorMode::Guided | PriorMode::Concat => Some(prior.clone()),
    };

    // R_e: f = R_e(Î ⊕ I_d) at H/4.
    let x = o.concat(&[restored, degraded]);
    let x = conv_same(o, cfg, "refiner.enc.conv0", &x, 6, nf, 3);
    let x = o.instance_norm(&x, 1e-5);
    let full_res = o.leaky_relu(&x, a);
    let x = conv(o, cfg, "refiner.enc.down1", &full_res, nf, nf, 3, Conv2d::down(3), true);
    let x = o.leaky_relu(&x, a);
    let x = conv(o, cfg, "refiner.enc.down2", &x, nf, nf, 3, Conv2d::down(3), true);
    let mut f = o.leaky_relu(&x, a);
    if let (PriorMode::Concat, Some(g)) = (cfg.prior_mode, &g) {
        let gm = o.expand_hw(g, &f);
        let cat = o.concat(&[&f, &gm]);
        f = conv(o, cfg, "refiner.prior_concat", &cat, nf + cfg.prior_dim, nf, 1, Conv2d::same(1), true);
    }

    // Prior mappings T_m, T_c when the prior guides the attention: [N, prior_embed], or
    // [N, prior_embed, cells, cells] for a per-region prior.
    let cells = cfg.prior_grid;
    let g = match &g {
        Some(g) if cells > 0 && cfg.uses_mapping() => Some(o.unflatten_hw(g, cells, cells)),
        _ => g,
    };
    let mapped = |o: &mut O, name: &str| -> Option<O::T> {
        let g = g.as_ref().filter(|_| cfg.uses_mapping())?;
        let d = cfg.prior_dim / (cells * cells).max(1);
        let h = linear_or_per_cell(o, &format!("{name}.fc1"), g, d, cfg.prior_hidden, cells > 0);
        let h = o.leaky_relu(&h, a);
        Some(linear_or_per_cell(o, &format!("{name}.fc2"), &h, cfg.prior_hidden, cfg.prior_embed, cells > 0))
    };
    let exposure = cfg.exposure_input.then(|| {
        let m = o.mean_hw(degraded);
        let m = o.add_scalar(&m, 1e-4);
        let m = o.sqrt(&m);
        o.sqrt(&m)
    });
    let mapped_with_exposure = |o: &mut O, name: &str| -> Option<Guide<O::T>> {
        let t = mapped(o, name)?;
        let t = match &exposure {
            None => t,
            Some(e) => {
                let te = zero_linear(o, &format!("{name}.exposure"), e, 3, cfg.prior_embed);
                let te = if cells > 0 { o.unsqueeze_hw(&te) } else { te };
                o.add(&t, &te)
            }
        };
        Some(if cells > 0 { Guide::Grid(t) } else { Guide::Vector(t) })
    };
    let t_m = mapped_with_exposure(o, "refiner.t_m");
    let t_c = mapped_with_exposure(o, "refiner.t_c");
    let embed_c = if t_m.is_some() { cfg.prior_embed } else { 0 };
    let pos_c = if cfg.position_embedding { cfg.pos_channels } else { 0 };

    let f_hat = sve(o, cfg, &f, t_m.as_ref(), embed_c, pos_c);
    let f_bar = csa(o, cfg, &f_hat, t_c.as_ref(), embed_c, pos_c);

    // R_d: two (conv3x3 -> PixelShuffle 2 -> LReLU), conv3x3 -> LReLU -> conv3x3 to the head.
    let c_up = cfg.decoder_channels / 4;
    let y = conv_same(o, cfg, "refiner.dec.up1", &f_bar, nf, cfg.decoder_channels, 3);
    let y = o.pixel_shuffle(&y, 2);
    let y = o.leaky_relu(&y, a);
    let y = conv_same(o, cfg, "refiner.dec.up2", &y, c_up, cfg.decoder_channels, 3);
    let y = o.pixel_shuffle(&y, 2);
    let y = o.leaky_relu(&y, a);
    let y = conv_same(o, cfg, "refiner.dec.conv", &y, c_up, nf, 3);
    let y = if cfg.full_res_skip {
        let skip = conv_same(o, cfg, "refiner.dec.skip", &full_res, nf, nf, 3);
        o.add(&y, &skip)
    } else {
        y
    };
    let y = o.leaky_relu(&y, a);
    let (y_padded, same) = layers::padded(o, cfg.replicate_padding, &y, Conv2d::same(3));
    let head = if cfg.zero_init_head {
        layers::zero_conv(o, "refiner.dec.out", &y_padded, nf, cfg.head_channels(), 3, same)
    } else {
        layers::conv(o, "refiner.dec.out", &y_padded, nf, cfg.head_channels(), 3, same, true)
    };
    let filter = cfg.restored_filter.then(|| layers::zero_conv(o, "refiner.dec.filter", &y_padded, nf, 8, 3, same));
    (head, filter)
}

/// Position embedding S = P(coordinate grid): conv3x3 2->c, LReLU, conv1x1 c->c.
fn position_embedding<O: Ops>(o: &mut O, cfg: &RefinerConfig, name: &str, like: &O::T) -> O::T {
    let grid = o.coord_grid(like);
    let s = conv_same(o, cfg, &format!("{name}.conv1"), &grid, 2, cfg.pos_channels, 3);
    let s = o.leaky_relu(&s, cfg.slope);
    conv_same(o, cfg, &format!("{name}.conv2"), &s, cfg.pos_channels, cfg.pos_channels, 1)
}

/// A mapped prior T(g): one vector per frame, or a grid of them over the frame.
enum Guide<T> {
    Vector(T),
    Grid(T),
}

impl<T: Clone> Guide<T> {
    /// T(g) at every position of `like`: the vector repeated, or the grid resized bilinearly.
    fn spread<O: Ops<T = T>>(&self, o: &mut O, like: &T) -> T {
        match self {
            Guide::Vector(t) => o.expand_hw(t, like),
            Guide::Grid(t) => o.resize_bilinear(t, like),
        }
    }

    /// T(g) for the whole frame: the vector, or the mean over the grid's cells.
    fn summary<O: Ops<T = T>>(&self, o: &mut O) -> T {
        match self {
            Guide::Vector(t) => t.clone(),
            Guide::Grid(t) => o.mean_hw(t),
        }
    }
}

/// A linear layer on a vector `[N, fin]`, or the same layer (same parameters) applied to each
/// cell of a grid `[N, fin, h, w]` as a 1x1 convolution.
fn linear_or_per_cell<O: Ops>(o: &mut O, name: &str, x: &O::T, fin: usize, fout: usize, per_cell: bool) -> O::T {
    if !per_cell {
        return linear(o, name, x, fin, fout);
    }
    let w = o.param(&format!("{name}.weight"), &[fout, fin], Init::kaiming_uniform(fin));
    let b = o.param(&format!("{name}.bias"), &[fout], Init::bias(fin));
    let w = o.reshape(&w, &[fout, fin, 1, 1]);
    o.conv2d(x, &w, Some(&b), Conv2d::same(1))
}

/// f ⊕ T(g) ⊕ S: the guided input of R_m and R_p.
fn guided_input<O: Ops>(o: &mut O, cfg: &RefinerConfig, pos_name: &str, f: &O::T, t: Option<&Guide<O::T>>) -> O::T {
    let mut parts = vec![f.clone()];
    if let Some(t) = t {
        parts.push(t.spread(o, f));
    }
    if cfg.position_embedding {
        parts.push(position_embedding(o, cfg, pos_name, f));
    }
    let refs: Vec<&O::T> = parts.iter().collect();
    if refs.len() == 1 { f.clone() } else { o.concat(&refs) }
}

/// PTG-SVE: f̂ = M·f_s + (1 − M)·f_l with M = sigmoid(R_m(f ⊕ T_m(g) ⊕ S_m)).
fn sve<O: Ops>(o: &mut O, cfg: &RefinerConfig, f: &O::T, t_m: Option<&Guide<O::T>>, embed_c: usize, pos_c: usize) -> O::T {
    let (nf, a) = (cfg.nf, cfg.slope);
    // Short range R_s: a residual block.
    let r = conv_same(o, cfg, "refiner.sve.short.conv1", f, nf, nf, 3);
    let r = o.leaky_relu(&r, a);
    let r = conv_same(o, cfg, "refiner.sve.short.conv2", &r, nf, nf, 3);
    let f_s = o.add(f, &r);
    // Long range R_l: Restormer blocks.
    let mut f_l = f.clone();
    for i in 0..cfg.restormer_blocks {
        f_l = restormer_block(o, cfg, &format!("refiner.sve.long.{i}"), &f_l);
    }
    if !cfg.sve {
        return o.add(&f_s, &f_l);
    }
    let inp = guided_input(o, cfg, "refiner.sve.pos", f, t_m);
    let m = conv_same(o, cfg, "refiner.sve.range.conv1", &inp, nf + embed_c + pos_c, nf, 3);
    let m = o.leaky_relu(&m, a);
    let m = conv_same(o, cfg, "refiner.sve.range.conv2", &m, nf, 1, 3);
    let m = o.sigmoid(&m);
    // M·f_s + (1 − M)·f_l = f_l + M·(f_s − f_l)
    let d = o.sub(&f_s, &f_l);
    let md = o.mul(&m, &d);
    o.add(&f_l, &md)
}

/// Restormer transformer block: x + MDTA(LN(x)); x + GDFN(LN(x)). Convs without bias, as
/// Restormer's default.
fn restormer_block<O: Ops>(o: &mut O, cfg: &RefinerConfig, name: &str, x: &O::T) -> O::T {
    let c = cfg.nf;
    let h = cfg.heads;
    // MDTA: transposed (channel) attention.
    let n = layer_norm(o, &format!("{name}.norm1"), x, c);
    let qkv = conv(o, cfg, &format!("{name}.attn.qkv"), &n, c, 3 * c, 1, Conv2d::same(1), false);
    let qkv = conv(o, cfg, &format!("{name}.attn.qkv_dw"), &qkv, 3 * c, 3 * c, 3, Conv2d::same(3).with_groups(3 * c), false);
    let q = o.slice_channels(&qkv, 0, c);
    let k = o.slice_channels(&qkv, c, 2 * c);
    let v = o.slice_channels(&qkv, 2 * c, 3 * c);
    let q = o.split_heads(&q, h);
    let k = o.split_heads(&k, h);
    let v = o.split_heads(&v, h);
    let q = o.l2_normalize(&q, 3, 1e-12);
    let k = o.l2_normalize(&k, 3, 1e-12);
    let kt = o.transpose_last2(&k);
    let attn = o.matmul(&q, &kt);
    let temp = o.param(&format!("{name}.attn.temperature"), &[1, h, 1, 1], Init::Const(1.0));
    let attn = o.mul(&attn, &temp);
    let attn = o.softmax(&attn, 3);
    let out = o.matmul(&attn, &v);
    let out = o.merge_heads(&out, x);
    let out = conv(o, cfg, &format!("{name}.attn.project_out"), &out, c, c, 1, Conv2d::same(1), false);
    let x = o.add(x, &out);
    // GDFN: gated-GELU depthwise feed-forward.
    let hidden = (c as f32 * cfg.ffn_factor) as usize;
    let n = layer_norm(o, &format!("{name}.norm2"), &x, c);
    let p = conv(o, cfg, &format!("{name}.ffn.project_in"), &n, c, 2 * hidden, 1, Conv2d::same(1), false);
    let p = conv(o, cfg, &format!("{name}.ffn.dw"), &p, 2 * hidden, 2 * hidden, 3, Conv2d::same(3).with_groups(2 * hidden), false);
    let x1 = o.slice_channels(&p, 0, hidden);
    let x2 = o.slice_channels(&p, hidden, 2 * hidden);
    let g1 = o.gelu(&x1);
    let gated = o.mul(&g1, &x2);
    let out = conv(o, cfg, &format!("{name}.ffn.project_out"), &gated, hidden, c, 1, Conv2d::same(1), false);
    o.add(&x, &out)
}

/// PTG-CSA: f̄ = R_f(f̂·M_c ⊕ f̂·M_s) + f̂.
fn csa<O: Ops>(o: &mut O, cfg: &RefinerConfig, f_hat: &O::T, t_c: Option<&Guide<O::T>>, embed_c: usize, pos_c: usize) -> O::T {
    let (nf, a, k) = (cfg.nf, cfg.slope, cfg.dyn_kernel);
    let f_c = if cfg.channel_attention {
        // M_c = sigmoid(MLP(avgpool(f̂) ⊕ T_c(g))).
        let pooled = o.mean_hw(f_hat);
        let inp = match t_c {
            Some(t) => {
                let t = t.summary(o);
                o.concat(&[&pooled, &t])
            }
            None => pooled,
        };
        let h = linear(o, "refiner.csa.channel.fc1", &inp, nf + embed_c, cfg.ca_hidden);
        let h = o.leaky_relu(&h, a);
        let h = linear(o, "refiner.csa.channel.fc2", &h, cfg.ca_hidden, nf);
        let m_c = o.sigmoid(&h);
        let m_c = o.unsqueeze_hw(&m_c);
        o.mul(f_hat, &m_c)
    } else {
        f_hat.clone()
    };
    let f_s = if cfg.spatial_attention {
        // C_p = R_p(f̂ ⊕ T_c(g) ⊕ S_c): a k x k kernel per channel per pixel.
        let inp = guided_input(o, cfg, "refiner.csa.pos", f_hat, t_c);
        let kh = if cfg.kernel_hidden == 0 { nf } else { cfg.kernel_hidden };
        let c_p = conv_same(o, cfg, "refiner.csa.spatial.kernel1", &inp, nf + embed_c + pos_c, kh, 3);
        let c_p = o.leaky_relu(&c_p, a);
        let c_p = conv_same(o, cfg, "refiner.csa.spatial.kernel2", &c_p, kh, nf * k * k, 3);
        // M̂_s = f̂ * C_p; M_s = R_o(M̂_s) = sigmoid(conv3x3(LReLU(M̂_s))) to one channel.
        let m = o.dynamic_conv(f_hat, &c_p, nf, k);
        let m = o.leaky_relu(&m, a);
        let m = conv_same(o, cfg, "refiner.csa.spatial.out", &m, nf, 1, 3);
        let m_s = o.sigmoid(&m);
        o.mul(f_hat, &m_s)
    } else {
        f_hat.clone()
    };
    let cat = o.concat(&[&f_c, &f_s]);
    let fused = conv(o, cfg, "refiner.csa.fuse", &cat, 2 * nf, nf, 1, Conv2d::same(1), true);
    o.add(&fused, f_hat)
}
