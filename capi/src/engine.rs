//! `ptgrm_engine`: create, process, tune, destroy.
//!
//! The engine sits behind a mutex taken with `try_lock`: two threads calling into one engine at
//! the same time get `PTGRM_ERR_INVALID_ARGUMENT` instead of undefined behaviour, and the
//! uncontended lock costs nothing next to inference.

use std::ffi::{CStr, CString, c_char};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::{Mutex, TryLockError};

use super::image::{Spans, ptgrm_image, spans};
use super::options::{provider_code, ptgrm_options, ptgrm_provider, read_options};
use super::status::{guard, non_null, ptgrm_status};
use ptgrm::engine::Engine;
use ptgrm::error::{Error, Result};
use ptgrm::frame::{FrameMut, FrameRef};

/// An engine: one loaded model bundle with its ONNX Runtime sessions and video prior state.
/// Opaque; create with `ptgrm_engine_create`, free with `ptgrm_engine_destroy`.
pub struct ptgrm_engine {
    state: Mutex<State>,
    /// Every text of the engine's provider log handed out so far, newest last. The engine owns
    /// the log and it grows when the first frame falls back to another provider; texts are kept
    /// (at most one per provider) so pointers returned earlier stay valid until destroy. A lock
    /// of its own, so reading the log never waits for a frame.
    provider_logs: Mutex<Vec<CString>>,
}

struct State {
    engine: Engine,
    /// Copy of an input that overlaps an output (in-place processing); reused across frames.
    scratch: Vec<u8>,
    /// Lines of the engine's provider log that `provider_logs` already covers.
    logged_lines: usize,
}

/// The engine's provider log as one C string, a reason per line.
fn provider_log_text(engine: &Engine) -> CString {
    CString::new(engine.provider_log().join("\n").replace('\0', "\\0")).unwrap_or_default()
}

/// Runs `f` on the engine's state, refusing NULL handles and concurrent use.
///
/// # Safety
/// `engine` is NULL or a live handle from `ptgrm_engine_create`.
unsafe fn with_state<T>(engine: *const ptgrm_engine, f: impl FnOnce(&mut State) -> Result<T>) -> Result<T> {
    // SAFETY: non-NULL live handle (caller contract); only shared access here, the mutex serialises.
    let engine = unsafe { &*non_null(engine, "engine")? };
    let mut state = match engine.state.try_lock() {
        Ok(s) => s,
        Err(TryLockError::WouldBlock) => {
            return Err(Error::invalid("engine is in use by another thread (use one engine per thread)"));
        }
        Err(TryLockError::Poisoned(_)) => {
            return Err(Error::invalid("engine is unusable after an earlier internal error; destroy it"));
        }
    };
    f(&mut state)
}

/// Loads the model bundle in `bundle_dir` (NULL: the default model, see below) with `options`
/// (NULL: defaults) and stores the new engine in `*out_engine` (set to NULL on failure).
///
/// The default model is $PTGRM_MODEL, else the models directory recorded at build time, else
/// /usr/local/share/ptgrm/models/lowlight.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_create(
    bundle_dir: *const c_char,
    options: *const ptgrm_options,
    out_engine: *mut *mut ptgrm_engine,
) -> ptgrm_status {
    guard(|| {
        let out = non_null(out_engine, "out_engine")?.cast_mut();
        // SAFETY: non-NULL, caller-provided writable pointer slot.
        unsafe { out.write_unaligned(std::ptr::null_mut()) };
        // SAFETY: caller contract on `options` (NULL or struct_size readable bytes).
        let options = unsafe { read_options(options) }?;
        let dir = if bundle_dir.is_null() {
            ptgrm::bundle::default_model_dir()
                .ok_or_else(|| Error::model("bundle_dir is NULL and no default model was found (set PTGRM_MODEL)"))?
        } else {
            // SAFETY: caller promises a NUL-terminated string.
            PathBuf::from(std::ffi::OsStr::from_bytes(unsafe { CStr::from_ptr(bundle_dir) }.to_bytes()))
        };
        let engine = Engine::load(&dir, &options)?;
        let handle = Box::new(ptgrm_engine {
            provider_logs: Mutex::new(vec![provider_log_text(&engine)]),
            state: Mutex::new(State { logged_lines: engine.provider_log().len(), engine, scratch: Vec::new() }),
        });
        // SAFETY: as above.
        unsafe { out.write_unaligned(Box::into_raw(handle)) };
        Ok(())
    })
}

