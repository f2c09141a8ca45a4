//! `ptgrm_options`: engine options with a size field for forward compatibility.
//!
//! A caller compiled against an older header passes a smaller `struct_size`, a newer one a larger
//! one. The library never reads or writes past `struct_size`; bytes past the fields this library
//! knows must be zero (a newer caller's unset fields), otherwise the call fails rather than
//! silently ignoring a setting. Fields are read one by one through raw pointers so that garbage in
//! a caller's struct is reported, never turned into an invalid Rust value.

use std::ffi::{CStr, c_char};
use std::mem::{offset_of, size_of};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::ptr::{addr_of, addr_of_mut};

use super::status::{guard, non_null, ptgrm_status};
use ptgrm::engine::EngineOptions;
use ptgrm::error::{Error, Result};
use ptgrm::providers::{Provider, ProviderRequest};

/// Execution provider (a `uint32_t` so that any value a caller passes can be checked).
pub type ptgrm_provider = u32;
/// TensorRT, then CUDA, then CPU: the first that works (requests only).
pub const PTGRM_PROVIDER_AUTO: ptgrm_provider = 0;
pub const PTGRM_PROVIDER_TENSORRT: ptgrm_provider = 1;
pub const PTGRM_PROVIDER_CUDA: ptgrm_provider = 2;
pub const PTGRM_PROVIDER_CPU: ptgrm_provider = 3;

/// Engine options. Fill with `ptgrm_options_init`, then change the fields you need.
#[repr(C)]
pub struct ptgrm_options {
    /// `sizeof(ptgrm_options)` as the caller was compiled; set by `ptgrm_options_init`.
    pub struct_size: usize,
    /// ONNX Runtime library to load (absolute path), or NULL/"" to search: ORT_DYLIB_PATH, the
    /// path recorded at setup, then the system's libonnxruntime.so.1. The string is copied.
    pub ort_library: *const c_char,
    /// TensorRT engine and timing cache directory, or NULL/"" for none. The string is copied.
    pub engine_cache_dir: *const c_char,
    /// A `PTGRM_PROVIDER_*` value; default `PTGRM_PROVIDER_AUTO`. An explicit provider that is not
    /// available fails engine creation with `PTGRM_ERR_PROVIDER`.
    pub provider: ptgrm_provider,
    /// CUDA / TensorRT device; default 0.
    pub device_id: i32,
    /// CPU intra-op threads; 0 (default) lets ONNX Runtime decide.
    pub threads: u32,
    /// Largest frame TensorRT's optimization profile covers; default 1920x1080.
    pub max_width: u32,
    pub max_height: u32,
    /// Frames with a side longer than this run in overlapping tiles (bounds memory); default 2048,
    /// 0 never tiles.
    pub tile_size: u32,
    /// Overlap between tiles in pixels; default 32.
    pub tile_overlap: u32,
    /// Recompute the prior every N frames (video); default 1 (every frame), must be >= 1.
    pub prior_interval: u32,
    /// Weight 0..1 kept from the previous prior (exponential smoothing); default 0.
    pub prior_smoothing: f32,
    /// Blend 0..1 from input (0) to refined output (1); default 1.
    pub strength: f32,
    /// Non-zero: TensorRT builds fp16 engines; default 0. Only 0 and 1 are accepted.
    pub fp16: u8,
    /// Non-zero: idle CPU threads busy-wait for work (ONNX Runtime's own default) instead of
    /// sleeping; default 0 (sleeping leaves the cores to the rest of a video pipeline). 0 or 1.
    /// Not in the first version of this struct: there these bytes were padding, which
    /// `ptgrm_options_init` zeroes, so such a caller gets the default.
    pub spinning: u8,
    /// Non-zero: use each new prior at once instead of gliding to it over the prior interval;
    /// default 0 (glide: no brightness step on video). 0 or 1. Not in the first version, like
    /// `spinning`.
    pub prior_no_glide: u8,
}

/// The prefix every caller must provide: the first version of the struct (up to `fp16`).
const MIN_SIZE: usize = offset_of!(ptgrm_options, fp16) + size_of::<u8>();

/// Reads a 0/1 byte field, naming it in the error.
fn flag(value: u8, name: &str) -> Result<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        v => Err(Error::invalid(format!("ptgrm_options.{name} must be 0 or 1, got {v}"))),
    }
}

