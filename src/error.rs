//! One error type for the whole runtime; every front end maps it (C status codes, GStreamer
//! element errors, CLI exit codes).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A caller argument is wrong (NULL, zero size, stride too small, bad option value).
    InvalidArgument,
    /// The bundle is missing, unreadable, corrupt or inconsistent with its graphs.
    Model,
    /// ONNX Runtime could not be found, loaded, or is too old.
    Runtime,
    /// The requested execution provider is not available.
    Provider,
    /// Inference failed while running.
    Inference,
    /// File or image I/O failed.
    Io,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error { kind, message: message.into() }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }
    pub fn model(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Model, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<ptgrm_bundle::FormatError> for Error {
    fn from(e: ptgrm_bundle::FormatError) -> Self {
        Error::model(e.to_string())
    }
}
