//! Pooling kernels: average and max pooling over 2-D windows, and the
//! adaptive average pool to 1×1. Backward kernels gather (one invocation per
//! input pixel sums the outputs whose window holds it), so no atomics.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::ops::layout::{reduce_dims, to_u32};
use crate::tensor::Tensor;

/// Largest plane whose flat indices f32 stores exactly.
const MAX_INDEXED_PLANE: usize = 1 << 24;

/// Pooling geometry after validation.
pub(crate) struct Window {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Window {
    fn new(
        op: &str,
        x_shape: &[usize],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Result<Window> {
        let [n, c, h, w] = *x_shape else {
            return Err(Error::Shape(format!(
                "{op}: expected an NCHW input, got shape {x_shape:?}"
            )));
        };
        if kernel.contains(&0) || stride.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "{op}: kernel {kernel:?} and stride {stride:?} must be positive (input {x_shape:?})"
            )));
        }
        // PyTorch's rule; it also guarantees every window holds an image pixel.
        if (0..2).any(|i| 2 * padding[i] > kernel[i]) {
            return Err(Error::InvalidArgument(format!(
                "{op}: padding {padding:?} must be at most half of kernel {kernel:?} (input {x_shape:?})"
            )));
        }
        if h + 2 * padding[0] < kernel[0] || w + 2 * padding[1] < kernel[1] {
            return Err(Error::Shape(format!(
                "{op}: kernel {kernel:?} is larger than input {x_shape:?} with padding {padding:?}"
            )));
        }
        let oh = (h + 2 * padding[0] - kernel[0]) / stride[0] + 1;
        let ow = (w + 2 * padding[1] - kernel[1]) / stride[1] + 1;
        Ok(Window {
            n,
            c,
            h,
            w,
            oh,
            ow,
            kernel,
            stride,
            padding,
        })
    }

    fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }

    /// Uniform shared by the pooling kernels; the last word is 1/(kh·kw).
    fn params(&self, op: &str, threads: usize) -> Result<Vec<u32>> {
        let mut p = Vec::with_capacity(12);
        for v in [
            threads,
            self.h,
            self.w,
            self.oh,
            self.ow,
            self.kernel[0],
            self.kernel[1],
            self.stride[0],
            self.stride[1],
            self.padding[0],
            self.padding[1],
        ] {
            p.push(to_u32(op, "size", v)?);
        }
        p.push((1.0 / (self.kernel[0] * self.kernel[1]) as f32).to_bits());
        Ok(p)
    }

    fn check_grad(&self, op: &str, what: &str, t: &Tensor) -> Result<()> {
        if t.shape() != self.out_shape() {
            return Err(Error::Shape(format!(
                "{op}: {what} has shape {:?}, but pooling [{}, {}, {}, {}] gives {:?}",
                t.shape(),
                self.n,
                self.c,
                self.h,
                self.w,
                self.out_shape()
            )));
        }
        Ok(())
    }
}

