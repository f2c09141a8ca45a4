//! Checkpoints: parameters, Adam moments and the loop state in one file, written to a temporary
//! name, synced and renamed over the previous one, so a kill -9 at any moment leaves either the
//! old or the new checkpoint, never a torn one.
//!
//! Layout: magic `PTGRMCK1`, u64 LE header length, JSON header (state + tensor directory), then
//! every tensor's f32 LE values in directory order.

use anyhow::{Context, Result, bail};
use ptgrm_model::params::{ParamMap, ParamValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

const MAGIC: &[u8; 8] = b"PTGRMCK1";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LoopState {
    /// Steps completed (the next step to run).
    pub step: u64,
    pub adam_t: u64,
    /// Training wall time accumulated over all sessions of this run.
    pub wall_time_s: f64,
    /// Latest validation metrics.
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    group: String,
    name: String,
    shape: Vec<usize>,
}

#[derive(Serialize, Deserialize)]
struct Header {
    state: LoopState,
    entries: Vec<Entry>,
}

/// Tensor groups saved: "param", "adam_m", "adam_v".
#[derive(Debug)]
pub struct Checkpoint {
    pub state: LoopState,
    pub groups: BTreeMap<String, ParamMap>,
}

impl Checkpoint {
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let mut entries = Vec::new();
        for (group, map) in &self.groups {
            for (name, v) in map {
                entries.push(Entry { group: group.clone(), name: name.clone(), shape: v.shape.clone() });
            }
        }
        let header = serde_json::to_vec(&Header { state: self.state.clone(), entries })?;
        let tmp = path.with_extension("tmp");
        {
            let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let mut w = std::io::BufWriter::new(file);
            w.write_all(MAGIC)?;
            w.write_all(&(header.len() as u64).to_le_bytes())?;
            w.write_all(&header)?;
            for map in self.groups.values() {
                for v in map.values() {
                    for x in &v.data {
                        w.write_all(&x.to_le_bytes())?;
                    }
                }
            }
            let file = w.into_inner().map_err(|e| e.into_error())?;
            file.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
        }
        std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        if let Some(dir) = path.parent()
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }

    pub fn read(path: &Path) -> Result<Checkpoint> {
        let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
        let bad = |m: &str| anyhow::anyhow!("checkpoint {} is corrupt: {m}", path.display());
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("wrong magic"));
        }
        let hlen = u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize;
        let end = 16usize.checked_add(hlen).ok_or_else(|| bad("header length"))?;
        let body = bytes.get(16..end).ok_or_else(|| bad("truncated header"))?;
        let header: Header = serde_json::from_slice(body).map_err(|e| bad(&e.to_string()))?;
        let mut off = 16 + hlen;
        let mut groups: BTreeMap<String, ParamMap> = BTreeMap::new();
        for e in header.entries {
            let n = e.shape.iter().try_fold(4usize, |a, &d| a.checked_mul(d)).ok_or_else(|| bad("tensor size"))?;
            let stop = off.checked_add(n).ok_or_else(|| bad("tensor size"))?;
            let raw = bytes.get(off..stop).ok_or_else(|| bad("truncated data"))?;
            off = stop;
            let data = raw.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            groups.entry(e.group).or_default().insert(e.name, ParamValue { shape: e.shape, data });
        }
        if off != bytes.len() {
            bail!("checkpoint {} has {} trailing bytes", path.display(), bytes.len() - off);
        }
        Ok(Checkpoint { state: header.state, groups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ck.bin");
        let mut params = ParamMap::new();
        params.insert("a.w".into(), ParamValue { shape: vec![2, 3], data: vec![1.0, -2.0, 3.5, 0.0, 1e-9, f32::MAX] });
        params.insert("b".into(), ParamValue { shape: vec![1], data: vec![7.0] });
        let mut groups = BTreeMap::new();
        groups.insert("param".to_string(), params.clone());
        let state = LoopState { step: 12, adam_t: 12, wall_time_s: 3.5, metrics: BTreeMap::from([("psnr".into(), 20.0)]) };
        Checkpoint { state: state.clone(), groups }.write_atomic(&path).unwrap();
        let back = Checkpoint::read(&path).unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.groups["param"], params);
        assert!(!path.with_extension("tmp").exists());
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        assert!(Checkpoint::read(&path).unwrap_err().to_string().contains("corrupt"));
    }
}
