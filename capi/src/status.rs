//! Status codes, the per-thread last-error message, and the panic barrier.

use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};

use ptgrm::error::{Error, ErrorKind, Result};

/// Result of every fallible call. The numeric values are part of the ABI and never change.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ptgrm_status {
    /// Success.
    PTGRM_OK = 0,
    /// An argument is NULL, out of range or inconsistent (size, stride, format, option value).
    PTGRM_ERR_INVALID_ARGUMENT = 1,
    /// The model bundle is missing, unreadable, corrupt, or does not match its graphs.
    PTGRM_ERR_MODEL = 2,
    /// ONNX Runtime could not be found or loaded, or is too old.
    PTGRM_ERR_RUNTIME = 3,
    /// The requested execution provider is not available.
    PTGRM_ERR_PROVIDER = 4,
    /// Inference failed while running.
    PTGRM_ERR_INFERENCE = 5,
    /// File input/output failed.
    PTGRM_ERR_IO = 6,
    /// An internal error (a bug in libptgrm) was caught at the library boundary.
    PTGRM_ERR_PANIC = 7,
}

impl From<ErrorKind> for ptgrm_status {
    fn from(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::InvalidArgument => ptgrm_status::PTGRM_ERR_INVALID_ARGUMENT,
            ErrorKind::Model => ptgrm_status::PTGRM_ERR_MODEL,
            ErrorKind::Runtime => ptgrm_status::PTGRM_ERR_RUNTIME,
            ErrorKind::Provider => ptgrm_status::PTGRM_ERR_PROVIDER,
            ErrorKind::Inference => ptgrm_status::PTGRM_ERR_INFERENCE,
            ErrorKind::Io => ptgrm_status::PTGRM_ERR_IO,
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NULs would truncate the C string silently; make them visible instead.
    let c = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = c);
}

/// Runs an entry point's body: maps its error to a status and the last-error message, and stops a
/// panic at the boundary (unwinding into C is undefined behaviour).
pub(crate) fn guard(body: impl FnOnce() -> Result<()>) -> ptgrm_status {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => {
            set_last_error("");
            ptgrm_status::PTGRM_OK
        }
        Ok(Err(e)) => {
            set_last_error(&e.message);
            e.kind.into()
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic payload".into());
            set_last_error(&format!("internal error in libptgrm (please report): {what}"));
            ptgrm_status::PTGRM_ERR_PANIC
        }
    }
}

/// Turns a NULL pointer argument into an error naming it.
pub(crate) fn non_null<T>(p: *const T, what: &str) -> Result<*const T> {
    if p.is_null() { Err(Error::invalid(format!("{what} is NULL"))) } else { Ok(p) }
}

/// Message describing the last failed call on the calling thread ("" after a successful call).
///
/// Every function returning a `ptgrm_status` replaces it. The pointer is never NULL and stays valid
/// until the next such call on the same thread; copy the text to keep it longer.
#[unsafe(no_mangle)]
pub extern "C" fn ptgrm_last_error() -> *const c_char {
    // Reading a thread-local cannot panic except during thread teardown; fall back to a static.
    catch_unwind(|| LAST_ERROR.with(|e| e.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}

/// Library version, e.g. "0.1.0" (static string).
#[unsafe(no_mangle)]
pub extern "C" fn ptgrm_version() -> *const c_char {
    const V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last() -> String {
        unsafe { CStr::from_ptr(ptgrm_last_error()) }.to_string_lossy().into_owned()
    }

    #[test]
    fn a_panic_becomes_a_status_and_a_message() {
        let st = guard(|| panic!("boom {}", 42));
        assert_eq!(st, ptgrm_status::PTGRM_ERR_PANIC);
        assert!(last().contains("internal error") && last().contains("boom 42"), "{}", last());
    }

    #[test]
    fn errors_map_to_their_status_and_success_clears_the_message() {
        let st = guard(|| Err(Error::new(ErrorKind::Inference, "run failed\0here")));
        assert_eq!(st, ptgrm_status::PTGRM_ERR_INFERENCE);
        assert_eq!(last(), "run failed\\0here");
        assert_eq!(guard(|| Ok(())), ptgrm_status::PTGRM_OK);
        assert_eq!(last(), "");
    }
}
