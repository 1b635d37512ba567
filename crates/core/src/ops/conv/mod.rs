//! 2-D convolution (PyTorch's cross-correlation), forward and backward, as
//! implicit GEMMs: M = output pixels, N = output channels, K = (tap, source
//! channel). im2col is never materialised; each kernel maps an output pixel
//! and a tap to the source pixel it reads (`conv2d_common.wgsl`).
//!
//! The kernels read activations packed (`conv2d_pack.wgsl`): pixel-major,
//! each group's channels in vec4 quads, plus one all-zero pixel that padding
//! taps read instead of branching. The input gradient is the forward kernel
//! with the transposed tap map and re-packed weights. The weight gradient
//! reduces chunks of pixels into partial sums that a second kernel adds, so
//! that few weights and many pixels still spread over many invocations. Every
//! call records a fixed handful of dispatches, whatever the batch.
//!
//! Two kernel families, picked by [`crate::device::KernelVariant`]: shared-memory tiles for
//! GPUs, and for CPU adapters register tiles with no shared memory or barriers
//! (`conv2d_register.wgsl` says why).
//!
//! This module checks the shapes (`geometry`) and hands them to a backend;
//! on wgpu, `gemm` runs the forward and input-gradient GEMMs, `wgrad` the
//! weight and bias gradients, `packing` lays out their operands and `source`
//! generates the register kernels' WGSL.

mod gemm;
mod geometry;
mod packing;
mod source;
mod wgrad;

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use geometry::{check_grad_out, geometry, Geometry};

