//! Training and validation data: photos decoded once and kept in memory, batches drawn as
//! random crops with flips and quarter turns, degraded on the fly (clean folders) or taken from
//! paired folders (degraded/clean with the same file names).
//!
//! A batch depends only on (seed, step), so any step can be regenerated exactly: a resumed run
//! sees the same data as an uninterrupted one, and batches can be prepared ahead on a thread.

use crate::degrade::{Degradation, apply_all, apply_all_noted};
use crate::imagebuf::{Image, Photo};
use crate::rng::Rng;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataConfig {
    /// Folders of clean photos, degraded on the fly by the recipe's `[[degradation]]` chain.
    #[serde(default)]
    pub train: Vec<PathBuf>,
    /// Paired training folders: `degraded` and `clean` hold images with the same file names.
    #[serde(default)]
    pub train_pairs: Vec<PairedDirs>,
    /// File names in the `train` folders that training leaves out, so they can score R on
    /// photos of the training sources it never saw (`train eval --val DIR`): separates
    /// memorising photos from a gap between the training and validation sources. A name
    /// that no `train` folder holds is an error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hold_out: Vec<String>,
    /// Validation: clean folders (degraded once with a fixed seed) and/or paired folders.
    #[serde(default)]
    pub val: Vec<PathBuf>,
    #[serde(default)]
    pub val_pairs: Vec<PairedDirs>,
    /// Photos whose longer side exceeds this are downscaled once at load (0 = never).
    #[serde(default = "default_max_side")]
    pub max_side: usize,
    /// Each clean training photo is also kept downscaled by each of these factors (in (0, 1),
    /// triangle filter), as further examples drawn as often as the originals; copies smaller
    /// than a crop are left out. Why: with a few dozen photos a refiner can learn corrections
    /// tied to their particular textures; the same scenes at other scales show it other
    /// textures and detail frequencies. Empty = the photos as loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_scales: Vec<f64>,
    /// Training crop side in pixels.
    #[serde(default = "default_crop")]
    pub crop: usize,
    /// Side of the degraded region around each crop that the prior sees (the runtime computes
    /// the prior from the whole frame; a crop alone would be a different input).
    #[serde(default = "default_prior_view")]
    pub prior_view: usize,
    /// Validation images are centre-cropped to this side (0 = whole image).
    #[serde(default = "default_val_crop")]
    pub val_crop: usize,
    /// Pixels of degraded surroundings on each side of a training crop that a frozen external F
    /// sees; its output is cropped back. Without them F's output on a small crop carries border
    /// effects (zero padding inside its receptive field) that whole frames never show, and R
    /// learns to repair those instead of F's real errors. 0 = F sees the crop alone.
    #[serde(default)]
    pub base_context: usize,
    /// Crops taken from each degraded view before it is replaced (1 = every crop gets its own
    /// view, degradation, prior and F output: the sampler of bundles trained before the pool).
    /// With R > 1 a pool of `pool_views` views is kept; each view is degraded once, its prior
    /// (and a frozen F's output) computed once, and R crops with their own positions, flips and
    /// turns are cut from it while it is in the pool (crate::pool). 0 (the default) = automatic,
    /// resolved by the recipe: 8 with a built-in F, 32 with a frozen external F (a whole-view
    /// FFDNet call costs what 16 crops of 64 px do; docs/training.md has the measurements).
    #[serde(default = "default_view_reuse")]
    pub view_reuse: usize,
    /// Views held in the pool (with view_reuse > 1); consecutive crops come from different
    /// views, so a batch of up to this many crops never repeats one.
    #[serde(default = "default_pool_views")]
    pub pool_views: usize,
}

/// Automatic (see `view_reuse`); `Recipe::parse` replaces it with 8 or 32.
fn default_view_reuse() -> usize {
    0
}

/// `view_reuse = 0` (automatic) for a recipe whose F is built in (`external_base` false) or a
/// frozen external network: 8 crops per view take data and prior off the step's critical path;
/// an external F costs a whole-view call per view and needs 32.
pub fn automatic_view_reuse(external_base: bool) -> usize {
    if external_base { 32 } else { 8 }
}
fn default_pool_views() -> usize {
    64
}

