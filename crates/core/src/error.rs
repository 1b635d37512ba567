//! One error type for the whole engine. Every fallible call returns [`Result`];
//! the binding turns these into JS exceptions, so messages name the op, the
//! argument and the shapes involved.

use std::fmt;

/// Everything that can go wrong in the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// No usable adapter, or the device could not be created.
    Device(String),
    /// Shapes that do not fit together, or a shape that does not match the data.
    Shape(String),
    /// A tensor was used after `dispose()`.
    Disposed(String),
    /// A tensor larger than one storage binding of the adapter.
    TooLarge(String),
    /// A bad argument: unknown option, out-of-range value.
    InvalidArgument(String),
    /// The GPU reported a validation or out-of-memory error.
    Gpu(String),
    /// A file that cannot be read, decoded or written; the message names it and says why.
    File(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Device(m) => write!(f, "device error: {m}"),
            Error::Shape(m) => write!(f, "shape error: {m}"),
            Error::Disposed(m) => write!(f, "use after dispose: {m}"),
            Error::TooLarge(m) => write!(f, "tensor too large: {m}"),
            Error::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
            Error::Gpu(m) => write!(f, "GPU error: {m}"),
            Error::File(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// The engine's result type.
pub type Result<T> = std::result::Result<T, Error>;