/// Frees an engine. NULL is ignored. The handle must not be in use by another thread.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_destroy(engine: *mut ptgrm_engine) {
    if engine.is_null() {
        return;
    }
    // A panic while dropping ONNX Runtime sessions must not unwind into C; the handle is gone either way.
    let _ = guard(|| {
        // SAFETY: a live handle from ptgrm_engine_create, destroyed once (caller contract).
        drop(unsafe { Box::from_raw(engine) });
        Ok(())
    });
}

/// Restores `input` into `output`: the refined image blended with the input by the engine's
/// strength. Both images must have the same width and height; formats may differ. `output` may
/// share memory with `input` (in-place processing); output planes must not overlap each other.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_process(
    engine: *mut ptgrm_engine,
    input: *const ptgrm_image,
    output: *const ptgrm_image,
) -> ptgrm_status {
    guard(|| {
        non_null(output, "output image")?;
        // SAFETY: caller contract on every pointer (documented above).
        unsafe { process(engine, input, output, std::ptr::null()) }
    })
}

/// Like `ptgrm_engine_process`, writing the refined image (strength applied) to `refined` and the
/// base restorer's output to `base`; either may be NULL, not both.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_process_outputs(
    engine: *mut ptgrm_engine,
    input: *const ptgrm_image,
    refined: *const ptgrm_image,
    base: *const ptgrm_image,
) -> ptgrm_status {
    guard(|| {
        if refined.is_null() && base.is_null() {
            return Err(Error::invalid("refined and base outputs are both NULL"));
        }
        // SAFETY: caller contract on every pointer.
        unsafe { process(engine, input, refined, base) }
    })
}

unsafe fn process(
    engine: *const ptgrm_engine,
    input: *const ptgrm_image,
    refined: *const ptgrm_image,
    base: *const ptgrm_image,
) -> Result<()> {
    // SAFETY: descriptors are NULL or readable (caller contract); spans only validates them.
    let src = unsafe { spans(input, "input") }?;
    let out_a = if refined.is_null() { None } else { Some(unsafe { spans(refined, "output") }?) };
    let out_b = if base.is_null() { None } else { Some(unsafe { spans(base, "base output") }?) };
    let outs: Vec<&Spans> = out_a.iter().chain(out_b.iter()).collect();
    for o in &outs {
        if let Some((i, j)) = o.self_overlap() {
            return Err(Error::invalid(format!("output planes {i} and {j} overlap")));
        }
    }
    if let [a, b] = outs[..]
        && a.overlaps(b)
    {
        return Err(Error::invalid("refined and base outputs overlap"));
    }
    let in_place = outs.iter().any(|o| o.overlaps(&src));
    // SAFETY: `engine` is NULL or live (caller contract).
    let (result, new_log) = unsafe {
        with_state(engine, |state| {
            // Slices are formed only now, after validation; outputs are disjoint from each other and,
            // when an input overlaps them, the input is read from a private copy instead.
            let planes: Vec<&[u8]> = if in_place {
                state.scratch.clear();
                let mut offsets = Vec::with_capacity(src.planes.len());
                for &(p, len) in &src.planes {
                    offsets.push(state.scratch.len());
                    // SAFETY: validated span of caller memory, read before any output is formed.
                    state.scratch.extend_from_slice(std::slice::from_raw_parts(p, len));
                }
                src.planes.iter().zip(offsets).map(|(&(_, len), o)| &state.scratch[o..o + len]).collect()
            } else {
                src.planes.iter().map(|&(p, len)| std::slice::from_raw_parts(p.cast_const(), len)).collect()
            };
            let frame = FrameRef::new(src.layout, &planes)?;
            let mut_frame = |s: &Spans| FrameMut::new(s.layout, s.planes.iter().map(|&(p, len)| std::slice::from_raw_parts_mut(p, len)));
            let mut refined = out_a.as_ref().map(mut_frame).transpose()?;
            let mut base = out_b.as_ref().map(mut_frame).transpose()?;
            let result = match (&mut refined, &mut base) {
                (Some(r), None) => state.engine.process(&frame, r),
                (r, b) => state.engine.process_outputs(&frame, r.as_mut(), b.as_mut()),
            };
            // A fallback on this frame (even one that then failed) added to the engine's log.
            let lines = state.engine.provider_log().len();
            let new_log = (lines != state.logged_lines).then(|| provider_log_text(&state.engine));
            state.logged_lines = lines;
            Ok((result, new_log))
        })
    }?;
    if let Some(text) = new_log {
        // SAFETY: `engine` is live here (with_state checked it).
        unsafe { &*engine }.provider_logs.lock().unwrap_or_else(|e| e.into_inner()).push(text);
    }
    result
}

