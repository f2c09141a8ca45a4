//! Finding, checking and loading the ONNX Runtime shared library, once per process.
//!
//! Order: explicit option -> `ORT_DYLIB_PATH` -> the path scripts/setup.sh recorded (baked in at
//! build time) -> the system's `libonnxruntime.so.1`. Each candidate's version is read with
//! `OrtGetApiBase()->GetVersionString()` before ort touches it, because ort panics on some
//! version mismatches; failure is an error listing every path tried.

use crate::error::{Error, ErrorKind, Result};
use std::ffi::{CStr, CString, c_char};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The oldest ONNX Runtime this build can drive (ort's `api-31` feature).
pub const MIN_MINOR_VERSION: u32 = 31;

#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub path: PathBuf,
    pub version: String,
}

static RUNTIME: OnceLock<RuntimeInfo> = OnceLock::new();
static ENVIRONMENT: OnceLock<ort::environment::Environment> = OnceLock::new();
static INIT_LOCK: Mutex<()> = Mutex::new(());

/// Where `scripts/setup.sh` put the library when this crate was built, if it did.
pub fn setup_recorded_path() -> Option<PathBuf> {
    option_env!("PTGRM_SETUP_ORT_PATH").filter(|p| !p.is_empty()).map(PathBuf::from)
}

/// Candidate libraries in the order they are tried, each with where it came from.
pub fn candidates(explicit: Option<&Path>) -> Vec<(&'static str, PathBuf)> {
    let mut out = Vec::new();
    if let Some(p) = explicit {
        out.push(("explicit option", p.to_path_buf()));
        // An explicit path is a decision: don't silently use another library.
        return out;
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        out.push(("ORT_DYLIB_PATH", PathBuf::from(p)));
    }
    if let Some(p) = setup_recorded_path() {
        out.push(("path recorded by scripts/setup.sh", p));
    }
    out.push(("system library", PathBuf::from("libonnxruntime.so.1")));
    out
}

/// Reads the library's version without initializing ort. The handle stays open (cheap; ort
/// opens the same library right after).
fn probe_version(path: &Path) -> std::result::Result<String, String> {
    let c_path = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| "path contains NUL".to_string())?;
    // SAFETY: dlopen/dlsym with valid C strings; the symbol is called per the ORT C API
    // (OrtGetApiBase returns a static table whose GetVersionString returns a static string).
    unsafe {
        let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        if handle.is_null() {
            let err = libc::dlerror();
            let msg = if err.is_null() { "dlopen failed".into() } else { CStr::from_ptr(err).to_string_lossy().into_owned() };
            return Err(msg);
        }
        let sym = libc::dlsym(handle, c"OrtGetApiBase".as_ptr());
        if sym.is_null() {
            return Err("not an ONNX Runtime library (no OrtGetApiBase symbol)".into());
        }
        #[repr(C)]
        struct ApiBase {
            get_api: unsafe extern "C" fn(u32) -> *const std::ffi::c_void,
            get_version_string: unsafe extern "C" fn() -> *const c_char,
        }
        let get_base: unsafe extern "C" fn() -> *const ApiBase = std::mem::transmute(sym);
        let base = get_base();
        if base.is_null() {
            return Err("OrtGetApiBase returned NULL".into());
        }
        let v = ((*base).get_version_string)();
        if v.is_null() {
            return Err("GetVersionString returned NULL".into());
        }
        Ok(CStr::from_ptr(v).to_string_lossy().into_owned())
    }
}

fn version_ok(version: &str) -> bool {
    let mut it = version.split('.').map(|p| p.parse::<u32>().ok());
    matches!((it.next(), it.next()), (Some(Some(1)), Some(Some(minor))) if minor >= MIN_MINOR_VERSION)
}

/// Loads ONNX Runtime (first call) or returns the already-loaded one. One library and one ort
/// environment serve the whole process.
pub fn runtime(explicit: Option<&Path>) -> Result<&'static RuntimeInfo> {
    let _guard = INIT_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(info) = RUNTIME.get() {
        if let Some(p) = explicit
            && p != info.path
        {
            log::warn!(
                "ONNX Runtime is already loaded from {} in this process; ignoring the requested {}",
                info.path.display(),
                p.display()
            );
        }
        return Ok(info);
    }
    let mut tried = Vec::new();
    for (source, path) in candidates(explicit) {
        let version = match probe_version(&path) {
            Ok(v) => v,
            Err(e) => {
                tried.push(format!("{} ({source}): {e}", path.display()));
                continue;
            }
        };
        if !version_ok(&version) {
            tried.push(format!(
                "{} ({source}): version {version} is too old, ptgrm needs ONNX Runtime >= 1.{MIN_MINOR_VERSION}",
                path.display()
            ));
            continue;
        }
        let builder = match ort::init_from(&path) {
            Ok(b) => b,
            Err(e) => {
                tried.push(format!("{} ({source}): {e}", path.display()));
                continue;
            }
        };
        let env = builder
            .with_name("ptgrm")
            .with_telemetry(false)
            .build()
            .map_err(|e| Error::new(ErrorKind::Runtime, format!("creating the ONNX Runtime environment: {e}")))?;
        let _ = ENVIRONMENT.set(env);
        log::info!("ONNX Runtime {version} loaded from {} ({source})", path.display());
        return Ok(RUNTIME.get_or_init(|| RuntimeInfo { path, version }));
    }
    Err(Error::new(
        ErrorKind::Runtime,
        format!(
            "ONNX Runtime library not found or unusable; tried:\n  {}\nRun scripts/setup.sh, set ORT_DYLIB_PATH, or pass the library path explicitly",
            tried.join("\n  ")
        ),
    ))
}

/// The process-wide ort environment (loads the runtime first if needed).
pub fn environment(explicit: Option<&Path>) -> Result<&'static ort::environment::Environment> {
    runtime(explicit)?;
    Ok(ENVIRONMENT.get().expect("environment is set whenever the runtime is"))
}

/// Execution providers compiled into the loaded library, e.g. ["CPUExecutionProvider"].
pub fn available_providers() -> Result<Vec<String>> {
    runtime(None)?;
    let api = ort::api();
    let mut ptr: *mut *mut c_char = std::ptr::null_mut();
    let mut n: std::ffi::c_int = 0;
    // SAFETY: ORT C API contract: returns an array of n C strings, released with
    // ReleaseAvailableProviders.
    unsafe {
        let status = (api.GetAvailableProviders)(&mut ptr, &mut n);
        if !status.0.is_null() {
            (api.ReleaseStatus)(status.0);
            return Err(Error::new(ErrorKind::Runtime, "GetAvailableProviders failed"));
        }
        let names = (0..n as usize).map(|i| CStr::from_ptr(*ptr.add(i)).to_string_lossy().into_owned()).collect();
        let _ = (api.ReleaseAvailableProviders)(ptr, n);
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_gate() {
        assert!(version_ok("1.31.1"));
        assert!(version_ok("1.32.0"));
        assert!(!version_ok("1.30.0"));
        assert!(!version_ok("1.2"));
        assert!(!version_ok("garbage"));
    }

    #[test]
    fn explicit_path_is_the_only_candidate() {
        let c = candidates(Some(Path::new("/nonexistent/libonnxruntime.so")));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn probe_reports_missing_and_non_ort_libraries() {
        assert!(probe_version(Path::new("/nonexistent/libx.so")).is_err());
        let e = probe_version(Path::new("libc.so.6")).unwrap_err();
        assert!(e.contains("OrtGetApiBase"), "{e}");
    }
}
