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

/// Whether this CPU has AVX2: kernels whose loops the compiler vectorises
/// run from a copy compiled for it (8 lanes instead of the x86-64
/// baseline's 4). Only `avx,avx2` are enabled, not `fma`, so every sum is
/// rounded as in the baseline copy and results do not depend on the CPU.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}
