//! Loading a model bundle (format: the ptgrm-bundle crate, docs/model-format.md):
//! manifest checks, sha256-verified graph bytes, and the graph-vs-manifest I/O check.

use crate::error::{Error, Result};
use ort::session::Session;
use ptgrm_bundle::{GraphFile, Manifest, io};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Prior,
    Base,
    Refiner,
    Merged,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Prior => "prior",
            Role::Base => "base",
            Role::Refiner => "refiner",
            Role::Merged => "merged",
        }
    }

    /// Tensor names the runtime feeds and reads for this role.
    pub fn required_io(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Role::Prior => (&[io::IMAGE], &[io::PRIOR]),
            Role::Base => (&[io::IMAGE], &[io::BASE]),
            Role::Refiner => (&[io::RESTORED, io::DEGRADED, io::PRIOR], &[io::REFINED]),
            Role::Merged => (&[io::IMAGE, io::PRIOR], &[io::REFINED, io::BASE]),
        }
    }
}

pub struct GraphBytes {
    pub role: Role,
    pub spec: GraphFile,
    pub bytes: Vec<u8>,
}

pub struct Bundle {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub graphs: Vec<GraphBytes>,
}

impl Bundle {
    /// Reads the manifest and every graph it lists, verifying sha256 and the I/O declaration.
    pub fn load(dir: &Path) -> Result<Bundle> {
        if !dir.is_dir() {
            return Err(Error::model(format!("model bundle {} is not a directory", dir.display())));
        }
        let manifest = Manifest::read(dir)?;
        let g = &manifest.graphs;
        let mut graphs = Vec::new();
        for (role, spec) in [(Role::Prior, &g.prior), (Role::Base, &g.base), (Role::Refiner, &g.refiner), (Role::Merged, &g.merged)] {
            let Some(spec) = spec else { continue };
            let (ins, outs) = role.required_io();
            for name in ins {
                if !spec.inputs.iter().any(|n| n == name) {
                    return Err(Error::model(format!("manifest: {} graph must declare input {name:?}", role.name())));
                }
            }
            for name in outs {
                if !spec.outputs.iter().any(|n| n == name) {
                    return Err(Error::model(format!("manifest: {} graph must declare output {name:?}", role.name())));
                }
            }
            let bytes = Manifest::read_graph(dir, role.name(), spec)?;
            check_onnx(&bytes).map_err(|e| Error::model(format!("{} graph {}: {e}", role.name(), dir.join(&spec.file).display())))?;
            graphs.push(GraphBytes { role, spec: spec.clone(), bytes });
        }
        Ok(Bundle { dir: dir.to_path_buf(), manifest, graphs })
    }
}

/// Cheap structural check so a corrupt file is reported as a model error, not as a provider
/// failure on every provider in turn.
fn check_onnx(bytes: &[u8]) -> std::result::Result<(), String> {
    ptgrm_bundle::onnx_check::check_model_bytes(bytes)
}

/// Checks that the session's graph has exactly the inputs and outputs the manifest declares.
pub fn check_session_io(role: Role, spec: &GraphFile, session: &Session) -> Result<()> {
    let got_in: Vec<&str> = session.inputs().iter().map(|o| o.name()).collect();
    let got_out: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let same = |a: &[&str], b: &[String]| a.len() == b.len() && b.iter().all(|n| a.contains(&n.as_str()));
    if !same(&got_in, &spec.inputs) || !same(&got_out, &spec.outputs) {
        return Err(Error::model(format!(
            "{} graph {} has inputs {got_in:?} and outputs {got_out:?}, but the manifest declares inputs {:?} and outputs {:?}",
            role.name(),
            spec.file,
            spec.inputs,
            spec.outputs
        )));
    }
    Ok(())
}

/// The default model: `PTGRM_MODEL`, then the repository's models/lowlight (recorded at build
/// time), then the install locations. The first that exists.
pub fn default_model_dir() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PTGRM_MODEL").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let mut dirs = Vec::new();
    if let Some(d) = option_env!("PTGRM_BUILD_MODELS_DIR") {
        dirs.push(PathBuf::from(d).join("lowlight"));
    }
    dirs.push(PathBuf::from("/usr/local/share/ptgrm/models/lowlight"));
    dirs.push(PathBuf::from("/usr/share/ptgrm/models/lowlight"));
    dirs.into_iter().find(|d| d.join(ptgrm_bundle::MANIFEST_FILE).is_file())
}
