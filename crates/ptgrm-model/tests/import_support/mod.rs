//! Shared by the import_* tests: locating the third-party assets they need.
#![allow(dead_code)]

use std::path::PathBuf;

/// The folder scripts/fetch-weights.sh fills: $PTGRM_WEIGHTS_DIR, else <workspace>/.deps/weights.
pub fn weights_dir() -> PathBuf {
    match std::env::var_os("PTGRM_WEIGHTS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.deps/weights"),
    }
}

/// `Some(path)` when the asset exists. Otherwise prints why the test is skipped and returns
/// None, unless PTGRM_REQUIRE_IMPORT_ASSETS=1 (set in CI), where a missing asset fails the test.
pub fn asset(path: PathBuf, how_to_get: &str) -> Option<PathBuf> {
    if path.is_file() {
        return Some(path);
    }
    let msg = format!("{} is missing ({how_to_get})", path.display());
    if std::env::var("PTGRM_REQUIRE_IMPORT_ASSETS").as_deref() == Ok("1") {
        panic!("{msg}; PTGRM_REQUIRE_IMPORT_ASSETS=1 requires it");
    }
    eprintln!("skipped: {msg}");
    None
}

pub fn weights(file: &str) -> Option<PathBuf> {
    asset(weights_dir().join(file), "run scripts/fetch-weights.sh")
}
