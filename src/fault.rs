//! Test seam, compiled only with the `fault-injection` feature (front ends enable it in their
//! dev-dependencies): makes a GPU provider look usable at load and fail its first real frame,
//! the one failure that cannot be produced on demand on a CPU-only machine. Tests use it to
//! check that the engine falls back and that every front end reports the provider it ends on.
//!
//! Keyed by bundle directory so tests running in parallel in one process do not see each
//! other's faults.

use crate::providers::Provider;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static FAULTS: Mutex<Vec<(PathBuf, Provider)>> = Mutex::new(Vec::new());

fn key(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}

/// Engines loaded from `bundle_dir` from now on: `provider` opens (its sessions are CPU
/// sessions standing in for it, warm-up included) and its first real frame fails.
pub fn fail_first_frame(bundle_dir: &Path, provider: Provider) {
    FAULTS.lock().unwrap_or_else(|e| e.into_inner()).push((key(bundle_dir), provider));
}

/// Removes every fault registered for `bundle_dir`.
pub fn clear(bundle_dir: &Path) {
    let k = key(bundle_dir);
    FAULTS.lock().unwrap_or_else(|e| e.into_inner()).retain(|(d, _)| *d != k);
}

pub(crate) fn fails_first_frame(bundle_dir: &Path, provider: Provider) -> bool {
    let k = key(bundle_dir);
    FAULTS.lock().unwrap_or_else(|e| e.into_inner()).iter().any(|(d, p)| *d == k && *p == provider)
}
