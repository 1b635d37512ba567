//! Reflect padding of NCHW images (PyTorch's `F.pad(x, …, mode='reflect')`
//! and `padding_mode='reflect'` of a conv): the borders mirror the image
//! about its edge samples, which are not repeated. The backward is a gather
//! (one invocation per input pixel, no atomics) of the up to 3 × 3 padded
//! positions that read each pixel.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::ops::layout::to_u32;
use crate::tensor::Tensor;

fn image(op: &str, shape: &[usize]) -> Result<[usize; 4]> {
    match *shape {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::Shape(format!(
            "{op}: expected an NCHW tensor, got shape {shape:?}"
        ))),
    }
}

/// Checks `pad` = [top, bottom, left, right] against an input of `h × w`:
/// a reflection reads `pad` samples past the edge one, so each padding must
/// be below the side it pads (PyTorch's rule).
fn check_pad(op: &str, shape: &[usize], pad: [usize; 4]) -> Result<()> {
    let [_, _, h, w] = image(op, shape)?;
    let names = ["top", "bottom", "left", "right"];
    for (k, (&p, name)) in pad.iter().zip(names).enumerate() {
        let side = if k < 2 { h } else { w };
        if p >= side {
            let what = if k < 2 { "height" } else { "width" };
            return Err(Error::InvalidArgument(format!(
                "{op}: {name} padding {p} must be below the input {what} {side} (shape {shape:?}, padding [top, bottom, left, right] = {pad:?})"
            )));
        }
    }
    Ok(())
}

fn run(
    op: &str,
    key: &str,
    shader: &'static str,
    src: &Tensor,
    out_shape: &[usize],
    x_hw: [usize; 2],
    pad: [usize; 4],
) -> Result<Tensor> {
    let dev = src.device();
    let out = Tensor::uninit(dev, out_shape, op)?;
    let n = out.numel();
    let [top, bottom, left, right] = pad;
    let params = [
        to_u32(op, "elements", n)?,
        to_u32(op, "height", x_hw[0])?,
        to_u32(op, "width", x_hw[1])?,
        to_u32(op, "padded height", x_hw[0] + top + bottom)?,
        to_u32(op, "padded width", x_hw[1] + left + right)?,
        to_u32(op, "top padding", top)?,
        to_u32(op, "left padding", left)?,
    ];
    let pipeline = dev.pipeline(key, || shader.into());
    dev.dispatch(
        &pipeline,
        &params,
        &[src.buffer(), out.buffer()],
        dev.linear_grid(n),
    )?;
    Ok(out)
}

/// [N, C, H, W] → [N, C, H + top + bottom, W + left + right], the border
/// mirrored about the edge samples; `pad` is [top, bottom, left, right] and
/// each must be below the side it pads.
pub fn pad2d_reflect(x: &Tensor, pad: [usize; 4]) -> Result<Tensor> {
    let op = "pad2d_reflect";
    check_pad(op, x.shape(), pad)?;
    let [n, c, h, w] = image(op, x.shape())?;
    let out_shape = [n, c, h + pad[0] + pad[1], w + pad[2] + pad[3]];
    kernels(x.device()).pad2d_reflect(x, pad, &out_shape)
}

/// Gradient of [`pad2d_reflect`] for an input of `x_shape`: each input pixel
/// sums the gradient of every padded position that read it.
pub fn pad2d_reflect_backward(
    grad_out: &Tensor,
    x_shape: &[usize],
    pad: [usize; 4],
) -> Result<Tensor> {
    let op = "pad2d_reflect_backward";
    check_pad(op, x_shape, pad)?;
    let [n, c, h, w] = image(op, x_shape)?;
    let padded = [n, c, h + pad[0] + pad[1], w + pad[2] + pad[3]];
    if grad_out.shape() != padded {
        return Err(Error::Shape(format!(
            "{op}: grad_out {:?} is not the padding {pad:?} of {x_shape:?}, which is {padded:?}",
            grad_out.shape()
        )));
    }
    kernels(grad_out.device()).pad2d_reflect_backward(grad_out, x_shape, pad)
}

/// The reflect-padding kernels of a backend, given checked shapes
/// (`pad` = [top, bottom, left, right]).
pub(crate) trait PadKernels {
    /// `out_shape` is `x` padded by `pad`.
    fn pad2d_reflect(&self, x: &Tensor, pad: [usize; 4], out_shape: &[usize]) -> Result<Tensor>;
    /// `grad_out` is the padding of an input of `x_shape`.
    fn pad2d_reflect_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
        pad: [usize; 4],
    ) -> Result<Tensor>;
}

impl PadKernels for Native {
    fn pad2d_reflect(&self, x: &Tensor, pad: [usize; 4], out_shape: &[usize]) -> Result<Tensor> {
        let y = cpu::pad::pad_reflect(&x.host(), x.shape(), pad);
        Tensor::from_vec(x.device(), y, out_shape)
    }

    fn pad2d_reflect_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
        pad: [usize; 4],
    ) -> Result<Tensor> {
        let dx = cpu::pad::pad_reflect_backward(&grad_out.host(), x_shape, pad);
        Tensor::from_vec(grad_out.device(), dx, x_shape)
    }
}

impl PadKernels for Wgpu {
    fn pad2d_reflect(&self, x: &Tensor, pad: [usize; 4], out_shape: &[usize]) -> Result<Tensor> {
        let [_, _, h, w] = image("pad2d_reflect", x.shape())?;
        run(
            "pad2d_reflect",
            "pad/reflect",
            include_str!("../shaders/pad_reflect.wgsl"),
            x,
            out_shape,
            [h, w],
            pad,
        )
    }

    fn pad2d_reflect_backward(
        &self,
        grad_out: &Tensor,
        x_shape: &[usize],
        pad: [usize; 4],
    ) -> Result<Tensor> {
        let op = "pad2d_reflect_backward";
        let [_, _, h, w] = image(op, x_shape)?;
        run(
            op,
            "pad/reflect_backward",
            include_str!("../shaders/pad_reflect_backward.wgsl"),
            grad_out,
            x_shape,
            [h, w],
            pad,
        )
    }
}
