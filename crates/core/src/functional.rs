//! Differentiable ops: each runs its forward kernel from `ops` and records
//! what its backward needs on the autograd tape (only when an input needs a
//! gradient). The gradient rules themselves live in `autograd.rs`.

use crate::autograd::{is_recording, record, Op};
use crate::error::{Error, Result};
use crate::ops::neuron::{NeuronConfig, Surrogate};
use crate::ops::{self, conv::Conv2dArgs, BinaryOp, UnaryOp};
use crate::tensor::Tensor;

fn saves(t: &Tensor) -> Tensor {
    t.detach()
}

/// a ∘ b with NumPy broadcasting.
pub fn binary(a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    let _p = crate::profile::span("fwd binary");
    let y = ops::binary(a, b, op)?;
    let op = match op {
        BinaryOp::Add => Op::Add {
            a_shape: a.shape().to_vec(),
            b_shape: b.shape().to_vec(),
        },
        BinaryOp::Sub => Op::Sub {
            a_shape: a.shape().to_vec(),
            b_shape: b.shape().to_vec(),
        },
        BinaryOp::Mul => Op::Mul {
            a: saves(a),
            b: saves(b),
        },
        BinaryOp::Div => Op::Div {
            a: saves(a),
            b: saves(b),
        },
        // A comparison is piecewise constant: no gradient, nothing to record.
        BinaryOp::Less => return Ok(y),
        BinaryOp::Maximum | BinaryOp::Minimum => Op::Select {
            a: saves(a),
            b: saves(b),
            max: op == BinaryOp::Maximum,
        },
    };
    Ok(record(|| op, &[a, b], y))
}

pub fn add(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Add)
}

pub fn sub(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Sub)
}

pub fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Mul)
}

pub fn div(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    binary(a, b, BinaryOp::Div)
}

/// Unary and tensor–scalar ops.
pub fn unary(x: &Tensor, op: UnaryOp) -> Result<Tensor> {
    let _p = crate::profile::span("fwd unary");
    let y = ops::unary(x, op)?;
    let y_saved = saves(&y);
    Ok(record(
        || Op::Unary {
            op,
            x: saves(x),
            y: y_saved,
        },
        &[x],
        y,
    ))
}

pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd matmul");
    let y = ops::matmul(a, b)?;
    Ok(record(
        || Op::Matmul {
            a: saves(a),
            b: saves(b),
        },
        &[a, b],
        y,
    ))
}

/// The same values under another shape; the gradient is reshaped back.
pub fn reshape(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let _p = crate::profile::span("fwd reshape");
    let y = x.reshape(shape)?;
    Ok(record(
        || Op::Reshape {
            shape: x.shape().to_vec(),
        },
        &[x],
        y,
    ))
}

pub fn permute(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let _p = crate::profile::span("fwd permute");
    let y = ops::layout::permute(x, dims)?;
    Ok(record(
        || Op::Permute {
            dims: dims.to_vec(),
        },
        &[x],
        y,
    ))
}

/// 2-D convolution (cross-correlation, PyTorch semantics).
pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, args: &Conv2dArgs) -> Result<Tensor> {
    let _p = crate::profile::span("fwd conv2d");
    let y = ops::conv::conv2d(x, w, bias, args)?;
    let args = *args;
    let op = || Op::Conv2d {
        x: saves(x),
        w: saves(w),
        has_bias: bias.is_some(),
        args,
    };
    Ok(match bias {
        Some(b) => record(op, &[x, w, b], y),
        None => record(op, &[x, w], y),
    })
}

pub fn upsample_nearest2x(x: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd upsample_nearest2x");
    let y = ops::resample::upsample_nearest2x(x)?;
    Ok(record(|| Op::UpsampleNearest2x, &[x], y))
}

pub fn upsample_bilinear2x(x: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd upsample_bilinear2x");
    let y = ops::resample::upsample_bilinear2x(x)?;
    Ok(record(
        || Op::UpsampleBilinear2x {
            x_shape: x.shape().to_vec(),
        },
        &[x],
        y,
    ))
}