/// Sets the blend 0..1 from input (0, pixels copied) to refined output (1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_set_strength(engine: *mut ptgrm_engine, strength: f32) -> ptgrm_status {
    // SAFETY: `engine` is NULL or live (caller contract).
    guard(|| unsafe { with_state(engine, |s| s.engine.set_strength(strength)) })
}

/// Recomputes the prior every `interval` frames (>= 1).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_set_prior_interval(engine: *mut ptgrm_engine, interval: u32) -> ptgrm_status {
    // SAFETY: as above.
    guard(|| unsafe { with_state(engine, |s| s.engine.set_prior_interval(interval)) })
}

/// Keeps weight `smoothing` (0..1) of the previous prior when a new one is computed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_set_prior_smoothing(engine: *mut ptgrm_engine, smoothing: f32) -> ptgrm_status {
    // SAFETY: as above.
    guard(|| unsafe { with_state(engine, |s| s.engine.set_prior_smoothing(smoothing)) })
}

/// Forgets the prior so the next frame computes a fresh one (call after a seek or scene cut).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_reset_prior(engine: *mut ptgrm_engine) -> ptgrm_status {
    // SAFETY: as above.
    guard(|| unsafe {
        with_state(engine, |s| {
            s.engine.reset_prior();
            Ok(())
        })
    })
}

/// Stores the execution provider the engine actually runs on (`PTGRM_PROVIDER_TENSORRT`, `_CUDA`
/// or `_CPU`) in `*out_provider`; `ptgrm_provider_name` turns it into text. It can change once,
/// on the first frame, when that frame fails on a GPU provider and the engine falls back.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_active_provider(engine: *const ptgrm_engine, out_provider: *mut ptgrm_provider) -> ptgrm_status {
    guard(|| {
        let out = non_null(out_provider, "out_provider")?.cast_mut();
        // SAFETY: `engine` NULL or live; `out` non-NULL writable (caller contract).
        let code = unsafe { with_state(engine, |s| Ok(provider_code(s.engine.active_provider()))) }?;
        unsafe { out.write_unaligned(code) };
        Ok(())
    })
}

/// Why each provider tried before the active one was skipped or left, one reason per line (""
/// when the first choice worked), or NULL for a NULL engine. The log can grow on the first frame,
/// when a GPU provider fails it and the engine falls back (see `ptgrm_engine_active_provider`):
/// call again after a frame for the current text. Owned by the engine: every pointer returned
/// stays valid until destroy.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_engine_provider_log(engine: *const ptgrm_engine) -> *const c_char {
    if engine.is_null() {
        return std::ptr::null();
    }
    // SAFETY: a live handle (caller contract). The CString's heap buffer does not move when the
    // vector grows, and no text is removed before destroy.
    let logs = unsafe { &*engine }.provider_logs.lock().unwrap_or_else(|e| e.into_inner());
    logs.last().map_or(std::ptr::null(), |t| t.as_ptr())
}
