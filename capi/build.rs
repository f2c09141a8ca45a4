//! libptgrm.so carries a versioned soname so C programs link against the ABI major version.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libptgrm.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
}
