//! `ptgrm info`: what a bundle is, where it came from, and what it runs on here.

use crate::engine_args::{EngineArgs, load_engine, model_dir};
use clap::Args;
use ptgrm::{Manifest, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Model bundle directory (default: $PTGRM_MODEL, then the installed models/lowlight).
    model: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: &InfoArgs) -> Result<()> {
    let dir = model_dir(args.model.as_deref())?;
    let manifest = Manifest::read(&dir)?;
    // The available list needs ONNX Runtime; its absence is reported by the load below.
    let available = ptgrm::ortlib::available_providers();
    if !args.json {
        print_manifest(&dir, &manifest);
        match &available {
            Ok(list) => println!("providers available: {}", list.join(", ")),
            Err(e) => println!("providers available: unknown ({e})"),
        }
    }
    let engine = load_engine(&dir, &args.engine.options())?;
    if args.json {
        let doc = json!({
            "bundle": dir,
            "manifest": manifest,
            "total_parameters": total_parameters(&manifest),
            "providers_available": available.unwrap_or_default(),
            "active_provider": engine.active_provider().name(),
            "provider_log": engine.provider_log(),
        });
        println!("{}", serde_json::to_string_pretty(&doc).expect("JSON values serialize"));
    } else {
        println!("active provider: {}", engine.active_provider().name());
        for line in engine.provider_log() {
            println!("  fallback: {line}");
        }
    }
    Ok(())
}

fn total_parameters(m: &Manifest) -> u64 {
    m.graphs.iter().map(|(_, g)| g.parameters).sum()
}

fn print_manifest(dir: &Path, m: &Manifest) {
    println!("bundle: {}", dir.display());
    println!("name: {} (task {}, format {} v{})", m.name, m.task, m.format, m.format_version);
    if !m.description.is_empty() {
        println!("description: {}", m.description);
    }
    println!("input range: [{}, {}], pad multiple {}", m.input_range[0], m.input_range[1], m.pad_multiple);
    let prior_size = m.prior.input_size.map(|[w, h]| format!(", resized to {w}x{h}")).unwrap_or_default();
    let grid = m.prior.grid.map(|k| format!(", {k}x{k} cells of {}", m.prior.dim / (k * k).max(1))).unwrap_or_default();
    println!("prior: {} (dim {}{grid}{prior_size})", m.prior.kind, m.prior.dim);
    println!("graphs:");
    for (role, g) in m.graphs.iter() {
        println!("  {role:<8} {:<24} {:>10} parameters  ({}) -> ({})", g.file, g.parameters, g.inputs.join(", "), g.outputs.join(", "));
    }
    println!("  total    {:<24} {:>10} parameters", "", total_parameters(m));
    print_provenance(m);
}

fn print_provenance(m: &Manifest) {
    let p = &m.provenance;
    println!("provenance:");
    if let Some(recipe) = &p.recipe {
        println!("  recipe: {recipe}");
    }
    if let Some(command) = &p.command {
        println!("  command: {command}");
    }
    for d in &p.data {
        println!("  data: {d}");
    }
    println!("  steps: {}, wall time {:.0} s", p.steps, p.wall_time_s);
    for (name, value) in &p.metrics {
        println!("  metric {name}: {value}");
    }
    for t in &p.third_party {
        println!("  third-party {}: {} {} {} (licence {}, sha256 {})", t.role, t.package, t.version, t.file, t.licence, t.sha256);
    }
    if let Some(note) = &p.note {
        println!("  note: {note}");
    }
}
