//! spikeir-core: the engine under spikeir. GPU tensors on wgpu, WGSL compute
//! kernels with shapes passed as uniforms (one pipeline per op, never per
//! shape), a size-bucketed buffer pool, and dispatches batched into one
//! command encoder until something is read back.
//!
//! This crate knows nothing of Node; `crates/node` is a thin napi-rs binding.

pub mod autograd;
mod backend;
pub mod cpu;
pub mod data;
pub mod device;
pub mod error;
pub mod functional;
pub mod io;
pub mod ops;
pub mod optim;
mod pool;
pub mod profile;
pub mod random;
pub mod shape;
pub mod tensor;

pub use device::{
    AdapterChoice, AdapterProbe, Device, DeviceInfo, DeviceOptions, GpuCounters, KernelVariant,
};
pub use error::{Error, Result};
pub use tensor::Tensor;
