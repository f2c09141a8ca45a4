//! torch >= 1.6 zip checkpoints: an uncompressed zip holding `<root>/data.pkl` (the state_dict
//! pickle; storages are persistent ids ('storage', torch.XStorage, key, location, numel)) and
//! `<root>/data/<key>` (each storage's raw bytes). `<root>/byteorder`, when present, must say
//! "little". Only stored (uncompressed) entries are read, which is what torch writes; CRC-32 is
//! checked so a damaged file is reported rather than loaded.

use super::ImportError;
use super::pickle::read_pickle;
use super::state_dict::{StateDict, assemble, collect_tensors};
use std::collections::HashMap;

fn err(msg: String) -> ImportError {
    ImportError::Format(format!("zip checkpoint: {msg}"))
}

/// Parses a zip-format torch checkpoint held in memory.
pub fn parse(bytes: &[u8]) -> Result<StateDict, ImportError> {
    let entries = read_directory(bytes)?;
    let pkl = entries
        .keys()
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .ok_or_else(|| err("no data.pkl: not a torch checkpoint".into()))?;
    let root = &pkl[..pkl.len() - "data.pkl".len()];
    if let Some(order) = entries.get(&format!("{root}byteorder"))
        && order.trim_ascii() != b"little"
    {
        return Err(err(format!("byte order {:?}; only little-endian is supported", String::from_utf8_lossy(order))));
    }
    let (pickle, _) = read_pickle(entries[pkl]).map_err(|e| err(format!("reading data.pkl: {e}")))?;
    let (refs, tensors) = collect_tensors(&pickle)?;
    let mut storages = HashMap::new();
    for (key, dtype) in refs {
        let name = format!("{root}data/{key}");
        let raw = entries.get(&name).ok_or_else(|| err(format!("storage '{key}' ({name}) is missing")))?;
        if raw.len() % dtype.size() != 0 {
            return Err(err(format!("storage '{key}' has {} bytes, not a whole number of elements", raw.len())));
        }
        storages.insert(key, dtype.decode(raw));
    }
    assemble(tensors, &storages)
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, ImportError> {
    b.get(at..at + 2).map(|s| u16::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| err("truncated".into()))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, ImportError> {
    b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| err("truncated".into()))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, ImportError> {
    b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap())).ok_or_else(|| err("truncated".into()))
}

/// (entry count, central directory offset), from the end-of-central-directory record (and its
/// zip64 form when the 32-bit fields overflow).
fn end_record(b: &[u8]) -> Result<(u64, u64), ImportError> {
    const EOCD: [u8; 4] = *b"PK\x05\x06";
    let lowest = b.len().saturating_sub(22 + 65535);
    let eocd = (lowest..=b.len().saturating_sub(22))
        .rev()
        .find(|&i| b[i..i + 4] == EOCD)
        .ok_or_else(|| err("no end-of-central-directory record (truncated file?)".into()))?;
    let count = u16_at(b, eocd + 10)? as u64;
    let offset = u32_at(b, eocd + 16)? as u64;
    if count != 0xffff && offset != 0xffff_ffff {
        return Ok((count, offset));
    }
    let locator = eocd.checked_sub(20).filter(|&l| b[l..l + 4] == *b"PK\x06\x07");
    let locator = locator.ok_or_else(|| err("zip64 locator missing".into()))?;
    let z64 = u64_at(b, locator + 8)? as usize;
    if b.get(z64..z64 + 4) != Some(b"PK\x06\x06") {
        return Err(err("zip64 end record missing".into()));
    }
    Ok((u64_at(b, z64 + 32)?, u64_at(b, z64 + 48)?))
}

/// name -> stored bytes of every entry.
fn read_directory(b: &[u8]) -> Result<HashMap<String, &[u8]>, ImportError> {
    let (count, cd) = end_record(b)?;
    let mut at = usize::try_from(cd).map_err(|_| err("bad directory offset".into()))?;
    let mut out = HashMap::new();
    for _ in 0..count {
        if b.get(at..at + 4) != Some(b"PK\x01\x02") {
            return Err(err(format!("central directory entry expected at offset {at}")));
        }
        let method = u16_at(b, at + 10)?;
        let crc = u32_at(b, at + 16)?;
        let mut size = u32_at(b, at + 20)? as u64;
        let (name_len, extra_len, comment_len) = (u16_at(b, at + 28)? as usize, u16_at(b, at + 30)? as usize, u16_at(b, at + 32)? as usize);
        let mut local = u32_at(b, at + 42)? as u64;
        let name_bytes = b.get(at + 46..at + 46 + name_len).ok_or_else(|| err("truncated entry name".into()))?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        // zip64 extra field (id 1): 64-bit sizes/offset in place of the saturated 32-bit ones
        let extra = b.get(at + 46 + name_len..at + 46 + name_len + extra_len).unwrap_or(&[]);
        let mut e = 0;
        while e + 4 <= extra.len() {
            let (id, len) = (u16_at(extra, e)?, u16_at(extra, e + 2)? as usize);
            if id == 1 {
                let mut f = e + 4;
                let uncompressed_saturated = u32_at(b, at + 24)? == 0xffff_ffff;
                if uncompressed_saturated {
                    f += 8;
                }
                if size == 0xffff_ffff {
                    size = u64_at(extra, f)?;
                    f += 8;
                }
                if local == 0xffff_ffff {
                    local = u64_at(extra, f)?;
                }
            }
            e += 4 + len;
        }
        if method != 0 {
            return Err(err(format!("entry {name} is compressed (method {method}); torch writes stored entries only")));
        }
        let local = local as usize;
        if b.get(local..local + 4) != Some(b"PK\x03\x04") {
            return Err(err(format!("local header of {name} missing at offset {local}")));
        }
        let start = local + 30 + u16_at(b, local + 26)? as usize + u16_at(b, local + 28)? as usize;
        let data = start
            .checked_add(size as usize)
            .and_then(|end| b.get(start..end))
            .ok_or_else(|| err(format!("entry {name} runs past the end of the file")))?;
        if crc32(data) != crc {
            return Err(err(format!("entry {name} is damaged (CRC-32 mismatch)")));
        }
        out.insert(name, data);
        at += 46 + name_len + extra_len + comment_len;
    }
    Ok(out)
}

