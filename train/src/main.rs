//! `train`: fits PTG-RM (with a built-in or external base F) from a recipe, evaluates runs and
//! exports ptgrm bundles. See docs/training.md.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "train", version, about = "Train PTG-RM models and export ptgrm bundles")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train from a recipe into a run directory (or continue one with --resume).
    Fit {
        #[arg(long)]
        recipe: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        resume: bool,
        /// Stop after this many steps in this session (checkpointed; resume later).
        #[arg(long)]
        stop_after: Option<u64>,
        /// Only errors and the final summary.
        #[arg(long)]
        quiet: bool,
    },
    /// Write a ptgrm bundle from a run's checkpoint.
    Export {
        #[arg(long)]
        run: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
    /// Score a run's checkpoint on its validation images (base vs refined PSNR/SSIM).
    Eval {
        #[arg(long)]
        run: PathBuf,
        /// Whole validation images instead of the recipe's centre crops.
        #[arg(long)]
        full: bool,
        /// Centre-crop side instead of the recipe's `val_crop`.
        #[arg(long, conflicts_with = "full")]
        crop: Option<usize>,
        /// Also write input/base/refined/clean PNGs here.
        #[arg(long)]
        save_images: Option<PathBuf>,
    },
    /// Time training steps of a recipe (data, prior and optimizer step separately).
    Bench {
        #[arg(long)]
        recipe: PathBuf,
        #[arg(long, default_value_t = 20)]
        steps: u64,
        /// Override the recipe's batch size.
        #[arg(long)]
        batch: Option<usize>,
        /// Override the recipe's crop size.
        #[arg(long)]
        crop: Option<usize>,
    },
    /// Lay the same window of several images out as a grid PNG (before/after figures).
    Grid {
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// One row: comma-separated image files, left to right (repeat for more rows).
        #[arg(long = "row", required = true)]
        rows: Vec<String>,
        /// Side of the square window cut from every image.
        #[arg(long, default_value_t = 192)]
        crop: usize,
        /// Window centre as fractions of width and height, "FX,FY".
        #[arg(long, default_value = "0.5,0.5")]
        centre: String,
    },
}

fn grid(out: &std::path::Path, rows: &[String], crop: usize, centre: &str) -> anyhow::Result<()> {
    let centre = match centre.split_once(',').map(|(x, y)| (x.trim().parse::<f64>(), y.trim().parse::<f64>())) {
        Some((Ok(x), Ok(y))) if (0.0..=1.0).contains(&x) && (0.0..=1.0).contains(&y) => (x, y),
        _ => anyhow::bail!("--centre {centre:?}: expected two fractions in [0, 1] such as 0.5,0.5"),
    };
    let rows: Vec<Vec<PathBuf>> = rows.iter().map(|r| r.split(',').map(PathBuf::from).collect()).collect();
    ptgrm_train::grid::grid(&ptgrm_train::grid::GridOptions { rows: &rows, crop, centre, out })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Fit { recipe, out, resume, stop_after, quiet } => ptgrm_train::fit::fit(&ptgrm_train::fit::FitOptions {
            recipe: recipe.as_deref(),
            out: &out,
            resume,
            stop_after,
            quiet,
        }),
        Cmd::Export { run, out } => ptgrm_train::export::export(&run, &out).map(|m| {
            let n: u64 = m.graphs.iter().map(|(_, g)| g.parameters).sum();
            println!("wrote bundle {} ({} {}, {} trained parameters, step {})", out.display(), m.name, m.task, n, m.provenance.steps);
        }),
        Cmd::Eval { run, full, crop, save_images } => ptgrm_train::eval::eval(&run, full, crop, save_images.as_deref()),
        Cmd::Bench { recipe, steps, batch, crop } => ptgrm_train::bench::bench(&recipe, steps, batch, crop),
        Cmd::Grid { out, rows, crop, centre } => grid(&out, &rows, crop, &centre),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("train: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