/// Average pooling with PyTorch's defaults (count_include_pad = true, floor
/// output size): [N, C, H, W] → [N, C, (H + 2p − k)/s + 1, …].
pub fn avg_pool2d(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<Tensor> {
    let op = "avg_pool2d";
    let win = Window::new(op, x.shape(), kernel, stride, padding)?;
    kernels(x.device()).avg_pool2d(x, &win)
}

/// Gradient of [`avg_pool2d`] with respect to its input of shape `x_shape`.
pub fn avg_pool2d_backward(
    grad_out: &Tensor,
    x_shape: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<Tensor> {
    let op = "avg_pool2d_backward";
    let win = Window::new(op, x_shape, kernel, stride, padding)?;
    win.check_grad(op, "grad_out", grad_out)?;
    kernels(grad_out.device()).avg_pool2d_backward(grad_out, x_shape, &win)
}

/// Max pooling (padded taps never win). Returns the output and, per output,
/// the flat index y·W + x of its maximum within the (n, c) plane, stored as
/// f32 (exact because planes are limited to 2^24 pixels). Among equal
/// values the first in row-major window order wins. NaNs are not propagated
/// reliably: WGSL lets the compiler assume floats are never NaN.
pub fn max_pool2d(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<(Tensor, Tensor)> {
    let op = "max_pool2d";
    let win = Window::new(op, x.shape(), kernel, stride, padding)?;
    if win.h * win.w > MAX_INDEXED_PLANE {
        return Err(Error::TooLarge(format!(
            "{op}: a plane of input {:?} has more than 2^24 pixels, beyond what f32 argmax indices hold exactly",
            x.shape()
        )));
    }
    kernels(x.device()).max_pool2d(x, &win)
}

/// Gradient of [`max_pool2d`]: each input pixel sums the gradients of the
/// windows whose argmax (`indices`, as returned by the forward) it is. The
/// window geometry is needed to find the few windows that hold a pixel.
pub fn max_pool2d_backward(
    grad_out: &Tensor,
    indices: &Tensor,
    x_shape: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<Tensor> {
    let op = "max_pool2d_backward";
    grad_out.same_device(indices, op)?;
    let win = Window::new(op, x_shape, kernel, stride, padding)?;
    win.check_grad(op, "grad_out", grad_out)?;
    win.check_grad(op, "indices", indices)?;
    kernels(grad_out.device()).max_pool2d_backward(grad_out, indices, x_shape, &win)
}

fn image_shape(op: &str, shape: &[usize]) -> Result<[usize; 4]> {
    match *shape {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::Shape(format!(
            "{op}: expected an NCHW tensor, got shape {shape:?}"
        ))),
    }
}

/// Mean over each (n, c) plane: [N, C, H, W] → [N, C, 1, 1], a parallel
/// reduction per plane.
pub fn adaptive_avg_pool_1x1(x: &Tensor) -> Result<Tensor> {
    let op = "adaptive_avg_pool_1x1";
    let [_, _, h, w] = image_shape(op, x.shape())?;
    if h * w == 0 {
        return Err(Error::Shape(format!(
            "{op}: input {:?} has empty planes",
            x.shape()
        )));
    }
    kernels(x.device()).adaptive_avg_pool_1x1(x)
}

/// Gradient of [`adaptive_avg_pool_1x1`]: dx[n, c, y, x] = g[n, c] / (H·W).
pub fn adaptive_avg_pool_1x1_backward(grad_out: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    let op = "adaptive_avg_pool_1x1_backward";
    let [n, c, _, _] = image_shape(op, x_shape)?;
    if grad_out.shape() != [n, c, 1, 1] {
        return Err(Error::Shape(format!(
            "{op}: grad_out has shape {:?}, but input {x_shape:?} pools to [{n}, {c}, 1, 1]",
            grad_out.shape()
        )));
    }
    kernels(grad_out.device()).adaptive_avg_pool_1x1_backward(grad_out, x_shape)
}

/// The pooling kernels of a backend, given checked geometry.
pub(crate) trait PoolKernels {
    fn avg_pool2d(&self, x: &Tensor, win: &Window) -> Result<Tensor>;
    fn avg_pool2d_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
        win: &Window,
    ) -> Result<Tensor>;
    /// The output and the flat in-plane index of each output's maximum.
    fn max_pool2d(&self, x: &Tensor, win: &Window) -> Result<(Tensor, Tensor)>;
    fn max_pool2d_backward(
        &self,
        grad_out: &Tensor,
        indices: &Tensor,
        x_shape: &[usize],
        win: &Window,
    ) -> Result<Tensor>;
    /// `x` is NCHW with non-empty planes.
    fn adaptive_avg_pool_1x1(&self, x: &Tensor) -> Result<Tensor>;
    /// `grad_out` is `[N, C, 1, 1]` for an input of `x_shape`.
    fn adaptive_avg_pool_1x1_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
    ) -> Result<Tensor>;
}

impl PoolKernels for Native {
    fn avg_pool2d(&self, x: &Tensor, win: &Window) -> Result<Tensor> {
        let dev = x.device();
        let (kernel, stride, padding) = (win.kernel, win.stride, win.padding);
        let y = cpu::pool::avg_pool2d(&x.host(), x.shape(), kernel, stride, padding);
        Tensor::from_vec(dev, y, &win.out_shape())
    }

    fn avg_pool2d_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
        win: &Window,
    ) -> Result<Tensor> {
        let dev = grad_out.device();
        let (kernel, stride, padding) = (win.kernel, win.stride, win.padding);
        let dx = cpu::pool::avg_pool2d_backward(&grad_out.host(), x_shape, kernel, stride, padding);
        Tensor::from_vec(dev, dx, x_shape)
    }

    fn max_pool2d(&self, x: &Tensor, win: &Window) -> Result<(Tensor, Tensor)> {
        let dev = x.device();
        let (kernel, stride, padding) = (win.kernel, win.stride, win.padding);
        let (y, idx) = cpu::pool::max_pool2d(&x.host(), x.shape(), kernel, stride, padding);
        Ok((
            Tensor::from_vec(dev, y, &win.out_shape())?,
            Tensor::from_vec(dev, idx, &win.out_shape())?,
        ))
    }

    fn max_pool2d_backward(
        &self,
        grad_out: &Tensor,
        indices: &Tensor,
        x_shape: &[usize],
        win: &Window,
    ) -> Result<Tensor> {
        let dev = grad_out.device();
        let (kernel, stride, padding) = (win.kernel, win.stride, win.padding);
        let dx = cpu::pool::max_pool2d_backward(
            &grad_out.host(),
            &indices.host(),
            x_shape,
            kernel,
            stride,
            padding,
        );
        Tensor::from_vec(dev, dx, x_shape)
    }

    fn adaptive_avg_pool_1x1(&self, x: &Tensor) -> Result<Tensor> {
        let [n, c, _, _] = image_shape("adaptive_avg_pool_1x1", x.shape())?;
        Tensor::from_vec(
            x.device(),
            cpu::pool::adaptive_avg_pool_1x1(&x.host(), x.shape()),
            &[n, c, 1, 1],
        )
    }

    fn adaptive_avg_pool_1x1_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        let dev = grad_out.device();
        Tensor::from_vec(
            dev,
            cpu::pool::adaptive_avg_pool_1x1_backward(&grad_out.host(), x_shape),
            x_shape,
        )
    }
}

