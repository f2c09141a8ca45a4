//! A run directory: the recipe text it was started from, the checkpoint, metrics and plot.
//! `fit`, `eval` and `export` all read the recipe from here, so a run stays self-describing
//! even if the recipe file changes later.

use crate::recipe::{BaseSpec, Recipe};
use anyhow::{Context, Result, anyhow, bail};
use burn::tensor::Device;
use ptgrm_model::export::ModelConfig;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const RECIPE_FILE: &str = "recipe.toml";
pub const RUN_FILE: &str = "run.json";
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
pub const METRICS_FILE: &str = "metrics.csv";
pub const PLOT_FILE: &str = "plot.png";

/// Where the recipe came from (kept for the bundle's provenance).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    pub recipe_path: String,
    pub command: String,
    /// Steps added to the recipe's `train.steps` by `train fit --resume --extend-steps N`
    /// (summed over extensions). The recipe text stays as it was; the schedule is the recipe's
    /// over the new total, i.e. the run continues as if it had been started with
    /// `steps = recipe + extended_steps`: warm-up unchanged, cosine stretched to the new end.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub extended_steps: u64,
}

impl RunInfo {
    /// The directory `train fit` created the run in (the `--out` of [`RunInfo::command`]); the
    /// run may since have been snapshotted or copied elsewhere.
    pub fn fit_out(&self) -> Option<&str> {
        self.command.strip_prefix("train fit --recipe ")?.rsplit_once(" --out ").map(|(_, out)| out)
    }