pub fn pixel_shuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    let _p = crate::profile::span("fwd pixel_shuffle");
    let y = ops::layout::pixel_shuffle(x, r)?;
    Ok(record(|| Op::PixelShuffle { r }, &[x], y))
}

pub fn pixel_unshuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    let _p = crate::profile::span("fwd pixel_unshuffle");
    let y = ops::layout::pixel_unshuffle(x, r)?;
    Ok(record(|| Op::PixelUnshuffle { r }, &[x], y))
}

/// Reflect padding of NCHW by `pad` = [top, bottom, left, right] (each
/// below the side it pads); the gradient folds the mirrored border back.
pub fn pad2d_reflect(x: &Tensor, pad: [usize; 4]) -> Result<Tensor> {
    let y = ops::pad::pad2d_reflect(x, pad)?;
    Ok(record(
        || Op::PadReflect {
            x_shape: x.shape().to_vec(),
            pad,
        },
        &[x],
        y,
    ))
}

pub fn avg_pool2d(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<Tensor> {
    let _p = crate::profile::span("fwd avg_pool2d");
    let y = ops::pool::avg_pool2d(x, kernel, stride, padding)?;
    Ok(record(
        || Op::AvgPool2d {
            x_shape: x.shape().to_vec(),
            kernel,
            stride,
            padding,
        },
        &[x],
        y,
    ))
}

pub fn max_pool2d(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Result<Tensor> {
    let _p = crate::profile::span("fwd max_pool2d");
    let (y, indices) = ops::pool::max_pool2d(x, kernel, stride, padding)?;
    Ok(record(
        || Op::MaxPool2d {
            x_shape: x.shape().to_vec(),
            indices,
            kernel,
            stride,
            padding,
        },
        &[x],
        y,
    ))
}

/// Global average pooling to `[N, C, 1, 1]`.
pub fn adaptive_avg_pool_1x1(x: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd adaptive_avg_pool_1x1");
    let y = ops::pool::adaptive_avg_pool_1x1(x)?;
    Ok(record(
        || Op::AdaptiveAvgPool1x1 {
            x_shape: x.shape().to_vec(),
        },
        &[x],
        y,
    ))
}

pub fn concat(xs: &[&Tensor], axis: usize) -> Result<Tensor> {
    let _p = crate::profile::span("fwd concat");
    let y = ops::layout::concat(xs, axis)?;
    let sizes = xs.iter().map(|x| x.shape()[axis]).collect();
    Ok(record(|| Op::Concat { axis, sizes }, xs, y))
}

/// Splits along `axis` into pieces of `sizes`; each piece keeps its gradient path.
pub fn split(x: &Tensor, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor>> {
    let _p = crate::profile::span("fwd split");
    let parts = ops::layout::split(x, axis, sizes)?;
    let mut start = 0;
    Ok(parts
        .into_iter()
        .map(|p| {
            let s = start;
            start += p.shape()[axis];
            record(
                || Op::Slice {
                    axis,
                    start: s,
                    x_shape: x.shape().to_vec(),
                },
                &[x],
                p,
            )
        })
        .collect())
}

pub fn sum_axes(x: &Tensor, axes: &[usize], keepdim: bool) -> Result<Tensor> {
    let _p = crate::profile::span("fwd sum_axes");
    let y = ops::reduce::sum_axes(x, axes, keepdim)?;
    Ok(record(
        || Op::SumAxes {
            x_shape: x.shape().to_vec(),
            axes: axes.to_vec(),
            keepdim,
        },
        &[x],
        y,
    ))
}

pub fn mean_axes(x: &Tensor, axes: &[usize], keepdim: bool) -> Result<Tensor> {
    let _p = crate::profile::span("fwd mean_axes");
    let y = ops::reduce::mean_axes(x, axes, keepdim)?;
    Ok(record(
        || Op::MeanAxes {
            x_shape: x.shape().to_vec(),
            axes: axes.to_vec(),
            keepdim,
        },
        &[x],
        y,
    ))
}

/// Maximum over `axes`; the gradient of each output is split evenly among
/// the elements equal to its maximum (PyTorch's `amax`).
pub fn max_axes(x: &Tensor, axes: &[usize], keepdim: bool) -> Result<Tensor> {
    let _p = crate::profile::span("fwd max_axes");
    let kept = ops::reduce::max_axes(x, axes, true)?;
    let y = if keepdim {
        kept.clone()
    } else {
        let mut shape = x.shape().to_vec();
        let mut sorted = axes.to_vec();
        sorted.sort_unstable();
        for &a in sorted.iter().rev() {
            shape.remove(a);
        }
        kept.reshape(&shape)?
    };
    Ok(record(
        || Op::MaxAxes {
            x: saves(x),
            max_kept: kept.detach(),
            axes: axes.to_vec(),
        },
        &[x],
        y,
    ))
}

pub fn relu(x: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd relu");
    let y = ops::activation::relu(x)?;
    Ok(record(|| Op::Relu { x: saves(x) }, &[x], y))
}

pub fn leaky_relu(x: &Tensor, slope: f32) -> Result<Tensor> {
    let _p = crate::profile::span("fwd leaky_relu");
    let y = ops::activation::leaky_relu(x, slope)?;
    Ok(record(|| Op::LeakyRelu { x: saves(x), slope }, &[x], y))
}

pub fn gelu(x: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd gelu");
    let y = ops::activation::gelu(x)?;
    Ok(record(|| Op::Gelu { x: saves(x) }, &[x], y))
}

pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd sigmoid");
    let y = ops::activation::sigmoid(x)?;
    let saved = saves(&y);
    Ok(record(|| Op::Sigmoid { y: saved }, &[x], y))
}

pub fn tanh(x: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd tanh");
    let y = ops::activation::tanh(x)?;
    let saved = saves(&y);
    Ok(record(|| Op::Tanh { y: saved }, &[x], y))
}

pub fn softmax(x: &Tensor, axis: usize) -> Result<Tensor> {
    let _p = crate::profile::span("fwd softmax");
    let y = ops::activation::softmax(x, axis)?;
    let saved = saves(&y);
    Ok(record(|| Op::Softmax { y: saved, axis }, &[x], y))
}

/// Running statistics of a batch norm layer, updated in place in training.
pub struct RunningStats<'a> {
    pub mean: &'a Tensor,
    pub var: &'a Tensor,
    pub momentum: f32,
}

/// Batch norm over NCHW. In training it normalises with the batch statistics
/// (and updates `running` if given, outside no-grad); in evaluation with `running`.
pub fn batch_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    running: Option<RunningStats<'_>>,
    training: bool,
    eps: f32,
) -> Result<Tensor> {
    let _p = crate::profile::span("fwd batch_norm");
    if !training {
        let r = running.ok_or_else(|| {
            Error::InvalidArgument("batchNorm: evaluation mode needs running statistics".into())
        })?;
        // y = (x − μ)·w/√(σ² + ε) + b, written with differentiable ops so
        // gradients still reach x, w and b (scale and shift per channel).
        let c = weight.numel();
        let invstd = ops::unary(
            &ops::unary(r.var, UnaryOp::AddScalar(eps))?,
            UnaryOp::PowScalar(-0.5),
        )?;
        let scale = mul(weight, &invstd)?;
        let shift = sub(bias, &mul(r.mean, &scale)?)?;
        let shape = [1, c, 1, 1];
        return add(
            &mul(x, &reshape(&scale, &shape)?)?,
            &reshape(&shift, &shape)?,
        );
    }
    let (y, mean, invstd) = ops::norm::batch_norm_train(x, weight, bias, eps)?;
    // Under no-grad (a teacher's forward, evaluation of a model left in
    // training mode) the batch is only looked at, never learned from: the
    // running statistics stay as training left them.
    if let Some(r) = running.filter(|_| is_recording()) {
        let s = x.shape();
        let count = s[0] * s[2..].iter().product::<usize>();
        ops::norm::batch_norm_update_running(
            r.mean, r.var, &mean, &invstd, count, r.momentum, eps,
        )?;
    }
    Ok(record(
        || Op::BatchNorm {
            x: saves(x),
            weight: saves(weight),
            mean,
            invstd,
        },
        &[x, weight, bias],
        y,
    ))
}

