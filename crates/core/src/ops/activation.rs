//! Activations and their backward passes, plus softmax over one axis.
//!
//! Each backward takes the upstream gradient and one saved tensor: the
//! input where the derivative needs it (leaky relu, gelu), the output where
//! that is enough (sigmoid, tanh, softmax). Relu accepts either, since
//! x > 0 exactly where relu(x) > 0.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::ops::reduce::{u32_arg, workgroup_grid};
use crate::tensor::Tensor;

/// Forward and backward WGSL expressions of one activation.
/// Forward sees `v` (the input) and `s` (the scalar argument); backward sees
/// `g` (the upstream gradient), `v` (the saved tensor) and `s`.
pub(crate) struct Act {
    name: &'static str,
    forward: &'static str,
    backward: &'static str,
}

const RELU: Act = Act {
    name: "relu",
    forward: "max(v, 0.0)",
    backward: "select(0.0, g, v > 0.0)",
};
const LEAKY_RELU: Act = Act {
    name: "leaky_relu",
    forward: "select(v * s, v, v > 0.0)",
    backward: "select(g * s, g, v > 0.0)",
};
// gelu(x) = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)); gelu'(x) = Φ(x) + x·φ(x) with
// φ(x) = e^{−x²/2}/√(2π) = 0.39894228… · e^{−x²/2}.
const GELU: Act = Act {
    name: "gelu",
    forward: "0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752))",
    backward: "g * (0.5 * (1.0 + erf_approx(v * 0.70710678118654752)) + v * 0.3989422804014327 * exp(-0.5 * v * v))",
};
// σ' = σ(1 − σ) from the saved output; exp(−v) overflowing to +inf still gives 0.
const SIGMOID: Act = Act {
    name: "sigmoid",
    forward: "1.0 / (1.0 + exp(-v))",
    backward: "g * v * (1.0 - v)",
};
// tanh' = 1 − tanh² from the saved output.
const TANH: Act = Act {
    name: "tanh",
    forward: "tanh_stable(v)",
    backward: "g * (1.0 - v * v)",
};

/// `erf_approx` and `tanh_stable`, shared by the forward and backward kernels.
const ACT_FUNCTIONS: &str = include_str!("../shaders/act_functions.wgsl");

fn forward(x: &Tensor, act: &Act, s: f32) -> Result<Tensor> {
    kernels(x.device()).activation(x, act, s)
}

fn backward(grad_out: &Tensor, saved: &Tensor, act: &Act, s: f32) -> Result<Tensor> {
    let op = format!("{}_backward", act.name);
    grad_out.same_device(saved, &op)?;
    if grad_out.shape() != saved.shape() {
        return Err(Error::Shape(format!(
            "{op}: gradient {:?} and saved tensor {:?} differ in shape",
            grad_out.shape(),
            saved.shape()
        )));
    }
    kernels(grad_out.device()).activation_backward(grad_out, saved, act, s)
}

fn check_slope(op: &str, slope: f32) -> Result<()> {
    if slope.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{op}: slope must be finite, got {slope}"
        )))
    }
}

/// max(x, 0).
pub fn relu(x: &Tensor) -> Result<Tensor> {
    forward(x, &RELU, 0.0)
}

/// `saved` is relu's input or output (both are positive at the same places).
pub fn relu_backward(grad_out: &Tensor, saved: &Tensor) -> Result<Tensor> {
    backward(grad_out, saved, &RELU, 0.0)
}

/// x for x > 0, slope·x otherwise.
pub fn leaky_relu(x: &Tensor, slope: f32) -> Result<Tensor> {
    check_slope("leaky_relu", slope)?;
    forward(x, &LEAKY_RELU, slope)
}

/// `saved` is the input (the output also works when slope > 0).
pub fn leaky_relu_backward(grad_out: &Tensor, saved: &Tensor, slope: f32) -> Result<Tensor> {
    check_slope("leaky_relu_backward", slope)?;
    backward(grad_out, saved, &LEAKY_RELU, slope)
}

/// Exact gelu, x·Φ(x) with the erf form (PyTorch's default, not the tanh form).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    forward(x, &GELU, 0.0)
}

/// `saved` is the input.
pub fn gelu_backward(grad_out: &Tensor, saved: &Tensor) -> Result<Tensor> {
    backward(grad_out, saved, &GELU, 0.0)
}

/// 1 / (1 + e^−x).
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    forward(x, &SIGMOID, 0.0)
}

/// `saved` is the output.
pub fn sigmoid_backward(grad_out: &Tensor, saved: &Tensor) -> Result<Tensor> {
    backward(grad_out, saved, &SIGMOID, 0.0)
}

