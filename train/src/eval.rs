//! `train eval`: the run's latest checkpoint on its validation images (base F vs refined R vs
//! the degraded input), per image and on average, and the squared error split by clean value
//! (near 0/255 against mid-tones); results also go to eval.json in the run
//! (eval-other-photos.json with `--val`).

use crate::checkpoint::Checkpoint;
use crate::evaluate::{ValueSplit, score_all};
use crate::fit::{param_store_from_checkpoint, prepared_validation};
use crate::run::RunDir;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// `crop`: validation centre-crop side overriding the recipe's (`full` = whole images).
/// `val`: clean photo folders scored instead of the recipe's validation (degraded by the
/// recipe's chain with its validation seed), e.g. photos the recipe's `data.hold_out` kept
/// from training.
pub fn eval(run_dir: &Path, full: bool, crop: Option<usize>, val_dirs: &[PathBuf], save_images: Option<&Path>) -> Result<()> {
    let mut run = RunDir::open(run_dir)?;
    if !val_dirs.is_empty() {
        run.recipe.data.val = val_dirs.to_vec();
        run.recipe.data.val_pairs.clear();
    }
    let ck = Checkpoint::read(&run.checkpoint()).context("the run has no checkpoint yet")?;
    let mut store = param_store_from_checkpoint(&ck, false, run.recipe.seed)?;
    let val = prepared_validation(&run, if full { Some(0) } else { crop })?;
    let (per, mean, outputs) = score_all(&mut store, &run.model, &val, true)?;
    println!(
        "{} at step {} ({} validation images{})",
        run.recipe.name,
        ck.state.step,
        val.len(),
        if full { ", whole".to_string() } else { format!(", {}-pixel centre crops", crop.unwrap_or(run.recipe.data.val_crop)) }
    );
    println!("{:<28} {:>8} {:>8} {:>8}   {:>7} {:>7} {:>7}", "image", "PSNR in", "base", "refined", "SSIM in", "base", "refined");
    let row = |name: &str, s: &crate::evaluate::Scores| {
        println!(
            "{:<28} {:>8.2} {:>8.2} {:>8.2}   {:>7.4} {:>7.4} {:>7.4}",
            name, s.psnr_input, s.psnr_base, s.psnr_refined, s.ssim_input, s.ssim_base, s.ssim_refined
        )
    };
    for (name, s) in &per {
        let short = Path::new(name).file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or(name.clone());
        row(&short, s);
    }
    row("mean", &mean);
    let split = ValueSplit::of(val.iter().zip(&outputs).map(|(p, (b, r))| (&p.val.clean, b, r)));
    let line = |what: &str, share: f64, base: f64, refined: f64, corr: f64| {
        println!(
            "{what} ({:.1} % of channel values): MSE base {base:.1} -> refined {refined:.1} levels^2 ({:+.2} dB), \
             correlation of R's change with F's error {corr:.3}",
            100.0 * share,
            ValueSplit::gain_db(base, refined)
        )
    };
    line("clean value near 0/255", split.near_share, split.near_mse_base, split.near_mse_refined, split.near_correlation);
    line("mid-tones", 1.0 - split.near_share, split.mid_mse_base, split.mid_mse_refined, split.mid_correlation);
    let (params_base, params_refiner) = ptgrm_model::export::parameter_counts(&run.model).map_err(|e| anyhow::anyhow!(e))?;
    let json = serde_json::json!({
        "recipe": run.recipe.name,
        "parameters_base": params_base,
        "parameters_refiner": params_refiner,
        "step": ck.state.step,
        "whole_images": full,
        "validation": run.recipe.data.val,
        "mean": mean.to_map(""),
        "by_clean_value": {
            "near_0_or_255_share": split.near_share,
            "near_mse_base": split.near_mse_base,
            "near_mse_refined": split.near_mse_refined,
            "mid_mse_base": split.mid_mse_base,
            "mid_mse_refined": split.mid_mse_refined,
            "near_correlation": split.near_correlation,
            "mid_correlation": split.mid_correlation,
        },
        "images": per.iter().map(|(n, s)| serde_json::json!({"name": n, "scores": s.to_map("")})).collect::<Vec<_>>(),
    });
    // Other photos go to their own file: eval.json stays the score on the recipe's validation
    // (scripts/results.py and scripts/ablations.sh read it).
    let json_name = if val_dirs.is_empty() { "eval.json" } else { "eval-other-photos.json" };
    std::fs::write(run.dir.join(json_name), serde_json::to_string_pretty(&json)?)?;
    if let Some(dir) = save_images {
        std::fs::create_dir_all(dir)?;
        for (p, (base, refined)) in val.iter().zip(&outputs) {
            let stem = Path::new(&p.val.name).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            p.val.degraded.save_png(&dir.join(format!("{stem}-input.png")))?;
            base.save_png(&dir.join(format!("{stem}-base.png")))?;
            refined.save_png(&dir.join(format!("{stem}-refined.png")))?;
            p.val.clean.save_png(&dir.join(format!("{stem}-clean.png")))?;
        }
    }
    Ok(())
}