/// Layer norm over the channels of NCHW at each pixel.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f32) -> Result<Tensor> {
    let _p = crate::profile::span("fwd layer_norm");
    let (y, mean, invstd) = ops::norm::layer_norm(x, weight, bias, eps)?;
    Ok(record(
        || Op::LayerNorm {
            x: saves(x),
            weight: saves(weight),
            mean,
            invstd,
        },
        &[x, weight, bias],
        y,
    ))
}

pub fn l1_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd l1_loss");
    let y = ops::loss::l1_loss(pred, target)?;
    Ok(record(
        || Op::L1Loss {
            pred: saves(pred),
            target: saves(target),
        },
        &[pred, target],
        y,
    ))
}

pub fn mse_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd mse_loss");
    let y = ops::loss::mse_loss(pred, target)?;
    Ok(record(
        || Op::MseLoss {
            pred: saves(pred),
            target: saves(target),
        },
        &[pred, target],
        y,
    ))
}

pub fn charbonnier_loss(pred: &Tensor, target: &Tensor, eps: f32) -> Result<Tensor> {
    let _p = crate::profile::span("fwd charbonnier_loss");
    let y = ops::loss::charbonnier_loss(pred, target, eps)?;
    Ok(record(
        || Op::CharbonnierLoss {
            pred: saves(pred),
            target: saves(target),
            eps,
        },
        &[pred, target],
        y,
    ))
}

