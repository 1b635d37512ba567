//! Tensor ops. Each function checks its arguments and computes the output
//! shapes once, for both backends, then calls its family's kernel trait
//! (`ActivationKernels`, `ConvKernels`, …) on the backend of the device
//! (`crate::backend::kernels`). Each file implements its trait twice: for
//! the native CPU backend over the slice kernels of `crate::cpu`, and for
//! wgpu, recording WGSL dispatches; nothing is read back. Forward and
//! backward kernels of an op live in the same file; the autograd tape
//! decides which to call.

pub mod activation;
pub mod conv;
pub(crate) mod elementwise;
pub mod layout;
pub mod loss;
pub(crate) mod matmul;
pub mod neuron;
pub mod norm;
pub mod pad;
pub mod pool;
pub mod reduce;
pub mod resample;

pub use elementwise::{binary, fill, unary, BinaryOp, UnaryOp};
pub use matmul::matmul;