fn provider_request(code: ptgrm_provider) -> Result<ProviderRequest> {
    Ok(match code {
        PTGRM_PROVIDER_AUTO => ProviderRequest::Auto,
        PTGRM_PROVIDER_TENSORRT => ProviderRequest::TensorRt,
        PTGRM_PROVIDER_CUDA => ProviderRequest::Cuda,
        PTGRM_PROVIDER_CPU => ProviderRequest::Cpu,
        other => return Err(Error::invalid(format!("unknown provider code {other} in ptgrm_options.provider"))),
    })
}

fn request_code(request: ProviderRequest) -> ptgrm_provider {
    match request {
        ProviderRequest::Auto => PTGRM_PROVIDER_AUTO,
        ProviderRequest::TensorRt => PTGRM_PROVIDER_TENSORRT,
        ProviderRequest::Cuda => PTGRM_PROVIDER_CUDA,
        ProviderRequest::Cpu => PTGRM_PROVIDER_CPU,
    }
}

pub(crate) fn provider_code(provider: Provider) -> ptgrm_provider {
    match provider {
        Provider::TensorRt => PTGRM_PROVIDER_TENSORRT,
        Provider::Cuda => PTGRM_PROVIDER_CUDA,
        Provider::Cpu => PTGRM_PROVIDER_CPU,
    }
}

fn check_size(struct_size: usize) -> Result<()> {
    if struct_size < MIN_SIZE {
        return Err(Error::invalid(format!(
            "ptgrm_options struct_size {struct_size} is smaller than the {MIN_SIZE} bytes of the first version; \
             pass sizeof(ptgrm_options)"
        )));
    }
    Ok(())
}

