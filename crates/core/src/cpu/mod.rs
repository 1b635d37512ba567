//! The native CPU backend's kernels: plain functions over `&[f32]` slices,
//! threaded with rayon, GEMM from the `gemm` crate. The op wrappers in
//! `ops/` validate arguments and compute output shapes, then call these for
//! tensors on the CPU device, so both backends share one API and one tape.
//!
//! Each function takes already-validated inputs and returns its outputs.

pub mod activation;
pub mod buffers;
pub mod conv;
pub mod conv_narrow;
pub mod elementwise;
pub mod gemm;
pub mod layout;
pub mod loss;
pub mod neuron;
pub mod norm;
pub mod optim;
pub mod pad;
pub mod pool;
pub mod reduce;
pub mod resample;
pub mod winograd;
