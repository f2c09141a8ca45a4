//! `train export`: a run's checkpoint -> a ptgrm bundle (ONNX graphs from the model crate's
//! exporter with the trained parameters, plus the prior and any external F), with a manifest
//! whose provenance says how to reproduce it.

use crate::checkpoint::Checkpoint;
use crate::onnx_run::OnnxGraph;
use crate::recipe::BaseSpec;
use crate::run::RunDir;
use anyhow::{Context, Result, anyhow, bail};
use ptgrm_bundle::{FORMAT_NAME, FORMAT_VERSION, GraphFile, Graphs, Manifest, PriorSpec, Provenance, io, write_bundle};
use ptgrm_model::export::{merged_graph, refiner_graph};
use ptgrm_model::onnx_builder::ParamSource;
use ptgrm_model::params::count_prefix;
use std::path::{Path, PathBuf};

fn graph_file(file: &str, inputs: &[String], outputs: &[String], parameters: u64) -> GraphFile {
    // sha256 is filled in by write_bundle.
    GraphFile { file: file.into(), sha256: String::new(), inputs: inputs.to_vec(), outputs: outputs.to_vec(), parameters }
}

/// Checks a frozen ONNX graph has the tensor names its bundle role requires.
fn check_io(path: &Path, inputs: &[&str], outputs: &[&str]) -> Result<(Vec<String>, Vec<String>)> {
    let g = OnnxGraph::load(path, None)?;
    let (ins, outs) = g.io_names();
    for want in inputs {
        if !ins.iter().any(|i| i == want) {
            bail!("{} must have an input named {want:?} (it has {ins:?})", path.display());
        }
    }
    for want in outputs {
        if !outs.iter().any(|o| o == want) {
            bail!("{} must have an output named {want:?} (it has {outs:?})", path.display());
        }
    }
    Ok((ins, outs))
}

/// One line per data folder: path, image count and a digest of the (name, content) list, so
/// the manifest pins the exact data.
pub fn describe_folder(dir: &Path) -> String {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect(),
        Err(e) => return format!("{}: unreadable ({e})", dir.display()),
    };
    entries.sort();
    let mut listing = String::new();
    for p in &entries {
        let digest = std::fs::read(p).map(|b| ptgrm_bundle::sha256_hex(&b)).unwrap_or_default();
        listing.push_str(&format!("{} {}\n", digest, p.file_name().unwrap().to_string_lossy()));
    }
    format!(
        "{}: {} files, sha256 of the sorted 'sha256 name' listing {}",
        dir.display(),
        entries.len(),
        ptgrm_bundle::sha256_hex(listing.as_bytes())
    )
}

