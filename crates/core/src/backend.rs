//! The backend as a type. Every op in `ops/` (and the optimizer steps) checks
//! its arguments and computes its output shapes once, then hands the checked
//! inputs to a kernel trait of its family (`ops::matmul::MatmulKernels`, …).
//! Each trait is implemented once for the native CPU backend ([`Native`],
//! over the slice kernels of `cpu/`) and once for wgpu ([`Wgpu`], recording
//! the WGSL dispatches). The traits have no default bodies and [`Kernels`]
//! requires all of them, so a kernel missing from either backend is a compile
//! error rather than a panic at run time; [`kernels`] is the one place that
//! picks the backend of a device.

use crate::device::Device;
use crate::ops::activation::ActivationKernels;
use crate::ops::conv::ConvKernels;
use crate::ops::elementwise::ElementwiseKernels;
use crate::ops::layout::LayoutKernels;
use crate::ops::loss::LossKernels;
use crate::ops::matmul::MatmulKernels;
use crate::ops::neuron::NeuronKernels;
use crate::ops::norm::NormKernels;
use crate::ops::pad::PadKernels;
use crate::ops::pool::PoolKernels;
use crate::ops::reduce::ReduceKernels;
use crate::ops::resample::ResampleKernels;
use crate::optim::OptimKernels;

/// The native CPU backend: host memory, rayon threads, SIMD GEMM.
pub(crate) struct Native;

/// The wgpu backend: pooled GPU buffers and WGSL compute kernels.
pub(crate) struct Wgpu;

/// Every kernel family; a backend is a type that implements them all.
pub(crate) trait Kernels:
    ActivationKernels
    + ConvKernels
    + ElementwiseKernels
    + LayoutKernels
    + LossKernels
    + MatmulKernels
    + NeuronKernels
    + NormKernels
    + OptimKernels
    + PadKernels
    + PoolKernels
    + ReduceKernels
    + ResampleKernels
{
}

impl Kernels for Native {}
impl Kernels for Wgpu {}

/// The kernels of `dev`'s backend. Tensors live on the backend of their
/// device (`Tensor::uninit` allocates host memory exactly when the device is
/// the native one), so choosing by the device chooses by the storage.
pub(crate) fn kernels(dev: &Device) -> &'static dyn Kernels {
    if dev.is_cpu() {
        &Native
    } else {
        &Wgpu
    }
}
