pub mod bundle_format;
