//! Tensor ops: host side of the WGSL kernels. Each function checks its
//! arguments, allocates the output and records its dispatches; nothing is
//! read back. Forward and backward kernels of an op live in the same file;
//! the autograd tape decides which to call.

pub mod activation;
pub mod conv;
mod elementwise;
pub mod layout;
pub mod loss;
mod matmul;
pub mod neuron;
pub mod norm;
pub mod pad;
pub mod pool;
pub mod reduce;
pub mod resample;

pub use elementwise::{binary, fill, unary, BinaryOp, UnaryOp};
pub use matmul::matmul;
