//! A structural check of ONNX bytes without decoding the whole model: the top-level protobuf
//! must parse to the end and carry an IR version and a non-empty graph. The runtime uses it to
//! tell "this file is not an ONNX model" apart from "this provider cannot run it".

/// Ok when `bytes` look like an ONNX ModelProto; otherwise a short reason.
pub fn check_model_bytes(bytes: &[u8]) -> Result<(), String> {
    const IR_VERSION: u64 = 1;
    const GRAPH: u64 = 7;
    let mut pos = 0;
    let (mut ir, mut graph) = (false, false);
    while pos < bytes.len() {
        let key = varint(bytes, &mut pos).ok_or("not an ONNX model (truncated protobuf key)")?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                varint(bytes, &mut pos).ok_or("not an ONNX model (truncated varint)")?;
            }
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = varint(bytes, &mut pos).ok_or("not an ONNX model (truncated length)")? as usize;
                if field == GRAPH && len > 0 {
                    graph = true;
                }
                pos = pos.checked_add(len).ok_or("not an ONNX model (bad length)")?;
            }
            _ => return Err(format!("not an ONNX model (protobuf wire type {wire} at byte {pos})")),
        }
        if pos > bytes.len() {
            return Err("not an ONNX model, or truncated (a field runs past the end of the file)".into());
        }
        if field == 0 {
            return Err("not an ONNX model (protobuf field 0)".into());
        }
        ir |= field == IR_VERSION && wire == 0;
    }
    match (ir, graph) {
        (true, true) => Ok(()),
        (false, _) => Err("not an ONNX model (no ir_version)".into()),
        (_, false) => Err("not an ONNX model (no graph)".into()),
    }
}

fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::check_model_bytes;

    #[test]
    fn rejects_text_empty_and_truncated_input() {
        assert!(check_model_bytes(b"hello, this is not onnx").is_err());
        assert!(check_model_bytes(b"").is_err());
        // ir_version=8, graph of 10 bytes announced but only 2 present.
        assert!(check_model_bytes(&[0x08, 0x08, 0x3a, 0x0a, 0x01, 0x02]).unwrap_err().contains("truncated"));
    }

    #[test]
    fn accepts_a_minimal_model_shape() {
        // ir_version=8, graph={name:"g"}
        assert!(check_model_bytes(&[0x08, 0x08, 0x3a, 0x03, 0x12, 0x01, b'g']).is_ok());
    }
}
