//! Recipes: one TOML file fully describes a training run (model, base F, prior G, data,
//! degradations, schedule, seed), so every shipped bundle is reproducible by one command.
//! Relative paths are resolved against the directory `train` is run from (the repository root).

use crate::data::DataConfig;
use crate::degrade::Degradation;
use anyhow::{Context, Result, bail};
use ptgrm_bundle::ThirdPartyWeights;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// Bundle name, e.g. "lowlight".
    pub name: String,
    /// lowlight, denoise, derain, deblur or test.
    pub task: String,
    #[serde(default)]
    pub description: String,
    /// Seeds initialization, data sampling and validation degradations.
    pub seed: u64,
    /// Refiner and built-in base architecture (the model crate's configuration; missing keys
    /// take its defaults: the paper's PTG-RM structure with our widths, see `RefinerConfig`).
    #[serde(default)]
    pub model: toml::Table,
    pub base: BaseSpec,
    pub prior: PriorRecipe,
    pub data: DataConfig,
    #[serde(default)]
    pub degradation: Vec<Degradation>,
    pub train: TrainConfig,
}

/// The base restoration network F.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BaseSpec {
    /// The built-in compact F, trained jointly with R (loss Eq. 8).
    Builtin,
    /// A frozen external image->image ONNX model (input `image`, output `base` or its first
    /// output), run through ONNX Runtime; only R is trained.
    Onnx {
        path: PathBuf,
        #[serde(default)]
        third_party: Option<ThirdPartyWeights>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorRecipe {
    /// Name recorded in the manifest (e.g. "mobilenet_v2-imagenet"), or "none" for g = 0.
    pub kind: String,
    /// D, the prior vector length (ignored, taken as the model default, when kind = "none").
    #[serde(default)]
    pub dim: Option<usize>,
    /// ONNX prior graph: `image` [N,3,H,W] in [0,1] -> `prior` [N,D].
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Fixed (width, height) the prior graph is fed; absent = the runtime's default shrink.
    #[serde(default)]
    pub input_size: Option<[u32; 2]>,
    #[serde(default)]
    pub third_party: Option<ThirdPartyWeights>,
}

impl PriorRecipe {
    pub fn is_none(&self) -> bool {
        self.kind == "none"
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub steps: u64,
    pub batch: usize,
    /// Peak learning rate (Adam).
    pub lr: f64,
    /// Final learning rate of the cosine schedule.
    #[serde(default)]
    pub lr_min: f64,
    #[serde(default)]
    pub warmup_steps: u64,
    #[serde(default)]
    pub schedule: Schedule,
    /// λ1 of Eq. 8 (weight of the refined output's loss).
    #[serde(default = "one")]
    pub lambda1: f64,
    /// Charbonnier epsilon.
    #[serde(default = "charbonnier_eps")]
    pub charbonnier_eps: f64,
    /// Weight of an added structure term, `ssim_weight * (1 - SSIM)`, on each output (F's and
    /// the refined one) next to its Charbonnier loss; 0 = Charbonnier only (Eq. 8). SSIM as
    /// `ptgrm eval` computes it. The tch backend only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ssim_weight: f64,
    /// Weight, in the Charbonnier loss, of the channel values whose clean target lies within
    /// 0.1 of 0 or 1 (1 = every value alike; the loss is the weighted mean, so its scale stays).
    /// Why: there a noisy input is clipped at the noise levels trained, and a frozen denoiser
    /// trained on unclipped noise is biased; the wallpapers among the training photos have
    /// about 20 % of their values there, ordinary photos about 5 %, and at weight 1 the
    /// clipped values' large errors drive R while it adds error on mid-tones (docs/training-log.md,
    /// "Why R ties FFDNet at sigma 25"). The tch backend only.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub near_clip_weight: f64,
    /// Weight of an added pattern term on each output: the variance of the error's 4 x 4 phase
    /// means (the mean of output - target over all pixels with x = i, y = j mod 4, less the
    /// crop's mean) over what independent error of the crop's own variance gives, which is
    /// `ptgrm artefacts`'s one-frame grid score at P = 4 computed on the error (0 = none). Why:
    /// what an F on the 2x2 space-to-depth view passes through of the input's sub-position
    /// means is a 0.03-level structure that the Charbonnier and SSIM terms hardly see; with
    /// this term at 0.01 the low-light F's phase-noise gate cut the grid score to 1.19, without
    /// it to 1.61 (docs/training-log.md, "A phase-noise gate"). Against a Charbonnier-only loss it
    /// weighs about 5x more. The tch backend only.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub grid_weight: f64,
    /// Inverted dropout on the prior vector g during training: each of its elements is zeroed
    /// with this probability and the rest scaled by 1/(1 - p) (0 = none; validation and
    /// export never drop). Why: with a few dozen training photos a 1280-d global feature can
    /// tell the photos apart, and R can fit a correction per photo instead of one that
    /// generalises; dropping elements makes R rely on no single one of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prior_dropout: f64,
    /// Clip the global gradient norm to this (0 = no clipping).
    #[serde(default)]
    pub grad_clip: f64,
    /// Validate (base vs refined PSNR/SSIM) every K steps, and at the end.
    pub val_every: u64,
    /// Write a checkpoint every K steps (and at every validation and at the end).
    #[serde(default = "default_ckpt")]
    pub checkpoint_every: u64,
    /// Start from the parameters of another run's checkpoint (a run directory or its
    /// checkpoint.bin, relative to the working directory) instead of the seeded init: a
    /// fine-tune of the same model with a changed graph or data. Adam and the schedule start
    /// fresh; every parameter must match by name and shape, except those `init_fresh` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_from: Option<PathBuf>,
    /// Train R alone: the built-in F keeps the parameters it starts with (from `init_from`) and
    /// runs without gradients, and the loss is the refined output's alone. Why: R learns from
    /// the whole frame's context (position embeddings, instance statistics and attention over
    /// its 1/32 latent), so it must see crops near the frame sizes it will run on, and a
    /// frozen F makes those affordable (a forward only, about a third of F's training cost).
    /// The tch backend only; not with the pooled fused form, whose heads share one upsampling.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub freeze_base: bool,
    /// Name prefixes of parameters that do not come from init_from's checkpoint: they keep their
    /// seeded initialisation whether or not the checkpoint holds them (a part added to a trained
    /// model, e.g. R's zero-initialised exposure mapping, or a part retrained from scratch, e.g.
    /// "refiner." for R's g = 0 twin on a trained F). Listed, not guessed, so a mistyped model
    /// still fails to start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_fresh: Vec<String>,
    /// Train only the parameters whose names start with one of these prefixes; the rest keep
    /// the values they start with (from `init_from`) and get no gradients (empty = train all).
    /// Why: a part added to a trained model (`base.phase_gate`) can then be learnt alone, so
    /// the model changes by that part only and the R trained on the F before it stays valid.
    /// Each prefix must name some parameter. The tch backend only; not with freeze_base.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trainable: Vec<String>,
}

fn one() -> f64 {
    1.0
}
fn is_one(v: &f64) -> bool {
    *v == 1.0
}
fn is_zero(v: &f64) -> bool {
    *v == 0.0
}
fn charbonnier_eps() -> f64 {
    1e-3
}
fn default_ckpt() -> u64 {
    100
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Schedule {
    #[default]
    Cosine,
    Constant,
}

impl TrainConfig {
    /// Learning rate used at `step` (0-based): linear warm-up, then cosine (or constant).
    pub fn lr_at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        match self.schedule {
            Schedule::Constant => self.lr,
            Schedule::Cosine => {
                let span = self.steps.saturating_sub(self.warmup_steps).max(1) as f64;
                let t = ((step - self.warmup_steps) as f64 / span).min(1.0);
                self.lr_min + 0.5 * (self.lr - self.lr_min) * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }
}

impl Recipe {
    pub fn parse(text: &str, origin: &str) -> Result<Recipe> {
        let mut r: Recipe = toml::from_str(text).with_context(|| format!("recipe {origin}"))?;
        r.validate().with_context(|| format!("recipe {origin}"))?;
        if r.data.view_reuse == 0 {
            r.data.view_reuse = crate::data::automatic_view_reuse(matches!(r.base, BaseSpec::Onnx { .. }));
        }
        Ok(r)
    }

    pub fn load(path: &Path) -> Result<(Recipe, String)> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading recipe {}", path.display()))?;
        Ok((Recipe::parse(&text, &path.display().to_string())?, text))
    }

    fn validate(&self) -> Result<()> {
        let t = &self.train;
        if t.steps == 0 || t.batch == 0 || t.val_every == 0 || t.checkpoint_every == 0 {
            bail!("train.steps, train.batch, train.val_every and train.checkpoint_every must be at least 1");
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) || t.lr_min < 0.0 || t.lr_min > t.lr {
            bail!("train.lr must be > 0 and train.lr_min in [0, lr]");
        }
        if !(t.ssim_weight >= 0.0 && t.ssim_weight.is_finite()) {
            bail!("train.ssim_weight must be a finite number >= 0, got {}", t.ssim_weight);
        }
        if !(t.grid_weight >= 0.0 && t.grid_weight.is_finite()) {
            bail!("train.grid_weight must be a finite number >= 0, got {}", t.grid_weight);
        }
        if !(t.near_clip_weight > 0.0 && t.near_clip_weight.is_finite()) {
            bail!("train.near_clip_weight must be a finite number > 0, got {}", t.near_clip_weight);
        }
        if t.freeze_base && !(matches!(self.base, BaseSpec::Builtin) && t.lambda1 > 0.0 && t.init_from.is_some()) {
            bail!(
                "train.freeze_base trains R alone after a trained built-in F: it needs base.kind = \"builtin\", train.lambda1 > 0 and train.init_from (the trained F)"
            );
        }
        if !t.trainable.is_empty() && (t.freeze_base || t.init_from.is_none()) {
            bail!(
                "train.trainable learns a part of a trained model: it needs train.init_from and cannot be combined with train.freeze_base (list \"refiner.\" instead)"
            );
        }
        if t.lambda1 == 0.0 && !t.trainable.is_empty() && t.trainable.iter().all(|p| p.starts_with("refiner.")) {
            bail!("train.trainable names only R's parameters, but train.lambda1 = 0 trains F alone (R's loss is not computed)");
        }
        if !(0.0..1.0).contains(&t.prior_dropout) {
            bail!("train.prior_dropout must be in [0, 1), got {}", t.prior_dropout);
        }
        if self.prior.is_none() {
            if self.prior.path.is_some() {
                bail!("prior.kind is \"none\" but prior.path is set");
            }
        } else if self.prior.path.is_none() || self.prior.dim.is_none() {
            bail!("prior.kind {:?} needs prior.path (an ONNX graph) and prior.dim", self.prior.kind);
        }
        if self.data.train.is_empty() && self.data.train_pairs.is_empty() {
            bail!("data.train or data.train_pairs must name at least one folder");
        }
        if self.data.val.is_empty() && self.data.val_pairs.is_empty() {
            bail!("data.val or data.val_pairs must name at least one folder (validation is required)");
        }
        for d in &self.degradation {
            let (kind, probabilities) = match d {
                Degradation::LowLight(l) => {
                    ("low_light", vec![("mosaic", l.mosaic), ("chroma_subsample", l.chroma_subsample), ("well_exposed", l.well_exposed)])
                }
                Degradation::GaussianNoise(g) => ("gaussian_noise", vec![("mosaic", g.mosaic), ("chroma_subsample", g.chroma_subsample)]),
                _ => continue,
            };
            for (name, p) in probabilities {
                if !(0.0..=1.0).contains(&p) {
                    bail!("{kind} {name} is a probability and must be in [0, 1], got {p}");
                }
            }
        }
        if !["lowlight", "denoise", "derain", "deblur", "test"].contains(&self.task.as_str()) {
            bail!("task {:?} is not one of lowlight, denoise, derain, deblur, test", self.task);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every recipe in recipes/ is one a user can run: it parses, and the run it starts from
    /// (train.init_from) is committed.
    #[test]
    fn shipped_recipes_parse_and_their_starting_runs_exist() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut seen = 0;
        for entry in std::fs::read_dir(root.join("recipes")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let (r, _) = Recipe::load(&path).unwrap_or_else(|e| panic!("{}: {e:#}", path.display()));
                if let Some(start) = &r.train.init_from {
                    assert!(root.join(start).exists(), "{}: train.init_from {} is missing", path.display(), start.display());
                }
                seen += 1;
            }
        }
        assert!(seen >= 10, "only {seen} recipes found");
    }

    #[test]
    fn a_capture_probability_outside_0_to_1_is_refused_by_name() {
        let with = |kind: &str, field: &str| MINIMAL.replace("[train]", &format!("[[degradation]]\nkind = \"{kind}\"\n{field}\n\n[train]"));
        let e = Recipe::parse(&with("low_light", "well_exposed = 1.5"), "test").unwrap_err();
        assert!(format!("{e:#}").contains("low_light well_exposed"), "{e:#}");
        assert!(Recipe::parse(&with("low_light", "well_exposed = 0.1"), "test").is_ok());
        for field in ["mosaic = -0.5", "chroma_subsample = 2.0"] {
            let e = Recipe::parse(&with("gaussian_noise", &format!("sigma = [25.0, 25.0]\n{field}")), "test").unwrap_err();
            let name = field.split(' ').next().unwrap();
            assert!(format!("{e:#}").contains(&format!("gaussian_noise {name}")), "{field}: {e:#}");
        }
        assert!(Recipe::parse(&with("gaussian_noise", "sigma = [25.0, 25.0]\nmosaic = 0.5"), "test").is_ok());
    }

    #[test]
    fn freeze_base_without_a_trained_f_to_keep_is_refused() {
        let frozen = MINIMAL.replace("[train]", "[train]\nfreeze_base = true");
        let e = Recipe::parse(&frozen, "test").unwrap_err();
        assert!(format!("{e:#}").contains("train.init_from"), "{e:#}");
        let ok = frozen.replace("[train]", "[train]\ninit_from = \"runs/trained\"");
        assert!(Recipe::parse(&ok, "test").unwrap().train.freeze_base);
    }

    #[test]
    fn trainable_needs_a_trained_model_and_not_freeze_base() {
        let part = MINIMAL.replace("[train]", "[train]\ntrainable = [\"base.phase_gate\"]");
        let e = Recipe::parse(&part, "test").unwrap_err();
        assert!(format!("{e:#}").contains("train.init_from"), "{e:#}");
        let ok = part.replace("[train]", "[train]\ninit_from = \"runs/trained\"");
        assert_eq!(Recipe::parse(&ok, "test").unwrap().train.trainable, ["base.phase_gate"]);
        let both = ok.replace("[train]", "[train]\nfreeze_base = true");
        let e = Recipe::parse(&both, "test").unwrap_err();
        assert!(format!("{e:#}").contains("freeze_base"), "{e:#}");
        // R alone under an F-alone loss would get no gradient at all.
        let idle = ok.replace("\"base.phase_gate\"", "\"refiner.\"").replace("[train]", "[train]\nlambda1 = 0.0");
        let e = Recipe::parse(&idle, "test").unwrap_err();
        assert!(format!("{e:#}").contains("lambda1 = 0"), "{e:#}");
    }

    #[test]
    fn a_prior_dropout_of_one_or_more_is_refused() {
        for bad in ["1.0", "-0.1", "nan"] {
            let text = MINIMAL.replace("[train]", &format!("[train]\nprior_dropout = {bad}"));
            let e = Recipe::parse(&text, "test").unwrap_err();
            assert!(format!("{e:#}").contains("train.prior_dropout"), "{bad}: {e:#}");
        }
        let ok = MINIMAL.replace("[train]", "[train]\nprior_dropout = 0.5");
        assert_eq!(Recipe::parse(&ok, "test").unwrap().train.prior_dropout, 0.5);
    }

    #[test]
    fn a_near_clip_weight_of_zero_or_less_is_refused() {
        for bad in ["0.0", "-1.0", "nan", "inf"] {
            let text = MINIMAL.replace("[train]", &format!("[train]\nnear_clip_weight = {bad}"));
            let e = Recipe::parse(&text, "t").unwrap_err();
            assert!(format!("{e:#}").contains("train.near_clip_weight"), "{bad}: {e:#}");
        }
        assert_eq!(Recipe::parse(MINIMAL, "t").unwrap().train.near_clip_weight, 1.0);
    }

    #[test]
    fn a_negative_loss_term_weight_is_refused() {
        for key in ["ssim_weight", "grid_weight"] {
            let text = MINIMAL.replace("[train]", &format!("[train]\n{key} = -1.0"));
            let e = Recipe::parse(&text, "t").unwrap_err();
            assert!(format!("{e:#}").contains(&format!("train.{key}")), "{e:#}");
        }
    }

    const MINIMAL: &str = r#"
name = "t"
task = "lowlight"
seed = 3
[base]
kind = "builtin"
[prior]
kind = "none"
[data]
train = ["data/train"]
val = ["data/val"]
[[degradation]]
kind = "low_light"
exposure = [0.05, 0.2]
[[degradation]]
kind = "gaussian_noise"
sigma = [5, 10]
[train]
steps = 100
batch = 2
lr = 2e-4
lr_min = 1e-6
warmup_steps = 10
val_every = 50
"#;

    #[test]
    fn parses_defaults_and_degradation_chain() {
        let r = Recipe::parse(MINIMAL, "test").unwrap();
        assert_eq!(r.data.crop, 64);
        assert_eq!(r.train.lambda1, 1.0);
        assert_eq!(r.degradation.len(), 2);
        match &r.degradation[0] {
            Degradation::LowLight(l) => {
                assert_eq!(l.exposure, [0.05, 0.2]);
                assert_eq!(l.gamma, [2.0, 2.6], "unset fields keep their defaults");
            }
            d => panic!("{d:?}"),
        }
    }

    /// The view pool's reuse is automatic unless set: 8 crops per view with a built-in F, 32
    /// with a frozen external F (whose whole-view call dominates the producer); an explicit value,
    /// 1 (the original sampler) included, is kept.
    #[test]
    fn view_reuse_defaults_by_base_kind_and_explicit_values_win() {
        assert_eq!(Recipe::parse(MINIMAL, "t").unwrap().data.view_reuse, 8);
        let external = MINIMAL.replace("[base]\nkind = \"builtin\"", "[base]\nkind = \"onnx\"\npath = \"f.onnx\"");
        assert_ne!(external, MINIMAL);
        assert_eq!(Recipe::parse(&external, "t").unwrap().data.view_reuse, 32);
        let explicit = MINIMAL.replace("[data]", "[data]\nview_reuse = 1");
        assert_eq!(Recipe::parse(&explicit, "t").unwrap().data.view_reuse, 1);
    }

    #[test]
    fn rejects_unknown_keys_and_inconsistent_prior() {
        let typo = MINIMAL.replace("lr_min", "lr_minn");
        let e = format!("{:#}", Recipe::parse(&typo, "typo").unwrap_err());
        assert!(e.contains("lr_minn"), "{e}");
        let bad = MINIMAL.replace("kind = \"none\"", "kind = \"mobilenet\"");
        let e = format!("{:#}", Recipe::parse(&bad, "bad").unwrap_err());
        assert!(e.contains("needs prior.path"), "{e}");
    }

    #[test]
    fn schedule_warms_up_then_decays_to_lr_min() {
        let r = Recipe::parse(MINIMAL, "test").unwrap();
        let t = &r.train;
        assert!((t.lr_at(0) - 2e-5).abs() < 1e-12);
        assert!((t.lr_at(9) - 2e-4).abs() < 1e-12);
        assert!((t.lr_at(10) - 2e-4).abs() < 1e-12);
        assert!(t.lr_at(55) < 2e-4 && t.lr_at(55) > 1e-6);
        assert!((t.lr_at(100) - 1e-6).abs() < 1e-12);
    }
}