    /// The commands that leave this run's state in `at`: its fit, its warm restarts in the fit's
    /// own directory (where they may have run on a copy: the result is the same, and a copy
    /// that is already extended must not be extended again), and a snapshot to `at` when that
    /// is another directory, so that a recipe whose `train.init_from` names `at` finds it there.
    pub fn commands_to(&self, at: &Path) -> String {
        let fit_out = self.fit_out().map(PathBuf::from).unwrap_or_else(|| at.to_path_buf());
        let mut commands = self.command.clone();
        if self.extended_steps > 0 {
            commands += &format!(" && train fit --out {} --resume --extend-steps {}", fit_out.display(), self.extended_steps);
        }
        if fit_out != at {
            commands += &format!(" && train snapshot --run {} --out {}", fit_out.display(), at.display());
        }
        commands
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

pub struct RunDir {
    pub dir: PathBuf,
    pub recipe: Recipe,
    pub recipe_text: String,
    pub info: RunInfo,
    pub model: ModelConfig,
}

impl RunDir {
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join(CHECKPOINT_FILE)
    }

    /// Opens an existing run.
    pub fn open(dir: &Path) -> Result<RunDir> {
        let rpath = dir.join(RECIPE_FILE);
        if !rpath.exists() {
            bail!(
                "{} is not a run directory (no {RECIPE_FILE}); start one with `train fit --recipe R --out {}`",
                dir.display(),
                dir.display()
            );
        }
        let recipe_text = std::fs::read_to_string(&rpath).with_context(|| format!("reading {}", rpath.display()))?;
        let recipe = Recipe::parse(&recipe_text, &rpath.display().to_string())?;
        let info: RunInfo = serde_json::from_str(
            &std::fs::read_to_string(dir.join(RUN_FILE)).with_context(|| format!("reading {}", dir.join(RUN_FILE).display()))?,
        )?;
        let model = model_config(&recipe)?;
        let mut recipe = recipe;
        recipe.train.steps += info.extended_steps;
        Ok(RunDir { dir: dir.to_path_buf(), recipe, recipe_text, info, model })
    }

    /// Lengthens the schedule by `steps` (recorded in run.json; see [`RunInfo::extended_steps`]).
    pub fn extend(&mut self, steps: u64) -> Result<()> {
        if steps == 0 {
            bail!("--extend-steps must be at least 1");
        }
        self.info.extended_steps += steps;
        self.recipe.train.steps += steps;
        let path = self.dir.join(RUN_FILE);
        std::fs::write(&path, serde_json::to_string_pretty(&self.info)?).with_context(|| format!("writing {}", path.display()))
    }

    /// Creates a run from a recipe file; refuses a directory that already holds a run.
    pub fn create(dir: &Path, recipe_path: &Path) -> Result<RunDir> {
        let (recipe, recipe_text) = Recipe::load(recipe_path)?;
        let model = model_config(&recipe)?;
        if dir.join(RECIPE_FILE).exists() {
            bail!("{} already holds a run; pass --resume to continue it, or choose another --out", dir.display());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join(RECIPE_FILE), &recipe_text)?;
        let info = RunInfo {
            recipe_path: recipe_path.display().to_string(),
            command: format!("train fit --recipe {} --out {}", recipe_path.display(), dir.display()),
            extended_steps: 0,
        };
        std::fs::write(dir.join(RUN_FILE), serde_json::to_string_pretty(&info)?)?;
        Ok(RunDir { dir: dir.to_path_buf(), recipe, recipe_text, info, model })
    }
}

/// Files that make a run resumable anywhere: the recipe it started from, its run record, the
/// latest checkpoint (parameters, Adam moments, loop state) and the loss curve so far.
pub const SNAPSHOT_FILES: [&str; 4] = [RECIPE_FILE, RUN_FILE, CHECKPOINT_FILE, METRICS_FILE];

/// Copies a run's resumable state into `to` (e.g. `checkpoints/NAME/` in the repository),
/// replacing what was there, so the tree holds only the latest checkpoint of each run. The
/// copy is itself a run directory: `train fit --out <copy> --resume` continues it on any
/// machine. Returns the bytes written.
pub fn snapshot(run: &Path, to: &Path) -> Result<u64> {
    let ck = run.join(CHECKPOINT_FILE);
    if !ck.exists() {
        bail!("{} has no checkpoint yet (a run writes one every train.checkpoint_every steps)", run.display());
    }
    RunDir::open(run)?;
    let name = to.file_name().ok_or_else(|| anyhow!("{}: not a directory name", to.display()))?;
    let tmp = to.with_file_name(format!(".{}.partial", name.to_string_lossy()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut bytes = 0;
    for f in SNAPSHOT_FILES {
        let src = run.join(f);
        if src.exists() {
            bytes += std::fs::copy(&src, tmp.join(f)).with_context(|| format!("copying {}", src.display()))?;
        }
    }
    if to.exists() {
        std::fs::remove_dir_all(to).with_context(|| format!("replacing {}", to.display()))?;
    }
    std::fs::rename(&tmp, to).with_context(|| format!("moving the snapshot to {}", to.display()))?;
    Ok(bytes)
}

/// The model configuration a recipe describes: `[model.base]` / `[model.refiner]` over the
/// model crate's defaults, F present exactly when the recipe's base is built in, and the
/// refiner's prior length equal to the prior's.
pub fn model_config(recipe: &Recipe) -> Result<ModelConfig> {
    let mut table = recipe.model.clone();
    let builtin = matches!(recipe.base, BaseSpec::Builtin);
    if builtin && !table.contains_key("base") {
        table.insert("base".into(), toml::Value::Table(toml::Table::new()));
    }
    if !builtin && table.contains_key("base") {
        bail!("[model.base] configures the built-in F, but base.kind is \"onnx\"");
    }
    let explicit_dim = table.get("refiner").and_then(|r| r.get("prior_dim")).and_then(|v| v.as_integer());
    // `[model] ablation = "no-prior"` etc.: one of the issue-5 / Table 3 variants of R.
    let ablation = match table.remove("ablation") {
        None => None,
        Some(toml::Value::String(s)) => Some(s),
        Some(other) => bail!("model.ablation must be a string such as \"no-prior\", not {other}"),
    };
    let mut cfg: ModelConfig = toml::Value::Table(table).try_into().context("[model] table")?;
    if let Some(d) = recipe.prior.dim {
        if explicit_dim.is_some_and(|e| e as usize != d) {
            bail!("model.refiner.prior_dim {} differs from prior.dim {d}", explicit_dim.unwrap());
        }
        cfg.refiner.prior_dim = d;
    }
    if let Some(name) = ablation {
        cfg.refiner = cfg.refiner.ablation(&name).map_err(|e| anyhow!("model.ablation: {e}"))?;
    }
    cfg.validate().map_err(|e| anyhow!(e))?;
    Ok(cfg)
}

/// The training device: burn's CPU `flex` backend, or CUDA with the `cuda` feature.
pub fn device() -> Device {
    #[cfg(feature = "cuda")]
    {
        Device::cuda(0)
    }
    #[cfg(not(feature = "cuda"))]
    {
        Device::flex()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(model: &str) -> Recipe {
        let text = format!(
            "name = \"t\"\ntask = \"lowlight\"\nseed = 1\n{model}\n[base]\nkind = \"builtin\"\n[prior]\nkind = \"none\"\n\
             [data]\ntrain = [\"x\"]\nval = [\"y\"]\n[[degradation]]\nkind = \"gaussian_noise\"\nsigma = [5, 5]\n\
             [train]\nsteps = 10\nbatch = 1\nlr = 1e-4\nlr_min = 1e-6\nwarmup_steps = 1\nval_every = 5\n"
        );
        Recipe::parse(&text, "test").unwrap()
    }

    #[test]
    fn model_ablation_key_selects_a_table_3_variant() {
        let full = model_config(&recipe("")).unwrap();
        assert!(full.refiner.sve && full.refiner.position_embedding);
        let no_sve = model_config(&recipe("[model]\nablation = \"no-sve\"")).unwrap();
        assert!(!no_sve.refiner.sve && no_sve.refiner.position_embedding);
        // Applied on top of the recipe's own refiner keys.
        let scaled = model_config(&recipe("[model]\nablation = \"no-pos\"\n[model.refiner]\nnf = 8")).unwrap();
        assert!(!scaled.refiner.position_embedding && scaled.refiner.nf == 8);
        let e = format!("{:#}", model_config(&recipe("[model]\nablation = \"no-such\"")).unwrap_err());
        assert!(e.contains("model.ablation") && e.contains("no-prior"), "{e}");
        let e = format!("{:#}", model_config(&recipe("[model]\nablation = 3")).unwrap_err());
        assert!(e.contains("must be a string"), "{e}");
    }
}