/// Optional path string: NULL or "" means unset. Non-UTF-8 paths are kept as bytes.
unsafe fn path_field(p: *const c_char) -> Option<PathBuf> {
    if p.is_null() {
        return None;
    }
    // SAFETY: the caller promises a NUL-terminated string (documented on the field).
    let bytes = unsafe { CStr::from_ptr(p) }.to_bytes();
    (!bytes.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

/// Reads caller options into [`EngineOptions`]; NULL gives the defaults.
///
/// # Safety
/// `p` is NULL or points to at least `(*p).struct_size` readable bytes.
pub(crate) unsafe fn read_options(p: *const ptgrm_options) -> Result<EngineOptions> {
    let mut o = EngineOptions::default();
    if p.is_null() {
        return Ok(o);
    }
    // SAFETY (whole block): `struct_size` is first and always present; every other field lies within
    // MIN_SIZE <= struct_size. Reads are unaligned-tolerant and yield plain integers/pointers.
    unsafe {
        let size = addr_of!((*p).struct_size).read_unaligned();
        check_size(size)?;
        if size > size_of::<ptgrm_options>() {
            let extra = std::slice::from_raw_parts(p.cast::<u8>().add(size_of::<ptgrm_options>()), size - size_of::<ptgrm_options>());
            if let Some(i) = extra.iter().position(|&b| b != 0) {
                return Err(Error::invalid(format!(
                    "ptgrm_options byte {} is set, but this libptgrm ({}) knows only the first {} bytes; \
                     upgrade libptgrm or leave newer fields at their defaults",
                    size_of::<ptgrm_options>() + i,
                    ptgrm::VERSION,
                    size_of::<ptgrm_options>()
                )));
            }
        }
        o.ort_library = path_field(addr_of!((*p).ort_library).read_unaligned());
        o.engine_cache_dir = path_field(addr_of!((*p).engine_cache_dir).read_unaligned());
        o.provider = provider_request(addr_of!((*p).provider).read_unaligned())?;
        o.device_id = addr_of!((*p).device_id).read_unaligned();
        o.threads = addr_of!((*p).threads).read_unaligned() as usize;
        o.max_resolution = (addr_of!((*p).max_width).read_unaligned() as usize, addr_of!((*p).max_height).read_unaligned() as usize);
        o.tile_size = addr_of!((*p).tile_size).read_unaligned() as usize;
        o.tile_overlap = addr_of!((*p).tile_overlap).read_unaligned() as usize;
        o.prior_interval = addr_of!((*p).prior_interval).read_unaligned();
        o.prior_smoothing = addr_of!((*p).prior_smoothing).read_unaligned();
        o.strength = addr_of!((*p).strength).read_unaligned();
        o.fp16 = flag(addr_of!((*p).fp16).read_unaligned(), "fp16")?;
        // Fields added after the first version: read only where the caller's struct has them
        // (a first-version caller's sizeof covers them as padding, zeroed by ptgrm_options_init).
        if size > offset_of!(ptgrm_options, spinning) {
            o.spinning = flag(addr_of!((*p).spinning).read_unaligned(), "spinning")?;
        }
        if size > offset_of!(ptgrm_options, prior_no_glide) {
            o.prior_glide = !flag(addr_of!((*p).prior_no_glide).read_unaligned(), "prior_no_glide")?;
        }
    }
    Ok(o)
}

/// Fills `opts` with the defaults. `struct_size` must be `sizeof(ptgrm_options)` as seen by the
/// caller (use `sizeof *opts`); it is stored in `opts->struct_size`. Bytes past the fields this
/// library knows are zeroed, which is every newer field's "default".
#[unsafe(no_mangle)]
pub unsafe extern "C" fn ptgrm_options_init(opts: *mut ptgrm_options, struct_size: usize) -> ptgrm_status {
    guard(|| {
        let p = non_null(opts, "options")?.cast_mut();
        check_size(struct_size)?;
        let d = EngineOptions::default();
        let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        // SAFETY: the caller provides `struct_size >= MIN_SIZE` writable bytes at `opts`; fields are
        // written through raw pointers, so no reference to possibly uninitialised memory is formed.
        unsafe {
            if struct_size > size_of::<ptgrm_options>() {
                p.cast::<u8>().add(size_of::<ptgrm_options>()).write_bytes(0, struct_size - size_of::<ptgrm_options>());
            }
            addr_of_mut!((*p).struct_size).write_unaligned(struct_size);
            addr_of_mut!((*p).ort_library).write_unaligned(std::ptr::null());
            addr_of_mut!((*p).engine_cache_dir).write_unaligned(std::ptr::null());
            addr_of_mut!((*p).provider).write_unaligned(request_code(d.provider));
            addr_of_mut!((*p).device_id).write_unaligned(d.device_id);
            addr_of_mut!((*p).threads).write_unaligned(clamp(d.threads));
            addr_of_mut!((*p).max_width).write_unaligned(clamp(d.max_resolution.0));
            addr_of_mut!((*p).max_height).write_unaligned(clamp(d.max_resolution.1));
            addr_of_mut!((*p).tile_size).write_unaligned(clamp(d.tile_size));
            addr_of_mut!((*p).tile_overlap).write_unaligned(clamp(d.tile_overlap));
            addr_of_mut!((*p).prior_interval).write_unaligned(d.prior_interval);
            addr_of_mut!((*p).prior_smoothing).write_unaligned(d.prior_smoothing);
            addr_of_mut!((*p).strength).write_unaligned(d.strength);
            addr_of_mut!((*p).fp16).write_unaligned(d.fp16 as u8);
            let known = struct_size.min(size_of::<ptgrm_options>());
            if known > offset_of!(ptgrm_options, spinning) {
                addr_of_mut!((*p).spinning).write_unaligned(d.spinning as u8);
            }
            if known > offset_of!(ptgrm_options, prior_no_glide) {
                addr_of_mut!((*p).prior_no_glide).write_unaligned(!d.prior_glide as u8);
            }
            // Padding after the last field is part of `sizeof`; zero it so the struct compares
            // and copies cleanly.
            let end = (offset_of!(ptgrm_options, prior_no_glide) + 1).min(known).max(offset_of!(ptgrm_options, fp16) + 1);
            p.cast::<u8>().add(end).write_bytes(0, known - end);
        }
        Ok(())
    })
}

/// Name of a provider ("auto", "tensorrt", "cuda", "cpu"), or NULL for an unknown code. Static string.
#[unsafe(no_mangle)]
pub extern "C" fn ptgrm_provider_name(provider: ptgrm_provider) -> *const c_char {
    match provider {
        PTGRM_PROVIDER_AUTO => c"auto".as_ptr(),
        PTGRM_PROVIDER_TENSORRT => c"tensorrt".as_ptr(),
        PTGRM_PROVIDER_CUDA => c"cuda".as_ptr(),
        PTGRM_PROVIDER_CPU => c"cpu".as_ptr(),
        _ => std::ptr::null(),
    }
}