impl PoolKernels for Wgpu {
    fn avg_pool2d(&self, x: &Tensor, win: &Window) -> Result<Tensor> {
        let op = "avg_pool2d";
        let dev = x.device();
        let y = Tensor::uninit(dev, &win.out_shape(), op)?;
        let n = y.numel();
        let pipeline = dev.pipeline("pool/avg", || {
            include_str!("../shaders/pool_avg.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &win.params(op, n)?,
            &[x.buffer(), y.buffer()],
            dev.linear_grid(n),
        )?;
        Ok(y)
    }

    fn avg_pool2d_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
        win: &Window,
    ) -> Result<Tensor> {
        let op = "avg_pool2d_backward";
        let dev = grad_out.device();
        let dx = Tensor::uninit(dev, x_shape, op)?;
        let n = dx.numel();
        let pipeline = dev.pipeline("pool/avg_backward", || {
            include_str!("../shaders/pool_avg_backward.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &win.params(op, n)?,
            &[grad_out.buffer(), dx.buffer()],
            dev.linear_grid(n),
        )?;
        Ok(dx)
    }

    fn max_pool2d(&self, x: &Tensor, win: &Window) -> Result<(Tensor, Tensor)> {
        let op = "max_pool2d";
        let dev = x.device();
        let y = Tensor::uninit(dev, &win.out_shape(), op)?;
        let idx = Tensor::uninit(dev, &win.out_shape(), op)?;
        let n = y.numel();
        let pipeline = dev.pipeline("pool/max", || {
            include_str!("../shaders/pool_max.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &win.params(op, n)?,
            &[x.buffer(), y.buffer(), idx.buffer()],
            dev.linear_grid(n),
        )?;
        Ok((y, idx))
    }

    fn max_pool2d_backward(
        &self,
        grad_out: &Tensor,
        indices: &Tensor,
        x_shape: &[usize],
        win: &Window,
    ) -> Result<Tensor> {
        let op = "max_pool2d_backward";
        let dev = grad_out.device();
        let dx = Tensor::uninit(dev, x_shape, op)?;
        let n = dx.numel();
        let pipeline = dev.pipeline("pool/max_backward", || {
            include_str!("../shaders/pool_max_backward.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &win.params(op, n)?,
            &[grad_out.buffer(), indices.buffer(), dx.buffer()],
            dev.linear_grid(n),
        )?;
        Ok(dx)
    }

    fn adaptive_avg_pool_1x1(&self, x: &Tensor) -> Result<Tensor> {
        let op = "adaptive_avg_pool_1x1";
        let [n, c, h, w] = image_shape(op, x.shape())?;
        reduce_dims(
            x,
            &[false, false, true, true],
            &[n, c, 1, 1],
            1.0 / (h * w) as f32,
            op,
        )
    }

    fn adaptive_avg_pool_1x1_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
    ) -> Result<Tensor> {
        let op = "adaptive_avg_pool_1x1_backward";
        let [_, _, h, w] = image_shape(op, x_shape)?;
        let dev = grad_out.device();
        let dx = Tensor::uninit(dev, x_shape, op)?;
        let total = dx.numel();
        if total == 0 {
            return Ok(dx);
        }
        let params = [
            to_u32(op, "elements", total)?,
            to_u32(op, "plane", h * w)?,
            (1.0 / (h * w) as f32).to_bits(),
        ];
        let pipeline = dev.pipeline("pool/global_avg_backward", || {
            include_str!("../shaders/pool_global_avg_backward.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[grad_out.buffer(), dx.buffer()],
            dev.linear_grid(total),
        )?;
        Ok(dx)
    }
}