/// The weight tensors of an ONNX graph (initializers of 64+ values), as sorted digests, so
/// two graphs can be checked to hold the same network whatever their tensor names.
fn weight_digests(path: &Path) -> Result<Vec<String>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let model = ptgrm_model::onnx_proto::decode_model(&bytes).map_err(|e| anyhow!("{}: not an ONNX model: {e}", path.display()))?;
    let mut out: Vec<String> = model
        .graph
        .iter()
        .flat_map(|g| &g.initializer)
        .filter(|t| t.dims.iter().product::<i64>() >= 64)
        .map(|t| {
            let raw = t.raw_data.clone().unwrap_or_else(|| t.float_data.iter().flat_map(|v| v.to_le_bytes()).collect());
            format!("{:?} {}", t.dims, ptgrm_bundle::sha256_hex(&raw))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// The frozen F a bundle ships in place of the recipe's: the graph trained with may take the
/// noise level as an input (one refiner trained over a range of levels), which a bundle cannot
/// feed, so each bundle pairs R with F at one fixed level. It must be the same network: the
/// same weights, `image` in and `base` out, and no level input.
fn replacement_base(recipe_base: &Path, given: &Path) -> Result<(Vec<String>, Vec<String>)> {
    let (ins, outs) = check_io(given, &[io::IMAGE], &[io::BASE])?;
    if ins.len() != 1 {
        bail!("--base {} must take the image only (it has inputs {ins:?})", given.display());
    }
    let (want, have) = (weight_digests(recipe_base)?, weight_digests(given)?);
    if want != have {
        bail!(
            "--base {} does not hold the weights of the recipe's base {} ({} and {} weight tensors, not the same): pass the same network at a fixed level",
            given.display(),
            recipe_base.display(),
            have.len(),
            want.len()
        );
    }
    Ok((ins, outs))
}

/// Options of `train export` beyond the run and the destination.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Ship this graph as F instead of the recipe's (see [`replacement_base`]).
    pub base: Option<PathBuf>,
}

pub fn export(run_dir: &Path, out: &Path) -> Result<Manifest> {
    export_with(run_dir, out, &ExportOptions::default())
}

pub fn export_with(run_dir: &Path, out: &Path, opts: &ExportOptions) -> Result<Manifest> {
    let run = RunDir::open(run_dir)?;
    let ck = Checkpoint::read(&run.checkpoint()).context("the run has no checkpoint yet; train it first")?;
    let params = ck.groups.get("param").ok_or_else(|| anyhow!("checkpoint holds no parameters"))?.clone();
    let recipe = &run.recipe;
    let cfg = &run.model;

    if opts.base.is_some() && !matches!(recipe.base, BaseSpec::Onnx { .. }) {
        bail!("--base replaces a frozen ONNX base; {} trains its own F", recipe.name);
    }

    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let mut graphs = Graphs::default();
    let mut third_party = Vec::new();
    match &recipe.base {
        BaseSpec::Builtin => {
            let base_cfg = cfg.base.as_ref().expect("built-in base has a config");
            let g = merged_graph(base_cfg, &cfg.refiner, ParamSource::Given(params.clone())).map_err(|e| anyhow!(e))?;
            let n = count_prefix(&params, "base.") + count_prefix(&params, "refiner.");
            graphs.merged = Some(graph_file("model.onnx", &g.inputs, &g.outputs, n));
            files.push(("model.onnx".into(), g.bytes));
        }
        BaseSpec::Onnx { path: recipe_path, third_party: tp } => {
            let path = opts.base.as_deref().unwrap_or(recipe_path);
            let (ins, outs) = match &opts.base {
                Some(given) => replacement_base(recipe_path, given)?,
                None => check_io(path, &[io::IMAGE], &[io::BASE])?,
            };
            if let Some(level) = ins.iter().find(|i| *i == ptgrm_model::import::ffdnet::SIGMA_INPUT) {
                bail!(
                    "{} takes the noise level as input {level:?}, which a bundle cannot feed; pass the same network at a fixed level with --base (e.g. ptgrm-model import-ffdnet --sigma 25)",
                    path.display()
                );
            }
            graphs.base = Some(graph_file("base.onnx", &ins, &outs, 0));
            files.push(("base.onnx".into(), std::fs::read(path)?));
            let tp = match &opts.base {
                None => tp.clone(),
                Some(given) => {
                    let file = given.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                    tp.clone().map(|t| ptgrm_bundle::ThirdPartyWeights {
                        role: format!("base F (shipped as {file}; trained as: {})", t.role),
                        ..t
                    })
                }
            };
            let g = refiner_graph(&cfg.refiner, ParamSource::Given(params.clone())).map_err(|e| anyhow!(e))?;
            graphs.refiner = Some(graph_file("refiner.onnx", &g.inputs, &g.outputs, count_prefix(&params, "refiner.")));
            files.push(("refiner.onnx".into(), g.bytes));
            third_party.extend(tp);
        }
    }
    if !recipe.prior.is_none() {
        let path = recipe.prior.path.as_ref().expect("validated: prior has a path");
        let (ins, outs) = check_io(path, &[io::IMAGE], &[io::PRIOR])?;
        graphs.prior = Some(graph_file("prior.onnx", &ins, &outs, 0));
        files.push(("prior.onnx".into(), std::fs::read(path)?));
        third_party.extend(recipe.prior.third_party.clone());
    }

    let mut data: Vec<String> = Vec::new();
    for d in &recipe.data.train {
        data.push(format!("train {}", describe_folder(d)));
    }
    for p in &recipe.data.train_pairs {
        data.push(format!("train degraded {}", describe_folder(&p.degraded)));
        data.push(format!("train clean {}", describe_folder(&p.clean)));
    }
    for d in &recipe.data.val {
        data.push(format!("validation {}", describe_folder(d)));
    }
    for p in &recipe.data.val_pairs {
        data.push(format!("validation degraded {}", describe_folder(&p.degraded)));
        data.push(format!("validation clean {}", describe_folder(&p.clean)));
    }
    data.push(format!("degradation {}", serde_json::to_string(&recipe.degradation)?));

    let mut metrics = ck.state.metrics.clone();
    metrics.insert("parameters_base".into(), count_prefix(&params, "base.") as f64);
    metrics.insert("parameters_refiner".into(), count_prefix(&params, "refiner.") as f64);
    // A run started from another run's parameters is reproduced by that run first, and that
    // run by its own source: the whole chain, oldest first.
    let (source_command, source_note) = match &recipe.train.init_from {
        None => (String::new(), None),
        Some(from) => {
            let dir = run_dir_of(from);
            let source = RunDir::open(&dir).with_context(|| format!("train.init_from {} (needed for the provenance)", from.display()))?;
            let sck = Checkpoint::read(&source.checkpoint())?;
            (
                source_chain(from)?.iter().map(|c| format!("{c} && ")).collect::<String>(),
                Some(format!(
                    "started from the parameters of {} ({} steps, {:.0} s); steps and wall time are this run's",
                    dir.display(),
                    sck.state.step,
                    sck.state.wall_time_s
                )),
            )
        }
    };
    let incomplete = (ck.state.step < recipe.train.steps)
        .then(|| format!("exported at step {} of the schedule's {}", ck.state.step, recipe.train.steps));
    let note = match (source_note, incomplete) {
        (Some(a), Some(b)) => Some(format!("{a}; {b}")),
        (a, b) => a.or(b),
    };
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        name: recipe.name.clone(),
        task: recipe.task.clone(),
        description: recipe.description.clone(),
        pad_multiple: cfg.pad_multiple() as u32,
        input_range: [0.0, 1.0],
        prior: PriorSpec {
            dim: cfg.refiner.prior_dim as u32,
            kind: recipe.prior.kind.clone(),
            input_size: recipe.prior.input_size,
            grid: (cfg.refiner.prior_grid > 0).then_some(cfg.refiner.prior_grid as u32),
        },
        graphs,
        provenance: Provenance {
            recipe: Some(run.info.recipe_path.clone()),
            recipe_text: Some(run.recipe_text.clone()),
            command: Some(format!(
                "{}{} && train export --run {} --out {}{}",
                source_command,
                run.info.commands_to(run_dir),
                run_dir.display(),
                out.display(),
                opts.base.as_ref().map(|b| format!(" --base {}", b.display())).unwrap_or_default()
            )),
            data,
            steps: ck.state.step,
            wall_time_s: ck.state.wall_time_s,
            metrics,
            third_party,
            note,
        },
    };
    let refs: Vec<(&str, &[u8])> = files.iter().map(|(n, b)| (n.as_str(), b.as_slice())).collect();
    write_bundle(out, &manifest, &refs).map_err(|e| anyhow!("writing bundle {}: {e}", out.display()))?;
    Manifest::read(out).map_err(|e| anyhow!("bundle written to {} does not read back: {e}", out.display()))
}

/// The run directory `train.init_from` names (a run directory or a checkpoint file in one).
fn run_dir_of(from: &Path) -> PathBuf {
    if from.is_dir() { from.to_path_buf() } else { from.parent().map(Path::to_path_buf).unwrap_or_default() }
}

/// The commands that made the run at `from`, oldest first: each run's fit and warm restarts,
/// back through its own `train.init_from` to a run that started from its seeded initialisation.
fn source_chain(from: &Path) -> Result<Vec<String>> {
    const MAX_RUNS: usize = 64;
    let mut chain = Vec::new();
    let mut next = Some(from.to_path_buf());
    while let Some(from) = next {
        if chain.len() == MAX_RUNS {
            bail!("train.init_from chains more than {MAX_RUNS} runs (a cycle?) at {}", from.display());
        }
        let dir = run_dir_of(&from);
        let run = RunDir::open(&dir).with_context(|| format!("train.init_from {} (needed for the provenance)", from.display()))?;
        chain.push(run.info.commands_to(&dir));
        next = run.recipe.train.init_from.clone();
    }
    chain.reverse();
    Ok(chain)
}
