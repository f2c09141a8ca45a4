//! A minimal Python pickle reader: enough of the protocol-2 opcode set (plus the few protocol
//! 3/4 opcodes that carry the same data) to read torch state_dict files. Nothing is executed:
//! globals become names, `REDUCE` becomes a recorded call, persistent ids become references that
//! the caller resolves. Objects live in an arena so that the memo shares them the way Python
//! does (a dict memoized before its `SETITEMS` is the same dict afterwards).

use super::ImportError;

/// Index of an object in [`Pickle::objects`].
pub type ObjId = usize;

#[derive(Clone, Debug, PartialEq)]
pub enum Obj {
    None,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<ObjId>),
    List(Vec<ObjId>),
    /// Insertion-ordered, like `collections.OrderedDict` (a plain dict keeps order since 3.7).
    Dict(Vec<(ObjId, ObjId)>),
    /// A `module.name` reference from `GLOBAL` / `STACK_GLOBAL`.
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args)`, not evaluated; `state` is what a later `BUILD` supplied.
    Call {
        callable: ObjId,
        args: ObjId,
        state: Option<ObjId>,
    },
    /// A persistent id (torch uses it for storages); resolved by the caller.
    Persistent(ObjId),
}

/// A decoded pickle: the arena and the root object.
#[derive(Debug)]
pub struct Pickle {
    pub objects: Vec<Obj>,
    pub root: ObjId,
}

impl Pickle {
    pub fn get(&self, id: ObjId) -> &Obj {
        &self.objects[id]
    }

    pub fn as_str(&self, id: ObjId) -> Option<&str> {
        match self.get(id) {
            Obj::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self, id: ObjId) -> Option<i128> {
        match self.get(id) {
            Obj::Int(v) => Some(*v),
            Obj::Bool(b) => Some(*b as i128),
            _ => None,
        }
    }

    /// The items of a tuple or list.
    pub fn as_seq(&self, id: ObjId) -> Option<&[ObjId]> {
        match self.get(id) {
            Obj::Tuple(v) | Obj::List(v) => Some(v),
            _ => None,
        }
    }

    /// `Some("module.name")` for a global.
    pub fn global_name(&self, id: ObjId) -> Option<String> {
        match self.get(id) {
            Obj::Global { module, name } => Some(format!("{module}.{name}")),
            _ => None,
        }
    }

    /// Looks a string key up in a dict.
    pub fn dict_get(&self, dict: ObjId, key: &str) -> Option<ObjId> {
        match self.get(dict) {
            Obj::Dict(items) => items.iter().find(|(k, _)| self.as_str(*k) == Some(key)).map(|(_, v)| *v),
            _ => None,
        }
    }
}

/// Globals a state_dict may name. Anything else means the file pickles arbitrary Python
/// objects (a whole `nn.Module`, say), which cannot be read without Python.
const ALLOWED_GLOBALS: &[&str] = &[
    "collections.OrderedDict",
    "torch._utils._rebuild_tensor",
    "torch._utils._rebuild_tensor_v2",
    "torch._utils._rebuild_parameter",
    "torch.FloatStorage",
    "torch.DoubleStorage",
    "torch.HalfStorage",
    "torch.BFloat16Storage",
    "torch.LongStorage",
    "torch.IntStorage",
    "torch.ShortStorage",
    "torch.CharStorage",
    "torch.ByteStorage",
    "torch.BoolStorage",
];

enum Slot {
    Mark,
    Obj(ObjId),
}

struct Vm<'a> {
    data: &'a [u8],
    pos: usize,
    objects: Vec<Obj>,
    stack: Vec<Slot>,
    memo: std::collections::HashMap<u32, ObjId>,
}

/// Reads one pickle starting at `data[0]`; returns it and the number of bytes it took (pickles
/// are concatenated in a torch legacy file).
pub fn read_pickle(data: &[u8]) -> Result<(Pickle, usize), ImportError> {
    let mut vm = Vm { data, pos: 0, objects: Vec::new(), stack: Vec::new(), memo: Default::default() };
    let root = vm.run()?;
    Ok((Pickle { objects: vm.objects, root }, vm.pos))
}

fn corrupt(msg: String) -> ImportError {
    ImportError::Format(msg)
}

impl Vm<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], ImportError> {
        let end =
            self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
                corrupt(format!("pickle truncated: need {n} bytes at offset {}, file ends at {}", self.pos, self.data.len()))
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, ImportError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ImportError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap()))
    }

    fn u32(&mut self) -> Result<u32, ImportError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, ImportError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn line(&mut self) -> Result<String, ImportError> {
        let rest = &self.data[self.pos..];
        let n = rest.iter().position(|&b| b == b'\n').ok_or_else(|| corrupt("pickle truncated inside a text line".into()))?;
        let s = String::from_utf8(rest[..n].to_vec()).map_err(|_| corrupt("pickle text line is not UTF-8".into()))?;
        self.pos += n + 1;
        Ok(s)
    }

    fn utf8(&mut self, n: usize) -> Result<String, ImportError> {
        let b = self.take(n)?.to_vec();
        String::from_utf8(b).map_err(|_| corrupt("pickle string is not valid UTF-8".into()))
    }

    fn push(&mut self, o: Obj) {
        self.objects.push(o);
        self.stack.push(Slot::Obj(self.objects.len() - 1));
    }

    fn pop(&mut self) -> Result<ObjId, ImportError> {
        match self.stack.pop() {
            Some(Slot::Obj(id)) => Ok(id),
            Some(Slot::Mark) => Err(corrupt("pickle: found a MARK where an object was expected".into())),
            None => Err(corrupt("pickle: stack underflow".into())),
        }
    }

    fn top(&self) -> Result<ObjId, ImportError> {
        match self.stack.last() {
            Some(Slot::Obj(id)) => Ok(*id),
            _ => Err(corrupt("pickle: no object on the stack".into())),
        }
    }

    /// Pops everything above the topmost MARK (and the mark).
    fn pop_mark(&mut self) -> Result<Vec<ObjId>, ImportError> {
        let mut items = Vec::new();
        loop {
            match self.stack.pop() {
                Some(Slot::Obj(id)) => items.push(id),
                Some(Slot::Mark) => break,
                None => return Err(corrupt("pickle: MARK missing".into())),
            }
        }
        items.reverse();
        Ok(items)
    }

    fn global(&mut self, module: String, name: String) -> Result<(), ImportError> {
        let full = format!("{module}.{name}");
        if !ALLOWED_GLOBALS.contains(&full.as_str()) {
            return Err(corrupt(format!(
                "pickle references Python object '{full}': only plain state_dicts of tensors are supported \
                 (save the model's state_dict(), not the module)"
            )));
        }
        self.push(Obj::Global { module, name });
        Ok(())
    }

    fn set_items(&mut self, dict: ObjId, items: Vec<ObjId>) -> Result<(), ImportError> {
        if !items.len().is_multiple_of(2) {
            return Err(corrupt("pickle: SETITEMS with an odd number of items".into()));
        }
        let Obj::Dict(entries) = &mut self.objects[dict] else {
            return Err(corrupt("pickle: SETITEM(S) on something that is not a dict".into()));
        };
        for kv in items.chunks(2) {
            entries.push((kv[0], kv[1]));
        }
        Ok(())
    }

    fn append(&mut self, list: ObjId, items: Vec<ObjId>) -> Result<(), ImportError> {
        let Obj::List(v) = &mut self.objects[list] else {
            return Err(corrupt("pickle: APPEND(S) on something that is not a list".into()));
        };
        v.extend(items);
        Ok(())
    }

    fn memo_get(&mut self, key: u32) -> Result<(), ImportError> {
        let id = *self.memo.get(&key).ok_or_else(|| corrupt(format!("pickle: memo entry {key} used before it was set")))?;
        self.stack.push(Slot::Obj(id));
        Ok(())
    }

    fn memo_put(&mut self, key: u32) -> Result<(), ImportError> {
        let id = self.top()?;
        self.memo.insert(key, id);
        Ok(())
    }

    fn run(&mut self) -> Result<ObjId, ImportError> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        return Err(corrupt(format!("pickle protocol {proto} is not supported")));
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: only a read-ahead hint
                }
                b'.' => return self.pop(),
                b'(' => self.stack.push(Slot::Mark),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let id = self.top()?;
                    self.stack.push(Slot::Obj(id));
                }
                b'N' => self.push(Obj::None),
                0x88 => self.push(Obj::Bool(true)),
                0x89 => self.push(Obj::Bool(false)),
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Obj::Int(v as i128));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Obj::Int(v as i128));
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Obj::Int(v as i128));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a { self.u8()? as usize } else { self.u32()? as usize };
                    if n > 16 {
                        return Err(corrupt(format!("pickle integer of {n} bytes is too large")));
                    }
                    let bytes = self.take(n)?;
                    let mut buf = [0u8; 16];
                    buf[..n].copy_from_slice(bytes);
                    if n > 0 && bytes[n - 1] & 0x80 != 0 {
                        buf[n..].fill(0xff); // sign-extend two's complement
                    }
                    self.push(Obj::Int(i128::from_le_bytes(buf)));
                }
                b'G' => {
                    let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                    self.push(Obj::Float(v));
                }
                b'X' => {
                    let n = self.u32()? as usize;
                    let s = self.utf8(n)?;
                    self.push(Obj::Str(s));
                }
                0x8c => {
                    let n = self.u8()? as usize;
                    let s = self.utf8(n)?;
                    self.push(Obj::Str(s));
                }
                0x8d => {
                    let n = self.u64()? as usize;
                    let s = self.utf8(n)?;
                    self.push(Obj::Str(s));
                }
                b'T' | b'B' => {
                    let n = self.u32()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(if op == b'T' { Obj::Str(String::from_utf8_lossy(&b).into()) } else { Obj::Bytes(b) });
                }
                b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let b = self.take(n)?.to_vec();
                    self.push(if op == b'U' { Obj::Str(String::from_utf8_lossy(&b).into()) } else { Obj::Bytes(b) });
                }
                b')' => self.push(Obj::Tuple(vec![])),
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                    items.reverse();
                    self.push(Obj::Tuple(items));
                }
                b']' => self.push(Obj::List(vec![])),
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::List(items));
                }
                b'a' => {
                    let item = self.pop()?;
                    let list = self.top()?;
                    self.append(list, vec![item])?;
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    let list = self.top()?;
                    self.append(list, items)?;
                }
                b'}' => self.push(Obj::Dict(vec![])),
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(Obj::Dict(vec![]));
                    let dict = self.top()?;
                    self.set_items(dict, items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    let dict = self.top()?;
                    self.set_items(dict, vec![k, v])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    let dict = self.top()?;
                    self.set_items(dict, items)?;
                }
                b'q' => {
                    let k = self.u8()? as u32;
                    self.memo_put(k)?;
                }
                b'r' => {
                    let k = self.u32()?;
                    self.memo_put(k)?;
                }
                0x94 => {
                    let k = self.memo.len() as u32;
                    self.memo_put(k)?;
                }
                b'h' => {
                    let k = self.u8()? as u32;
                    self.memo_get(k)?;
                }
                b'j' => {
                    let k = self.u32()?;
                    self.memo_get(k)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.global(module, name)?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    match (self.objects[module].clone(), self.objects[name].clone()) {
                        (Obj::Str(m), Obj::Str(n)) => self.global(m, n)?,
                        _ => return Err(corrupt("pickle: STACK_GLOBAL needs two strings".into())),
                    }
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let is_ordered_dict = matches!(&self.objects[callable],
                        Obj::Global { module, name } if module == "collections" && name == "OrderedDict");
                    if is_ordered_dict {
                        // OrderedDict() is filled by later SETITEMS, so it must be a real dict.
                        self.push(Obj::Dict(vec![]));
                    } else {
                        self.push(Obj::Call { callable, args, state: None });
                    }
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    match &mut self.objects[target] {
                        // OrderedDict state is the state_dict's `_metadata` (versions per module):
                        // not needed to read tensors.
                        Obj::Dict(_) => {}
                        Obj::Call { state: s, .. } => *s = Some(state),
                        _ => return Err(corrupt("pickle: BUILD on an object that takes no state".into())),
                    }
                }
                b'Q' => {
                    let pid = self.pop()?;
                    self.push(Obj::Persistent(pid));
                }
                _ => {
                    return Err(corrupt(format!("pickle opcode 0x{op:02x} ({:?}) at offset {at} is not supported", op as char)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dict_with_shared_memo_and_ints() {
        // {'a': 1, 'b': (-2, 70000), 'c': <memo 1: list [True]>} with the list appended after memoizing
        let mut p = vec![0x80, 2, b'}', b'q', 0, b'(', b'X', 1, 0, 0, 0, b'a', b'K', 1];
        p.extend([b'X', 1, 0, 0, 0, b'b', b'J']);
        p.extend((-2i32).to_le_bytes());
        p.extend([b'J']);
        p.extend(70000i32.to_le_bytes());
        p.extend([0x86, b'X', 1, 0, 0, 0, b'c', b']', b'q', 1, 0x88, b'a', b'u', b'.']);
        let (pk, used) = read_pickle(&p).unwrap();
        assert_eq!(used, p.len());
        let b = pk.dict_get(pk.root, "b").unwrap();
        let items: Vec<_> = pk.as_seq(b).unwrap().iter().map(|&i| pk.as_int(i).unwrap()).collect();
        assert_eq!(items, vec![-2, 70000]);
        let c = pk.dict_get(pk.root, "c").unwrap();
        assert_eq!(pk.as_seq(c).unwrap().len(), 1, "append after BINPUT must show in the shared list");
    }

    #[test]
    fn long1_is_signed_little_endian() {
        // torch's legacy magic number 0x1950a86a20f9469cfc6c, and -1 as LONG1 [0xff]
        let p = [0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.'];
        let (pk, _) = read_pickle(&p).unwrap();
        assert_eq!(pk.as_int(pk.root), Some(0x1950a86a20f9469cfc6c));
        let (pk, _) = read_pickle(&[0x80, 2, 0x8a, 1, 0xff, b'.']).unwrap();
        assert_eq!(pk.as_int(pk.root), Some(-1));
    }

    #[test]
    fn unknown_global_is_refused_by_name() {
        let p = b"\x80\x02cos\nsystem\nq\x00.";
        let err = read_pickle(p).unwrap_err().to_string();
        assert!(err.contains("os.system"), "{err}");
    }

    #[test]
    fn unsupported_opcode_and_truncation_are_clear_errors() {
        let err = read_pickle(&[0x80, 2, b'I', b'1', b'\n', b'.']).unwrap_err().to_string();
        assert!(err.contains("opcode 0x49"), "{err}");
        let err = read_pickle(&[0x80, 2, b'X', 9, 0, 0, 0, b'a']).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        let err = read_pickle(&[0x80, 2, b'h', 3, b'.']).unwrap_err().to_string();
        assert!(err.contains("memo entry 3"), "{err}");
    }
}
