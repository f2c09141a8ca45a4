//! `ptgrm-model`: model-side tools.
//!
//! - `write-test-bundle --out DIR [--layout split|merged] [--seed S] [--no-prior] [MODEL FLAGS]`
//!   writes an untrained bundle for tests, demos and speed measurements of a configuration.
//! - `params [MODEL FLAGS]` prints the parameter counts of F and R.
//! - `import-mobilenet-v2`, `import-ffdnet`, `import-ffdnet-prior`: third-party PyTorch
//!   weights -> ONNX prior / base graphs (see `ptgrm_model::import::cli`).

use ptgrm_model::base::{BaseBlock, BaseConfig, BaseHead, BaseView};
use ptgrm_model::export::{ModelConfig, parameter_counts};
use ptgrm_model::ptgrm::{ABLATIONS, RefinerConfig};
use ptgrm_model::test_bundle::{Layout, TestBundleOptions, write_test_bundle};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage:
  ptgrm-model write-test-bundle --out DIR [--layout split|merged] [--seed S] [--no-prior] [MODEL FLAGS]
  ptgrm-model params [MODEL FLAGS]
    MODEL FLAGS: [--prior-dim D] [--ablation NAME] [--base-block naf|res] [--base-head residual|affine] [--base-width W]
                 [--base-scale 1|2|4|8] [--base-view pooled|unshuffled] [--phase-window 0|2|4|8] [--smooth-upsampling] [--smooth-cells] [--refiner-scale 1|2|4|8] [--fused-upsampling]
  ptgrm-model import-mobilenet-v2 --pth P --out prior.onnx [--with-logits] [--exposure-mean M]
  ptgrm-model import-ffdnet --pth P --sigma S --out base.onnx
  ptgrm-model import-ffdnet-prior --pth P --sigma S [--layer L] [--size PX] --out prior.onnx";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ptgrm-model: {e}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// `--flag value` pairs and bare `--switch`es after the subcommand.
struct Flags(Vec<(String, Option<String>)>);

impl Flags {
    fn parse(args: &[String], switches: &[&str], valued: &[&str]) -> Result<Flags, String> {
        let mut out = Vec::new();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            if switches.contains(&a.as_str()) {
                out.push((a.clone(), None));
            } else if valued.contains(&a.as_str()) {
                let v = it.next().ok_or(format!("{a} needs a value"))?;
                out.push((a.clone(), Some(v.clone())));
            } else {
                return Err(format!("unknown argument {a:?}"));
            }
        }
        Ok(Flags(out))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }

    fn number<T: std::str::FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("{name} {v:?} is not a valid number")),
        }
    }
}

/// Flags that shape the networks (shared by write-test-bundle and params).
/// Model flags without a value.
const MODEL_SWITCHES: &[&str] = &["--fused-upsampling", "--smooth-upsampling", "--smooth-cells"];
const MODEL_FLAGS: &[&str] = &[
    "--prior-dim",
    "--ablation",
    "--base-block",
    "--base-head",
    "--base-width",
    "--base-scale",
    "--base-view",
    "--phase-window",
    "--refiner-scale",
];

fn model_config(f: &Flags, default_prior_dim: usize) -> Result<ModelConfig, String> {
    let mut refiner = RefinerConfig::paper(f.number("--prior-dim", default_prior_dim)?);
    if let Some(a) = f.get("--ablation") {
        refiner = refiner.ablation(a)?;
    }
    refiner.internal_scale = f.number("--refiner-scale", 1)?;
    refiner.fused_upsampling = f.has("--fused-upsampling");
    let block = match f.get("--base-block").unwrap_or("naf") {
        "naf" => BaseBlock::Naf,
        "res" => BaseBlock::Res,
        other => return Err(format!("--base-block {other:?}: expected naf or res")),
    };
    let head = match f.get("--base-head").unwrap_or("residual") {
        "residual" => BaseHead::Residual,
        "affine" => BaseHead::Affine,
        other => return Err(format!("--base-head {other:?}: expected residual or affine")),
    };
    let view = match f.get("--base-view").unwrap_or("pooled") {
        "pooled" => BaseView::Pooled,
        "unshuffled" => BaseView::Unshuffled,
        other => return Err(format!("--base-view {other:?}: expected pooled or unshuffled")),
    };
    let base = BaseConfig {
        block,
        head,
        view,
        width: f.number("--base-width", BaseConfig::default().width)?,
        internal_scale: f.number("--base-scale", 1)?,
        phase_window: f.number("--phase-window", 0)?,
        smooth_upsampling: f.has("--smooth-upsampling"),
        smooth_cells: f.has("--smooth-cells"),
        ..Default::default()
    };
    let cfg = ModelConfig { base: Some(base), refiner };
    cfg.validate()?;
    Ok(cfg)
}

fn run(args: &[String]) -> Result<(), String> {
    let (cmd, rest) = args.split_first().ok_or("missing command")?;
    match cmd.as_str() {
        "write-test-bundle" => {
            let f =
                Flags::parse(rest, &[&["--no-prior"], MODEL_SWITCHES].concat(), &[&["--out", "--layout", "--seed"], MODEL_FLAGS].concat())?;
            let out = PathBuf::from(f.get("--out").ok_or("--out DIR is required")?);
            let layout = match f.get("--layout").unwrap_or("split") {
                "split" => Layout::Split,
                "merged" => Layout::Merged,
                other => return Err(format!("--layout {other:?}: expected split or merged")),
            };
            let model = model_config(&f, 64)?;
            let opts = TestBundleOptions {
                layout,
                prior_dim: model.refiner.prior_dim,
                seed: f.number("--seed", 0)?,
                prior_graph: !f.has("--no-prior"),
                model,
                command: Some(format!("ptgrm-model {}", args.join(" "))),
            };
            let m = write_test_bundle(&out, &opts)?;
            println!("wrote {} to {} (pad multiple {}, prior dim {})", m.name, out.display(), m.pad_multiple, m.prior.dim);
            for (role, g) in m.graphs.iter() {
                println!("  {role:8} {:14} {:>9} parameters", g.file, g.parameters);
            }
            Ok(())
        }
        "params" => {
            let f = Flags::parse(rest, MODEL_SWITCHES, MODEL_FLAGS)?;
            let cfg = model_config(&f, 1280)?;
            let (b, r) = parameter_counts(&cfg)?;
            println!("base F:     {b:>9} parameters");
            println!("refiner R:  {r:>9} parameters (prior dim {})", cfg.refiner.prior_dim);
            println!("pad multiple {}; ablations: {}", cfg.pad_multiple(), ABLATIONS.join(", "));
            Ok(())
        }
        // third-party weights -> ONNX (ptgrm_model::import::cli); prints the manifest record
        c if ptgrm_model::import::cli::SUBCOMMANDS.contains(&c) => {
            println!("{}", ptgrm_model::import::cli::run(c, rest)?);
            Ok(())
        }
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}