impl DataConfig {
    /// One clean training folder, no validation, photos at full size (unit tests).
    #[cfg(test)]
    pub fn test_config(train: &Path, crop: usize, prior_view: usize, view_reuse: usize) -> DataConfig {
        DataConfig {
            train: vec![train.to_path_buf()],
            train_pairs: vec![],
            hold_out: vec![],
            val: vec![],
            val_pairs: vec![],
            max_side: 0,
            extra_scales: vec![],
            crop,
            prior_view,
            val_crop: 0,
            base_context: 0,
            view_reuse,
            pool_views: 64,
        }
    }
}

fn default_max_side() -> usize {
    1024
}
fn default_crop() -> usize {
    64
}
fn default_prior_view() -> usize {
    256
}
fn default_val_crop() -> usize {
    256
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairedDirs {
    pub degraded: PathBuf,
    pub clean: PathBuf,
}

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp", "ppm", "pgm"];

fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading data folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.extension().and_then(|e| e.to_str()).is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// One training or validation example as stored in memory.
#[derive(Clone, Debug)]
pub struct Example {
    pub name: String,
    pub clean: Photo,
    /// Present for paired data; synthetic data is degraded per draw.
    pub degraded: Option<Photo>,
}

/// Loads the photos of `dirs` except those whose file name is in `skip`; returns how many
/// were skipped per name of `skip`.
fn load_clean(dirs: &[PathBuf], max_side: usize, min_side: usize, skip: &[String], out: &mut Vec<Example>) -> Result<Vec<usize>> {
    let mut skipped = vec![0; skip.len()];
    for dir in dirs {
        for path in image_files(dir)? {
            let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
            if let Some(i) = skip.iter().position(|s| *s == name) {
                skipped[i] += 1;
                continue;
            }
            match Photo::load(&path, max_side) {
                Ok(p) if p.width.min(p.height) >= min_side => {
                    out.push(Example { name: path.display().to_string(), clean: p, degraded: None })
                }
                Ok(p) => eprintln!("warning: skipping {} ({}x{} is smaller than {min_side})", path.display(), p.width, p.height),
                Err(e) => eprintln!("warning: skipping unreadable image: {e:#}"),
            }
        }
    }
    Ok(skipped)
}

fn load_pairs(pairs: &[PairedDirs], max_side: usize, min_side: usize, out: &mut Vec<Example>) -> Result<()> {
    for pd in pairs {
        for dpath in image_files(&pd.degraded)? {
            let cpath = pd.clean.join(dpath.file_name().expect("listed files have names"));
            let loaded = Photo::load(&dpath, max_side).and_then(|d| Ok((d, Photo::load(&cpath, max_side)?)));
            match loaded {
                Ok((d, c)) if (d.width, d.height) != (c.width, c.height) => eprintln!(
                    "warning: skipping pair {}: degraded is {}x{}, clean is {}x{}",
                    dpath.display(),
                    d.width,
                    d.height,
                    c.width,
                    c.height
                ),
                Ok((_, c)) if c.width.min(c.height) < min_side => {
                    eprintln!("warning: skipping pair {} (smaller than {min_side})", dpath.display())
                }
                Ok((d, c)) => out.push(Example { name: dpath.display().to_string(), clean: c, degraded: Some(d) }),
                Err(e) => eprintln!("warning: skipping unreadable pair {}: {e:#}", dpath.display()),
            }
        }
    }
    Ok(())
}

/// A batch in NCHW float layout plus, per sample, the degraded view the prior is computed from
/// (or the example index whose whole degraded image gives a cacheable prior).
pub struct Batch {
    pub n: usize,
    pub side: usize,
    pub degraded: Vec<f32>,
    pub clean: Vec<f32>,
    pub prior_inputs: Vec<PriorInput>,
    /// With `base_context` k > 0: the degraded crops with k pixels of surroundings on each side
    /// (`[n, 3, side + 2k, side + 2k]`), for the external F. Empty otherwise.
    pub context_degraded: Vec<f32>,
    pub context: usize,
}

pub enum PriorInput {
    /// A fresh synthetic degradation: the prior must see this degraded region.
    View(Image),
    /// Paired data: the prior of the example's whole degraded image (same every draw).
    WholeExample(usize),
}

pub struct TrainSet {
    pub examples: Vec<Example>,
    pub chain: Vec<Degradation>,
    pub crop: usize,
    pub prior_view: usize,
    pub context: usize,
    pub seed: u64,
    pub view_reuse: usize,
    pub pool_views: usize,
}

impl TrainSet {
    pub fn load(cfg: &DataConfig, chain: &[Degradation], seed: u64) -> Result<TrainSet> {
        if cfg.crop < 8 {
            bail!("data.crop {} is too small (at least 8)", cfg.crop);
        }
        let context = cfg.base_context;
        let min_side = cfg.crop + 2 * context;
        if context > 0 && cfg.prior_view < min_side {
            bail!("data.prior_view {} must be at least crop + 2 * base_context = {min_side}", cfg.prior_view);
        }
        let mut examples = Vec::new();
        let held = load_clean(&cfg.train, cfg.max_side, min_side, &cfg.hold_out, &mut examples)?;
        if let Some(i) = held.iter().position(|n| *n == 0) {
            bail!("data.hold_out names {:?}, which no folder of data.train {:?} holds", cfg.hold_out[i], cfg.train);
        }
        if let Some(f) = cfg.extra_scales.iter().find(|f| !(**f > 0.0 && **f < 1.0)) {
            bail!("data.extra_scales must lie in (0, 1), got {f}");
        }
        let originals = examples.len();
        for f in &cfg.extra_scales {
            for i in 0..originals {
                let p = examples[i].clean.downscaled(*f);
                if p.width.min(p.height) >= min_side {
                    examples.push(Example { name: format!("{}@{f}", examples[i].name), clean: p, degraded: None });
                }
            }
        }
        if !cfg.train.is_empty() && chain.is_empty() {
            bail!("clean training folders need at least one [[degradation]] to synthesize inputs");
        }
        load_pairs(&cfg.train_pairs, cfg.max_side, min_side, &mut examples)?;
        if examples.is_empty() {
            bail!("no usable training images in {:?} / {:?}", cfg.train, cfg.train_pairs);
        }
        if cfg.view_reuse == 0 || cfg.pool_views == 0 {
            bail!("data.view_reuse and data.pool_views must be at least 1 (view_reuse 0 is resolved by the recipe)");
        }
        if cfg.view_reuse > 1 && examples.iter().any(|e| e.degraded.is_some()) {
            bail!("data.view_reuse > 1 pools synthetic views; paired training data (train_pairs) needs view_reuse = 1");
        }
        Ok(TrainSet {
            examples,
            chain: chain.to_vec(),
            crop: cfg.crop,
            prior_view: cfg.prior_view.max(cfg.crop),
            context,
            seed,
            view_reuse: cfg.view_reuse,
            pool_views: cfg.pool_views,
        })
    }

    pub fn describe(&self) -> String {
        let paired = self.examples.iter().filter(|e| e.degraded.is_some()).count();
        let pixels: usize = self.examples.iter().map(|e| e.clean.width * e.clean.height).sum();
        format!(
            "{} training images ({} paired, {} clean + synthetic degradation), {:.1} Mpixel",
            self.examples.len(),
            paired,
            self.examples.len() - paired,
            pixels as f64 / 1e6
        )
    }

    /// The batch for `step`: a pure function of (seed, step).
    pub fn batch(&self, step: u64, n: usize) -> Batch {
        let side = self.crop;
        let plane = side * side;
        let mut b = Batch {
            n,
            side,
            degraded: vec![0.0; n * 3 * plane],
            clean: vec![0.0; n * 3 * plane],
            prior_inputs: Vec::with_capacity(n),
            context_degraded: Vec::new(),
            context: self.context,
        };
        for i in 0..n {
            let mut rng = Rng::derived(self.seed, step.wrapping_mul(4096).wrapping_add(i as u64));
            let (deg, clean, prior, context) = self.draw(&mut rng);
            b.degraded[i * 3 * plane..(i + 1) * 3 * plane].copy_from_slice(&deg.data);
            b.clean[i * 3 * plane..(i + 1) * 3 * plane].copy_from_slice(&clean.data);
            b.prior_inputs.push(prior);
            b.context_degraded.extend(context.map(|c| c.data).unwrap_or_default());
        }
        b
    }

    /// A crop position inside a degraded view of `vw` x `vh`: away from the view's border by the
    /// degradations' reach where possible (blur kernels see real neighbours), and always by
    /// the external F's context.
    pub fn pick_crop(&self, rng: &mut Rng, vw: usize, vh: usize) -> (usize, usize) {
        let (c, k) = (self.crop, self.context);
        let margin = self.chain.iter().map(|d| d.margin()).max().unwrap_or(0).max(k);
        let pick = |r: &mut Rng, v: usize| {
            if v >= c + 2 * margin { margin + r.below(v - c - 2 * margin + 1) } else { k + r.below(v - c - 2 * k + 1) }
        };
        let x = pick(rng, vw);
        (x, pick(rng, vh))
    }

    /// View `id` of the pool: a photo, a window of it (`prior_view` wide) and one draw of the
    /// degradation chain, all a pure function of (seed, id). Returns (clean, degraded, the
    /// noise level drawn: see [`apply_all_noted`]).
    pub fn synthetic_view(&self, id: u64) -> (Image, Image, Option<f32>) {
        let mut rng = Rng::derived(self.seed ^ 0x5649_4557_504F_4F4C, id);
        let ex = &self.examples[rng.below(self.examples.len())];
        let (w, h) = (ex.clean.width, ex.clean.height);
        let (vw, vh) = (self.prior_view.min(w), self.prior_view.min(h));
        let (vx, vy) = (rng.below(w - vw + 1), rng.below(h - vh + 1));
        let clean = ex.clean.region(vx, vy, vw, vh);
        let (degraded, level) = apply_all_noted(&self.chain, &clean, &mut rng);
        (clean, degraded, level)
    }

    /// The crop (and, with context k, the window k pixels wider on each side: the same
    /// flip and turn keep the crop at its centre), its clean target and the prior's input.
    fn draw(&self, rng: &mut Rng) -> (Image, Image, PriorInput, Option<Image>) {
        let idx = rng.below(self.examples.len());
        let ex = &self.examples[idx];
        let (w, h) = (ex.clean.width, ex.clean.height);
        let (c, k) = (self.crop, self.context);
        let flip = rng.coin();
        let turns = rng.below(4);
        let aug = |img: Image| {
            let img = if flip { img.flip_horizontal() } else { img };
            img.rot90(turns)
        };
        let with_context = |deg: &Image, x: usize, y: usize| (k > 0).then(|| aug(deg.crop(x - k, y - k, c + 2 * k, c + 2 * k)));
        match &ex.degraded {
            Some(d) => {
                let (x, y) = (k + rng.below(w - c - 2 * k + 1), k + rng.below(h - c - 2 * k + 1));
                let context = (k > 0).then(|| aug(d.region(x - k, y - k, c + 2 * k, c + 2 * k)));
                (aug(d.region(x, y, c, c)), aug(ex.clean.region(x, y, c, c)), PriorInput::WholeExample(idx), context)
            }
            None => {
                // Degrade a view around the crop, take the crop away from the view's border
                // where possible (blur kernels see real neighbours), and give the prior the view.
                let (vw, vh) = (self.prior_view.min(w), self.prior_view.min(h));
                let (vx, vy) = (rng.below(w - vw + 1), rng.below(h - vh + 1));
                let clean_view = ex.clean.region(vx, vy, vw, vh);
                let deg_view = apply_all(&self.chain, &clean_view, rng);
                let (cx, cy) = self.pick_crop(rng, vw, vh);
                let context = with_context(&deg_view, cx, cy);
                (aug(deg_view.crop(cx, cy, c, c)), aug(clean_view.crop(cx, cy, c, c)), PriorInput::View(aug(deg_view)), context)
            }
        }
    }
}

/// A fixed validation image: degraded once (seeded per image) and kept.
pub struct ValImage {
    pub name: String,
    pub clean: Image,
    pub degraded: Image,
    /// Whole degraded image (before the centre crop), for the prior.
    pub prior_source: Image,
    /// The noise level the degradation drew (for a frozen F that takes it); None for pairs.
    pub noise_level: Option<f32>,
}

pub fn load_validation(cfg: &DataConfig, chain: &[Degradation], seed: u64) -> Result<Vec<ValImage>> {
    let mut examples = Vec::new();
    load_clean(&cfg.val, cfg.max_side, 8, &[], &mut examples)?;
    load_pairs(&cfg.val_pairs, cfg.max_side, 8, &mut examples)?;
    if !cfg.val.is_empty() && chain.is_empty() {
        bail!("clean validation folders need a [[degradation]] chain");
    }
    let mut out = Vec::new();
    for (i, ex) in examples.into_iter().enumerate() {
        let clean_full = ex.clean.to_image();
        let (deg_full, noise_level) = match &ex.degraded {
            Some(d) => (d.to_image(), None),
            None => apply_all_noted(chain, &clean_full, &mut Rng::derived(seed ^ 0x5641_4C49_4441_5445, i as u64)),
        };
        let (w, h) = (clean_full.width, clean_full.height);
        let (cw, ch) = if cfg.val_crop == 0 { (w, h) } else { (cfg.val_crop.min(w), cfg.val_crop.min(h)) };
        let (x, y) = ((w - cw) / 2, (h - ch) / 2);
        out.push(ValImage {
            name: ex.name,
            clean: clean_full.crop(x, y, cw, ch),
            degraded: deg_full.crop(x, y, cw, ch),
            prior_source: deg_full,
            noise_level,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::degrade::GaussianNoise;

    fn write_png(path: &Path, w: u32, h: u32, seed: u8) {
        let buf: Vec<u8> = (0..w * h * 3).map(|i| (i as u8).wrapping_mul(seed)).collect();
        image::save_buffer(path, &buf, w, h, image::ColorType::Rgb8).unwrap();
    }

    fn config(dir: &Path) -> DataConfig {
        DataConfig::test_config(dir, 16, 40, 1)
    }

    /// `data.extra_scales`: each photo again at each factor (too-small copies left out), and a
    /// factor outside (0, 1) is refused by name.
    #[test]
    fn extra_scales_add_downscaled_copies_of_the_photos() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 80, 60, 3);
        let chain = vec![Degradation::GaussianNoise(GaussianNoise::white([25.0, 25.0]))];
        let mut cfg = config(dir.path());
        cfg.extra_scales = vec![0.5, 0.2];
        let set = TrainSet::load(&cfg, &chain, 3).unwrap();
        let sizes: Vec<_> = set.examples.iter().map(|e| (e.clean.width, e.clean.height)).collect();
        assert_eq!(sizes, [(80, 60), (40, 30)], "the 0.2 copy (16x12) is smaller than the 16-pixel crop");
        assert!(set.examples[1].name.ends_with("a.png@0.5"), "{}", set.examples[1].name);
        // The copy is the photo's content, averaged: its mean stays the original's.
        let (m0, m1) = (set.examples[0].clean.to_image().mean(), set.examples[1].clean.to_image().mean());
        assert!((m0 - m1).abs() < 2.0 / 255.0, "{m0} vs {m1}");
        for bad in [0.0, 1.0, 1.5] {
            cfg.extra_scales = vec![bad];
            let e = TrainSet::load(&cfg, &chain, 3).err().expect("a factor outside (0, 1) must be refused");
            assert!(format!("{e:#}").contains("data.extra_scales"), "{e:#}");
        }
    }

    #[test]
    fn held_out_photos_are_not_trained_on_and_unknown_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (i, n) in ["a.png", "b.png", "c.png"].iter().enumerate() {
            write_png(&dir.path().join(n), 48, 48, 3 + i as u8);
        }
        let chain = vec![Degradation::GaussianNoise(GaussianNoise::white([25.0, 25.0]))];
        let mut cfg = config(dir.path());
        cfg.hold_out = vec!["b.png".into()];
        let set = TrainSet::load(&cfg, &chain, 3).unwrap();
        let names: Vec<_> = set.examples.iter().map(|e| Path::new(&e.name).file_name().unwrap().to_owned()).collect();
        assert_eq!(names, ["a.png", "c.png"]);
        cfg.hold_out = vec!["b.png".into(), "typo.png".into()];
        let e = TrainSet::load(&cfg, &chain, 3).err().expect("an unknown hold_out name must be refused");
        assert!(format!("{e:#}").contains("typo.png"), "{e:#}");
    }

    /// The window around each crop: its centre is the crop itself after the flips and turns,
    /// for synthetic and paired data; too-small photos are skipped, too-small views refused.
    #[test]
    fn base_context_windows_are_centred_on_their_crops() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 50, 44, 3);
        write_png(&dir.path().join("small.png"), 30, 30, 5); // < 16 + 2 * 8 = 32
        let chain = vec![Degradation::GaussianNoise(GaussianNoise::white([25.0, 25.0]))];
        let mut cfg = config(dir.path());
        cfg.base_context = 8;
        let set = TrainSet::load(&cfg, &chain, 3).unwrap();
        assert_eq!(set.examples.len(), 1);
        let (k, c, cs) = (8, 16, 32);
        for step in 0..6 {
            let b = set.batch(step, 2);
            assert_eq!(b.context_degraded.len(), 2 * 3 * cs * cs);
            for i in 0..2 {
                for ch in 0..3 {
                    for y in 0..c {
                        for x in 0..c {
                            let crop = b.degraded[((i * 3 + ch) * c + y) * c + x];
                            let ctx = b.context_degraded[((i * 3 + ch) * cs + y + k) * cs + x + k];
                            assert_eq!(crop, ctx, "step {step} sample {i} ({ch},{y},{x})");
                        }
                    }
                }
            }
        }
        cfg.prior_view = 24;
        let err = TrainSet::load(&cfg, &chain, 3).err().expect("a view narrower than crop + context is refused");
        assert!(err.to_string().contains("prior_view"), "{err}");
    }

    #[test]
    fn batches_are_reproducible_and_unreadable_files_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        write_png(&dir.path().join("a.png"), 50, 40, 3);
        write_png(&dir.path().join("b.png"), 30, 60, 7);
        std::fs::write(dir.path().join("broken.png"), b"not a png").unwrap();
        write_png(&dir.path().join("tiny.png"), 8, 8, 1);
        let chain = vec![Degradation::GaussianNoise(GaussianNoise::white([25.0, 25.0]))];
        let set = TrainSet::load(&config(dir.path()), &chain, 42).unwrap();
        assert_eq!(set.examples.len(), 2);
        let b1 = set.batch(5, 3);
        let b2 = set.batch(5, 3);
        let b3 = set.batch(6, 3);
        assert_eq!(b1.degraded, b2.degraded);
        assert_eq!(b1.clean, b2.clean);
        assert_ne!(b1.clean, b3.clean);
        assert_eq!(b1.degraded.len(), 3 * 3 * 16 * 16);
        // The degradation is noise: degraded differs from clean by about sigma 25/255.
        let d: f64 = b1.degraded.iter().zip(&b1.clean).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>();
        let rms = (d / b1.clean.len() as f64).sqrt() * 255.0;
        assert!((15.0..27.0).contains(&rms), "rms {rms}");
        for p in &b1.prior_inputs {
            match p {
                PriorInput::View(v) => assert!(v.width >= 16 && v.height >= 16 && v.width <= 40 && v.height <= 40),
                PriorInput::WholeExample(_) => panic!("synthetic data gives views"),
            }
        }
    }

    #[test]
    fn paired_folders_match_by_name_and_crops_align() {
        let dir = tempfile::tempdir().unwrap();
        let (d, c) = (dir.path().join("low"), dir.path().join("high"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::create_dir_all(&c).unwrap();
        // Degraded = clean with every value halved: the pairing must keep that relation.
        let clean: Vec<u8> = (0..32 * 24 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let dark: Vec<u8> = clean.iter().map(|v| v / 2).collect();
        image::save_buffer(c.join("x.png"), &clean, 32, 24, image::ColorType::Rgb8).unwrap();
        image::save_buffer(d.join("x.png"), &dark, 32, 24, image::ColorType::Rgb8).unwrap();
        write_png(&d.join("orphan.png"), 32, 24, 5);
        let mut cfg = config(dir.path());
        cfg.train = vec![];
        cfg.train_pairs = vec![PairedDirs { degraded: d, clean: c }];
        let set = TrainSet::load(&cfg, &[], 1).unwrap();
        assert_eq!(set.examples.len(), 1);
        let b = set.batch(0, 4);
        for (dv, cv) in b.degraded.iter().zip(&b.clean) {
            let expect = ((cv * 255.0).round() as u8 / 2) as f32 / 255.0;
            assert!((dv - expect).abs() < 1e-6);
        }
        assert!(matches!(b.prior_inputs[0], PriorInput::WholeExample(0)));
    }

    #[test]
    fn missing_folder_and_empty_set_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let chain = vec![Degradation::GaussianNoise(GaussianNoise::white([5.0, 5.0]))];
        assert!(TrainSet::load(&config(&dir.path().join("nope")), &chain, 1).is_err());
        let err = TrainSet::load(&config(dir.path()), &chain, 1).err().unwrap().to_string();
        assert!(err.contains("no usable training images"), "{err}");
    }
}