pub fn tanh(x: &Tensor) -> Result<Tensor> {
    forward(x, &TANH, 0.0)
}

/// `saved` is the output.
pub fn tanh_backward(grad_out: &Tensor, saved: &Tensor) -> Result<Tensor> {
    backward(grad_out, saved, &TANH, 0.0)
}

/// Rows longer than this go to the workgroup-per-row kernels when there are
/// few rows; with many rows an invocation per row is parallel enough.
const SOFTMAX_LONG_ROW: usize = 128;
const SOFTMAX_MANY_ROWS: usize = 4096;
const SOFTMAX_VERY_LONG_ROW: usize = 1024;

/// The input viewed as `[outer, len, inner]` around `axis`, and the kernel
/// choice; `None` for an empty tensor.
fn softmax_layout(
    op: &str,
    shape: &[usize],
    axis: usize,
) -> Result<Option<([u32; 4], usize, bool)>> {
    if axis >= shape.len() {
        return Err(Error::InvalidArgument(format!(
            "{op}: axis {axis} is out of range for input {shape:?} (rank {})",
            shape.len()
        )));
    }
    let outer: usize = shape[..axis].iter().product();
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let rows = outer * inner;
    if rows == 0 || len == 0 {
        return Ok(None);
    }
    u32_arg(op, rows * len)?;
    let per_row =
        len >= SOFTMAX_VERY_LONG_ROW || (len >= SOFTMAX_LONG_ROW && rows < SOFTMAX_MANY_ROWS);
    Ok(Some((
        [rows as u32, len as u32, inner as u32, 0],
        rows,
        per_row,
    )))
}

/// Softmax along `axis`: exp(x − max) / Σ exp(x − max), max over the same axis.
pub fn softmax(x: &Tensor, axis: usize) -> Result<Tensor> {
    let layout = softmax_layout("softmax", x.shape(), axis)?;
    kernels(x.device()).softmax(x, axis, layout)
}

/// Backward of [`softmax`] from its output y: g_x = y ⊙ (g − Σ_axis g ⊙ y).
pub fn softmax_backward(grad_out: &Tensor, output: &Tensor, axis: usize) -> Result<Tensor> {
    let op = "softmax_backward";
    grad_out.same_device(output, op)?;
    if grad_out.shape() != output.shape() {
        return Err(Error::Shape(format!(
            "{op}: gradient {:?} and softmax output {:?} differ in shape",
            grad_out.shape(),
            output.shape()
        )));
    }
    let layout = softmax_layout(op, output.shape(), axis)?;
    kernels(output.device()).softmax_backward(grad_out, output, axis, layout)
}

/// How softmax views its input, from [`softmax_layout`]: the uniform words,
/// the row count and whether a workgroup takes each row; `None` when empty.
pub(crate) type SoftmaxLayout = Option<([u32; 4], usize, bool)>;

/// The activation kernels of a backend, given checked operands.
pub(crate) trait ActivationKernels {
    /// `act` applied to `x`, with scalar argument `s`.
    fn activation(&self, x: &Tensor, act: &Act, s: f32) -> Result<Tensor>;
    /// `grad_out` and `saved` have one shape.
    fn activation_backward(
        &self,
        grad_out: &Tensor,
        saved: &Tensor,
        act: &Act,
        s: f32,
    ) -> Result<Tensor>;
    fn softmax(&self, x: &Tensor, axis: usize, layout: SoftmaxLayout) -> Result<Tensor>;
    fn softmax_backward(
        &self,
        grad_out: &Tensor,
        output: &Tensor,
        axis: usize,
        layout: SoftmaxLayout,
    ) -> Result<Tensor>;
}

impl ActivationKernels for Native {
    fn activation(&self, x: &Tensor, act: &Act, s: f32) -> Result<Tensor> {
        let dev = x.device();
        let h = x.host();
        let y = match act.name {
            "relu" => cpu::activation::relu(&h),
            "leaky_relu" => cpu::activation::leaky_relu(&h, s),
            "gelu" => cpu::activation::gelu(&h),
            "sigmoid" => cpu::activation::sigmoid(&h),
            _ => cpu::activation::tanh(&h),
        };
        Tensor::from_vec(dev, y, x.shape())
    }

    fn activation_backward(
        &self,
        grad_out: &Tensor,
        saved: &Tensor,
        act: &Act,
        s: f32,
    ) -> Result<Tensor> {
        let dev = grad_out.device();
        let (g, v) = (grad_out.host(), saved.host());
        let gx = match act.name {
            "relu" => cpu::activation::relu_backward(&g, &v),
            "leaky_relu" => cpu::activation::leaky_relu_backward(&g, &v, s),
            "gelu" => cpu::activation::gelu_backward(&g, &v),
            "sigmoid" => cpu::activation::sigmoid_backward(&g, &v),
            _ => cpu::activation::tanh_backward(&g, &v),
        };
        Tensor::from_vec(dev, gx, grad_out.shape())
    }