/// Convolution hyper-parameters, `[height, width]` pairs as in PyTorch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dArgs {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dArgs {
    fn default() -> Self {
        Conv2dArgs {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Register kernels: (pixels, output channels) per invocation, the widest
/// tile first. On lavapipe, 64 → 64 channels ran at about 27 GFLOP/s of CPU
/// time with 16 × 32 and 21 with 8 × 16; 32 × 32 was hardly faster and takes
/// llvmpipe over ten seconds to compile. The narrower tiles keep layers with
/// few output channels per group from computing mostly padding.
const REGISTER_TILES: [(usize, usize); 3] = [(16, 32), (32, 16), (32, 4)];
/// Invocations per register-kernel workgroup (`@workgroup_size` in the WGSL).
const REGISTER_WORKGROUP: usize = 32;
/// Register weight-gradient tiles, for output and input channels alike.
const WGRAD_REGISTER_TILES: [usize; 2] = [16, 4];
/// Tiled kernels: pixels and channels per workgroup tile (`64u` in the WGSL).
const TILED_TILE: usize = 64;
/// Budget for the weight gradient's partial sums, in floats.
const WGRAD_PARTIAL_FLOATS: usize = 1 << 23;
/// Fewest grad_out pixels one weight-gradient partial sum covers.
const WGRAD_MIN_CHUNK: usize = 256;
/// grad_out values each first-stage bias-gradient invocation adds.
const BIAS_CHUNK: usize = 1024;
/// llvmpipe silently ends an invocation's loops after 65 535 iterations in
/// all (a guard against endless loops).
const LLVMPIPE_LOOP_LIMIT: usize = 65_535;
/// Most iterations of one data-dependent loop in these kernels, so that
/// nested loops stay below that limit.
const MAX_LOOP: usize = 16_384;

/// The shape `[N, Cout, Hout, Wout]` of `conv2d(x, w)` after checking that
/// the shapes and arguments fit together, with
/// `Hout = ⌊(H + 2·padding − dilation·(KH − 1) − 1) / stride⌋ + 1` (likewise Wout).
pub fn conv2d_output_shape(x: &[usize], w: &[usize], args: &Conv2dArgs) -> Result<Vec<usize>> {
    Ok(geometry("conv2d", x, w, args)?.out_shape())
}

/// A validated 4-D shape as an array.
fn four(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

fn div4(c: usize) -> usize {
    c.div_ceil(4)
}

/// The narrowest of `tiles` (widest first) that still covers `channels`,
/// else the widest.
fn narrowest_tile(tiles: &[usize], channels: usize) -> usize {
    tiles
        .iter()
        .copied()
        .rfind(|&t| t >= channels)
        .unwrap_or(tiles[0])
}

/// `y[n, o, i, j] = bias[o] + Σ_{c, ky, kx} x[n, g·Cin/G + c, i·s + ky·d − p, j·s + kx·d − p] · w[o, c, ky, kx]`
/// with `g = o / (Cout/G)` and taps outside the input contributing zero.
/// `x`: `[N, Cin, H, W]`, `w`: `[Cout, Cin/groups, KH, KW]`, `bias`: `[Cout]`.
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, args: &Conv2dArgs) -> Result<Tensor> {
    let op = "conv2d";
    x.same_device(w, op)?;
    let geo = geometry(op, x.shape(), w.shape(), args)?;
    if let Some(b) = bias {
        x.same_device(b, op)?;
        if b.shape() != [geo.cout] {
            return Err(Error::Shape(format!(
                "{op}: bias {:?} must be [{}] for weight {:?}",
                b.shape(),
                geo.cout,
                w.shape()
            )));
        }
    }
    kernels(x.device()).conv2d(x, w, bias, &geo)
}

/// The gradient of `conv2d` with respect to its input (`x_shape`,
/// `[N, Cin, H, W]`): a transposed convolution in gather form, each input
/// pixel summing `grad_out · w` over the output pixels and taps that read it.
pub fn conv2d_backward_input(
    grad_out: &Tensor,
    w: &Tensor,
    x_shape: &[usize],
    args: &Conv2dArgs,
) -> Result<Tensor> {
    let op = "conv2d_backward_input";
    grad_out.same_device(w, op)?;
    let geo = geometry(op, x_shape, w.shape(), args)?;
    check_grad_out(op, grad_out, &geo)?;
    kernels(grad_out.device()).conv2d_backward_input(grad_out, w, &geo)
}

/// The gradient of `conv2d` with respect to its weight (`w_shape`,
/// `[Cout, Cin/groups, KH, KW]`): `Σ_{n, i, j} grad_out[n, o, i, j] · x[n, c, tap(i, j)]`,
/// reduced per chunk of pixels and then over the chunks.
pub fn conv2d_backward_weight(
    grad_out: &Tensor,
    x: &Tensor,
    w_shape: &[usize],
    args: &Conv2dArgs,
) -> Result<Tensor> {
    let op = "conv2d_backward_weight";
    grad_out.same_device(x, op)?;
    let geo = geometry(op, x.shape(), w_shape, args)?;
    check_grad_out(op, grad_out, &geo)?;
    kernels(grad_out.device()).conv2d_backward_weight(grad_out, x, &geo)
}

/// The gradient of `conv2d` with respect to its bias: `grad_out`
/// (`[N, Cout, H, W]`) summed over N, H and W, `[Cout]`.
pub fn conv2d_backward_bias(grad_out: &Tensor) -> Result<Tensor> {
    let op = "conv2d_backward_bias";
    let s = grad_out.shape();
    if s.len() != 4 || s.contains(&0) {
        return Err(Error::Shape(format!(
            "{op}: grad_out {s:?} must be [N, Cout, H, W] with no zero-sized dimension"
        )));
    }
    kernels(grad_out.device()).conv2d_backward_bias(grad_out)
}

/// The convolution kernels of a backend, given checked operands and their
/// geometry (the unfolded one: each backend folds what it needs).
pub(crate) trait ConvKernels {
    fn conv2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        geo: &Geometry,
    ) -> Result<Tensor>;
    fn conv2d_backward_input(
        &self,
        grad_out: &Tensor,
        w: &Tensor,
        geo: &Geometry,
    ) -> Result<Tensor>;
    fn conv2d_backward_weight(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        geo: &Geometry,
    ) -> Result<Tensor>;
    /// `grad_out` is `[N, C, H, W]` with no zero-sized dimension.
    fn conv2d_backward_bias(&self, grad_out: &Tensor) -> Result<Tensor>;
}

impl ConvKernels for Native {
    fn conv2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        geo: &Geometry,
    ) -> Result<Tensor> {
        let args = &geo.args;
        let out_shape = geo.out_shape();
        let b = bias.map(|b| b.host());
        let y = cpu::conv::conv2d(
            &x.host(),
            four(x.shape()),
            &w.host(),
            four(w.shape()),
            b.as_deref().map(|v| v.as_slice()),
            args.stride,
            args.padding,
            args.dilation,
            args.groups,
        );
        Tensor::from_vec(x.device(), y, &out_shape)
    }

    fn conv2d_backward_input(
        &self,
        grad_out: &Tensor,
        w: &Tensor,
        geo: &Geometry,
    ) -> Result<Tensor> {
        let args = &geo.args;
        let x_shape = [geo.n, geo.cin, geo.h, geo.w];
        let gx = cpu::conv::conv2d_backward_input(
            &grad_out.host(),
            four(grad_out.shape()),
            &w.host(),
            four(w.shape()),
            x_shape,
            args.stride,
            args.padding,
            args.dilation,
            args.groups,
        );
        Tensor::from_vec(grad_out.device(), gx, &x_shape)
    }

    fn conv2d_backward_weight(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        geo: &Geometry,
    ) -> Result<Tensor> {
        let args = &geo.args;
        let w_shape = geo.weight_shape();
        let gw = cpu::conv::conv2d_backward_weight(
            &grad_out.host(),
            four(grad_out.shape()),
            &x.host(),
            four(x.shape()),
            four(&w_shape),
            args.stride,
            args.padding,
            args.dilation,
            args.groups,
        );
        Tensor::from_vec(grad_out.device(), gw, &w_shape)
    }

    fn conv2d_backward_bias(&self, grad_out: &Tensor) -> Result<Tensor> {
        let s = grad_out.shape();
        Tensor::from_vec(
            grad_out.device(),
            cpu::conv::conv2d_backward_bias(&grad_out.host(), four(s)),
            &[s[1]],
        )
    }
}

impl ConvKernels for Wgpu {
    fn conv2d(
        &self,
        x: &Tensor,
        w: &Tensor,
        bias: Option<&Tensor>,
        geo: &Geometry,
    ) -> Result<Tensor> {
        gemm::forward(x, w, bias, geo, "conv2d")
    }

    fn conv2d_backward_input(
        &self,
        grad_out: &Tensor,
        w: &Tensor,
        geo: &Geometry,
    ) -> Result<Tensor> {
        gemm::backward_input(grad_out, w, geo, "conv2d_backward_input")
    }

    fn conv2d_backward_weight(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        geo: &Geometry,
    ) -> Result<Tensor> {
        wgrad::backward_weight(grad_out, x, geo, "conv2d_backward_weight")
    }

    fn conv2d_backward_bias(&self, grad_out: &Tensor) -> Result<Tensor> {
        wgrad::backward_bias(grad_out, "conv2d_backward_bias")
    }
}