/// CRC-32 (IEEE, reflected, polynomial 0xEDB88320), as zip stores it.
pub(super) fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, v) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xedb8_8320 ^ (c >> 1) } else { c >> 1 };
            }
            *v = c;
        }
        t
    });
    !data.iter().fold(!0u32, |c, &b| table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored-entry zip, laid out as torch writes it (local headers, central directory, end).
    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let (mut out, mut central) = (Vec::new(), Vec::new());
        for (name, data) in entries {
            let offset = out.len() as u32;
            let crc = crc32(data);
            out.extend(b"PK\x03\x04");
            out.extend([20, 0, 0, 0, 0, 0, 0, 0, 0, 0]); // version, flags, method 0, time, date
            out.extend(crc.to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((data.len() as u32).to_le_bytes());
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(0u16.to_le_bytes());
            out.extend(name.as_bytes());
            out.extend(*data);
            central.extend(b"PK\x01\x02");
            central.extend([20, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            central.extend(crc.to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            central.extend([0; 12]); // extra, comment, disk, attributes
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(b"PK\x05\x06");
        out.extend([0, 0, 0, 0]);
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend([0, 0]);
        out
    }

    fn ustr(s: &str) -> Vec<u8> {
        let mut v = vec![b'X'];
        v.extend((s.len() as u32).to_le_bytes());
        v.extend(s.as_bytes());
        v
    }

    /// {'w': HalfStorage '0' of 3 elements viewed as [3], 'b': FloatStorage '1' [2]} with
    /// torch >= 1.6 persistent ids (5-tuples).
    fn checkpoint() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(b"ccollections\nOrderedDict\nq\x00)R(");
        for (name, ty, key, n) in [("w", "HalfStorage", "0", 3u8), ("b", "FloatStorage", "1", 2)] {
            p.extend(ustr(name));
            p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
            p.extend(ustr("storage"));
            p.extend(format!("ctorch\n{ty}\n").as_bytes());
            p.extend(ustr(key));
            p.extend(ustr("cpu"));
            p.extend([b'K', n, b't', b'Q', b'K', 0, b'K', n, 0x85, b'K', 1, 0x85, 0x89, b'h', 0, b')', b'R', b't', b'R']);
        }
        p.extend([b'u', b'.']);
        let half: Vec<u8> = [0x3c00u16, 0xc000, 0x3800].iter().flat_map(|h| h.to_le_bytes()).collect();
        let float: Vec<u8> = [1.5f32, -0.25].iter().flat_map(|f| f.to_le_bytes()).collect();
        zip(&[
            ("archive/data.pkl", &p),
            ("archive/byteorder", b"little"),
            ("archive/data/0", &half),
            ("archive/data/1", &float),
            ("archive/version", b"3\n"),
        ])
    }

    #[test]
    fn reads_tensors_from_a_zip_checkpoint() {
        let sd = parse(&checkpoint()).unwrap();
        assert_eq!(sd.get_shaped("w", &[3]).unwrap().data, vec![1.0, -2.0, 0.5]);
        assert_eq!(sd.get_shaped("b", &[2]).unwrap().data, vec![1.5, -0.25]);
    }

    #[test]
    fn damaged_and_truncated_zips_are_reported() {
        let mut z = checkpoint();
        let at = z.windows(6).position(|w| w == b"little").unwrap();
        z[at] = b'L';
        let e = parse(&z).unwrap_err().to_string();
        assert!(e.contains("archive/byteorder") && e.contains("CRC"), "{e}");
        let z = checkpoint();
        let e = parse(&z[..z.len() - 30]).unwrap_err().to_string();
        assert!(e.contains("end-of-central-directory"), "{e}");
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }
}
