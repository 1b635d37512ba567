//! ×2 up-sampling, nearest and bilinear (PyTorch `align_corners=False`),
//! with gather-form backward kernels (one invocation per input pixel, no
//! atomics).

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

/// Runs `shader` with uniform (threads, H, W) of the small image over
/// `out_shape`.
fn run(
    op: &str,
    key: &str,
    shader: &'static str,
    src: &Tensor,
    out_shape: &[usize],
    small_hw: [usize; 2],
) -> Result<Tensor> {
    kernels(src.device()).resample(op, key, shader, src, out_shape, small_hw)
}

/// The ×2 resampling kernels of a backend: `key` names the kernel
/// (`resample/nearest2x`, `resample/bilinear2x` and their `_backward`),
/// `shader` is its WGSL, `small_hw` the height and width of the small image.
pub(crate) trait ResampleKernels {
    fn resample(
        &self,
        op: &str,
        key: &str,
        shader: &'static str,
        src: &Tensor,
        out_shape: &[usize],
        small_hw: [usize; 2],
    ) -> Result<Tensor>;
}

impl ResampleKernels for Native {
    fn resample(
        &self,
        _op: &str,
        key: &str,
        _shader: &'static str,
        src: &Tensor,
        out_shape: &[usize],
        _small_hw: [usize; 2],
    ) -> Result<Tensor> {
        let v = src.host();
        let y = match key {
            "resample/nearest2x" => cpu::resample::upsample_nearest2x(&v, src.shape()),
            "resample/bilinear2x" => cpu::resample::upsample_bilinear2x(&v, src.shape()),
            "resample/nearest2x_backward" => {
                cpu::resample::upsample_nearest2x_backward(&v, src.shape())
            }
            _ => cpu::resample::upsample_bilinear2x_backward(&v, out_shape),
        };
        Tensor::from_vec(src.device(), y, out_shape)
    }
}

impl ResampleKernels for Wgpu {
    fn resample(
        &self,
        op: &str,
        key: &str,
        shader: &'static str,
        src: &Tensor,
        out_shape: &[usize],
        small_hw: [usize; 2],
    ) -> Result<Tensor> {
        let dev = src.device();
        let out = Tensor::uninit(dev, out_shape, op)?;
        let n = out.numel();
        let params = [
            to_u32(op, "elements", n)?,
            to_u32(op, "height", small_hw[0])?,
            to_u32(op, "width", small_hw[1])?,
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
}

/// Nearest-neighbour ×2: [N, C, H, W] → [N, C, 2H, 2W].
pub fn upsample_nearest2x(x: &Tensor) -> Result<Tensor> {
    let op = "upsample_nearest2x";
    let [n, c, h, w] = image(op, x.shape())?;
    run(
        op,
        "resample/nearest2x",
        include_str!("../shaders/resample_nearest2x.wgsl"),
        x,
        &[n, c, 2 * h, 2 * w],
        [h, w],
    )
}

/// Bilinear ×2 with PyTorch's `align_corners=False` (edge rows and columns
/// clamp): [N, C, H, W] → [N, C, 2H, 2W].
pub fn upsample_bilinear2x(x: &Tensor) -> Result<Tensor> {
    let op = "upsample_bilinear2x";
    let [n, c, h, w] = image(op, x.shape())?;
    run(
        op,
        "resample/bilinear2x",
        include_str!("../shaders/resample_bilinear2x.wgsl"),
        x,
        &[n, c, 2 * h, 2 * w],
        [h, w],
    )
}

/// The input shape whose ×2 up-sampling has the shape of `grad_out`.
fn half(op: &str, grad_out: &Tensor) -> Result<[usize; 4]> {
    let [n, c, oh, ow] = image(op, grad_out.shape())?;
    if oh % 2 != 0 || ow % 2 != 0 {
        return Err(Error::Shape(format!(
            "{op}: grad_out {:?} has an odd height or width, so it is not a ×2 up-sampling",
            grad_out.shape()
        )));
    }
    Ok([n, c, oh / 2, ow / 2])
}

/// Gradient of [`upsample_nearest2x`]: each input pixel sums its 2×2 block.
pub fn upsample_nearest2x_backward(grad_out: &Tensor) -> Result<Tensor> {
    let op = "upsample_nearest2x_backward";
    let x_shape = half(op, grad_out)?;
    run(
        op,
        "resample/nearest2x_backward",
        include_str!("../shaders/resample_nearest2x_backward.wgsl"),
        grad_out,
        &x_shape,
        [x_shape[2], x_shape[3]],
    )
}

/// Gradient of [`upsample_bilinear2x`] for an input of shape `x_shape`.
pub fn upsample_bilinear2x_backward(grad_out: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    let op = "upsample_bilinear2x_backward";
    let expected = half(op, grad_out)?;
    if x_shape != expected {
        return Err(Error::Shape(format!(
            "{op}: grad_out {:?} is the ×2 up-sampling of {expected:?}, not of {x_shape:?}",
            grad_out.shape()
        )));
    }
    run(
        op,
        "resample/bilinear2x_backward",
        include_str!("../shaders/resample_bilinear2x_backward.wgsl"),
        grad_out,
        &expected,
        [expected[2], expected[3]],
    )
}