    fn softmax(&self, x: &Tensor, axis: usize, _layout: SoftmaxLayout) -> Result<Tensor> {
        let dev = x.device();
        Tensor::from_vec(
            dev,
            cpu::activation::softmax(&x.host(), x.shape(), axis),
            x.shape(),
        )
    }

    fn softmax_backward(
        &self,
        grad_out: &Tensor,
        output: &Tensor,
        axis: usize,
        _layout: SoftmaxLayout,
    ) -> Result<Tensor> {
        let dev = output.device();
        let gx = cpu::activation::softmax_backward(
            &grad_out.host(),
            &output.host(),
            output.shape(),
            axis,
        );
        Tensor::from_vec(dev, gx, output.shape())
    }
}

impl ActivationKernels for Wgpu {
    fn activation(&self, x: &Tensor, act: &Act, s: f32) -> Result<Tensor> {
        let dev = x.device();
        let n = u32_arg(act.name, x.numel())?;
        let y = Tensor::uninit(dev, x.shape(), act.name)?;
        let pipeline = dev.pipeline(&format!("act/{}", act.name), || {
            format!(
                "{}\n{}",
                ACT_FUNCTIONS,
                include_str!("../shaders/act_forward.wgsl")
            )
            .replace("EXPR", act.forward)
        });
        dev.dispatch(
            &pipeline,
            &[n, s.to_bits()],
            &[x.buffer(), y.buffer()],
            dev.linear_grid(n as usize),
        )?;
        Ok(y)
    }

    fn activation_backward(
        &self,
        grad_out: &Tensor,
        saved: &Tensor,
        act: &Act,
        s: f32,
    ) -> Result<Tensor> {
        let op = format!("{}_backward", act.name);
        let dev = grad_out.device();
        let n = u32_arg(&op, grad_out.numel())?;
        let gx = Tensor::uninit(dev, grad_out.shape(), &op)?;
        let pipeline = dev.pipeline(&format!("act_backward/{}", act.name), || {
            format!(
                "{}\n{}",
                ACT_FUNCTIONS,
                include_str!("../shaders/act_backward.wgsl")
            )
            .replace("EXPR", act.backward)
        });
        dev.dispatch(
            &pipeline,
            &[n, s.to_bits()],
            &[grad_out.buffer(), saved.buffer(), gx.buffer()],
            dev.linear_grid(n as usize),
        )?;
        Ok(gx)
    }

    fn softmax(&self, x: &Tensor, _axis: usize, layout: SoftmaxLayout) -> Result<Tensor> {
        let dev = x.device();
        let y = Tensor::uninit(dev, x.shape(), "softmax")?;
        let Some((params, rows, per_row)) = layout else {
            return Ok(y);
        };
        let (pipeline, grid) = if per_row {
            let p = dev.pipeline("softmax/workgroup", || {
                include_str!("../shaders/act_softmax_wg.wgsl").into()
            });
            (p, workgroup_grid(dev, rows))
        } else {
            let p = dev.pipeline("softmax/rows", || {
                include_str!("../shaders/act_softmax_rows.wgsl").into()
            });
            (p, dev.linear_grid(rows))
        };
        dev.dispatch(&pipeline, &params, &[x.buffer(), y.buffer()], grid)?;
        Ok(y)
    }

    fn softmax_backward(
        &self,
        grad_out: &Tensor,
        output: &Tensor,
        _axis: usize,
        layout: SoftmaxLayout,
    ) -> Result<Tensor> {
        let op = "softmax_backward";
        let dev = output.device();
        let gx = Tensor::uninit(dev, output.shape(), op)?;
        let Some((params, rows, per_row)) = layout else {
            return Ok(gx);
        };
        let (pipeline, grid) = if per_row {
            let p = dev.pipeline("softmax_backward/workgroup", || {
                include_str!("../shaders/act_softmax_backward_wg.wgsl").into()
            });
            (p, workgroup_grid(dev, rows))
        } else {
            let p = dev.pipeline("softmax_backward/rows", || {
                include_str!("../shaders/act_softmax_backward_rows.wgsl").into()
            });
            (p, dev.linear_grid(rows))
        };
        dev.dispatch(
            &pipeline,
            &params,
            &[grad_out.buffer(), output.buffer(), gx.buffer()],
            grid,
        )?;
        Ok(gx)
    }
}