/// Mean complex modulus of the difference of the images' 2-D DFTs.
pub fn fft_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let _p = crate::profile::span("fwd fft_loss");
    let y = ops::loss::fft_loss(pred, target)?;
    Ok(record(
        || Op::FftLoss {
            pred: saves(pred),
            target: saves(target),
        },
        &[pred, target],
        y,
    ))
}

/// Multi-step spiking neurons over a time-major `[T, ...]` input: spikes out,
/// surrogate-gradient BPTT back. `plif_w` is PLIF's learnable decay parameter.
pub fn neuron(x: &Tensor, cfg: &NeuronConfig, plif_w: Option<&Tensor>) -> Result<Tensor> {
    let _p = crate::profile::span("fwd neuron");
    let (s, h) = ops::neuron::neuron_forward(x, cfg, plif_w)?;
    let cfg = *cfg;
    let op = || Op::Neuron {
        h,
        cfg,
        w: plif_w.map(saves),
    };
    Ok(match plif_w {
        Some(w) => record(op, &[x, w], s),
        None => record(op, &[x], s),
    })
}

/// Repeats `x` along broadcast dimensions into `shape`; the gradient sums back.
pub fn broadcast_to(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let _p = crate::profile::span("fwd broadcast_to");
    let y = ops::layout::broadcast_to(x, shape)?;
    Ok(record(
        || Op::BroadcastTo {
            x_shape: x.shape().to_vec(),
        },
        &[x],
        y,
    ))
}

/// Θ(x) (1 where x ≥ 0) whose backward is the surrogate derivative: spikes
/// built from elementwise ops, the unfused path the neuron kernels are checked against.
pub fn heaviside(x: &Tensor, surrogate: Surrogate) -> Result<Tensor> {
    let _p = crate::profile::span("fwd heaviside");
    let zero = Tensor::zeros(x.device(), &[1])?;
    let below = ops::binary(x, &zero, BinaryOp::Less)?;
    let y = ops::unary(&below, UnaryOp::RsubScalar(1.0))?;
    Ok(record(
        || Op::Heaviside {
            x: saves(x),
            surrogate,
        },
        &[x],
        y,
    ))
}
