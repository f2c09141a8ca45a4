//! A torch state_dict as named f32 tensors, and the part both torch.save formats share: each
//! tensor is pickled as `_rebuild_tensor_v2(storage, offset, size, stride, ...)` with the
//! storage a persistent id ('storage', torch.XStorage, key, location, numel[, view_metadata]);
//! the formats (torch_legacy.rs, torch_zip.rs) differ only in where the storage bytes live.
//! Reading a file of either format: torch_file.rs.

use super::ImportError;
use super::pickle::{Obj, ObjId, Pickle};
use std::collections::HashMap;

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
            return Err(ImportError::Format(format!("tensor '{name}' has shape {:?}, expected {shape:?}", t.shape)));
        }
        Ok(t)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(n, _)| n.as_str())
    }
}

#[derive(Clone, Copy, Debug)]
pub(super) enum DType {
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

    pub(super) fn size(self) -> usize {
        match self {
            DType::F64 | DType::I64 => 8,
            DType::F32 | DType::I32 => 4,
            DType::F16 | DType::BF16 | DType::I16 => 2,
            DType::I8 | DType::U8 => 1,
        }
    }

    pub(super) fn decode(self, b: &[u8]) -> Vec<f32> {
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

pub(super) struct TensorRef {
    name: String,
    pub(super) key: String,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// The tensors of a state_dict pickle (nested dicts give dotted names) and the element type
/// of every storage they use.
pub(super) fn collect_tensors(p: &Pickle) -> Result<(HashMap<String, DType>, Vec<TensorRef>), ImportError> {
    let mut refs = HashMap::new();
    let mut tensors = Vec::new();
    walk(p, p.root, "", &mut refs, &mut tensors)?;
    Ok((refs, tensors))
}

/// Materializes each tensor from its decoded storage.
pub(super) fn assemble(tensors: Vec<TensorRef>, storages: &HashMap<String, Vec<f32>>) -> Result<StateDict, ImportError> {
    let mut out = StateDict::default();
    for t in tensors {
        let storage = storages
            .get(&t.key)
            .ok_or_else(|| ImportError::Format(format!("tensor '{}' uses storage '{}' which is missing", t.name, t.key)))?;
        let data = gather(storage, t.offset, &t.shape, &t.stride).map_err(|m| ImportError::Format(format!("tensor '{}': {m}", t.name)))?;
        out.entries.push((t.name, Tensor { shape: t.shape, data }));
    }
    Ok(out)
}

/// Walks the (possibly nested) dict; tensors become `TensorRef`s, storages are noted in `refs`
/// with their element type; other values (ints, strings) are skipped.
fn walk(p: &Pickle, id: ObjId, prefix: &str, refs: &mut HashMap<String, DType>, out: &mut Vec<TensorRef>) -> Result<(), ImportError> {
    match p.get(id) {
        Obj::Dict(items) => {
            for &(k, v) in items {
                let key = p.as_str(k).ok_or_else(|| ImportError::Format("state_dict has a non-string key".into()))?;
                let name = if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") };
                walk(p, v, &name, refs, out)?;
            }
            Ok(())
        }
        Obj::Call { callable, args, .. } => {
            let func = p.global_name(*callable).unwrap_or_default();
            let args = p.as_seq(*args).ok_or_else(|| bad(prefix, "call arguments are not a tuple"))?;
            match func.as_str() {
                // _rebuild_parameter(data, requires_grad, backward_hooks)
                "torch._utils._rebuild_parameter" => match args.first() {
                    Some(&data) => walk(p, data, prefix, refs, out),
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
    let mut offset =
        p.as_int(args[1]).and_then(|v| usize::try_from(v).ok()).ok_or_else(|| bad(name, "storage offset is not a non-negative integer"))?;
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

    #[test]
    fn half_precision_decodes() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn transposed_view_is_gathered_in_row_major_order() {
        let storage: Vec<f32> = (0..6).map(|v| v as f32).collect();
        // 2x3 view of a 3x2 row-major matrix, transposed: strides (1, 2)
        assert_eq!(gather(&storage, 0, &[2, 3], &[1, 2]).unwrap(), vec![0., 2., 4., 1., 3., 5.]);
        assert!(gather(&storage, 1, &[2, 3], &[1, 2]).unwrap_err().contains("element 6"));
    }
}
