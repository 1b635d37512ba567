//! Tensor ops: host side of the WGSL kernels. Each function checks its
//! arguments, allocates the output and records one dispatch; nothing is read
//! back.

mod elementwise;
mod matmul;

pub use elementwise::{binary, fill, unary, BinaryOp, UnaryOp};
pub use matmul::matmul;
