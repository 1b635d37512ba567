//! Batch norm (training and evaluation, running statistics) and layer norm
//! over channels, forward and backward.
//!
//! Inputs are `[N, C, ...]` with any number of trailing spatial dimensions
//! (NCHW for images; `[N, C]` also works): `hw` below is their product.
//! Per-channel sums over N·hw values run in `norm_channel_sums`: one
//! workgroup per (channel, chunk) with a shared-memory tree, then the
//! partial sums are combined in a second, short pass.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::ops::reduce::{chunking, mean_axes, sum_axes, u32_arg, workgroup_grid};
use crate::tensor::Tensor;

/// (N, C, hw) of an input `[N, C, ...]`.
fn layout(op: &str, x: &Tensor) -> Result<(usize, usize, usize)> {
    let s = x.shape();
    if s.len() < 2 {
        return Err(Error::Shape(format!(
            "{op}: input must be [N, C, ...], got {s:?}"
        )));
    }
    let n = s[0] * s[2..].iter().product::<usize>();
    if n == 0 || s[1] == 0 {
        return Err(Error::Shape(format!(
            "{op}: input {s:?} has no values to normalise"
        )));
    }
    u32_arg(op, x.numel())?;
    Ok((s[0], s[1], s[2..].iter().product()))
}

fn check_shape(op: &str, what: &str, t: &Tensor, want: &[usize], x: &Tensor) -> Result<()> {
    x.same_device(t, op)?;
    if t.shape() != want {
        return Err(Error::Shape(format!(
            "{op}: {what} must have shape {want:?} for input {:?}, got {:?}",
            x.shape(),
            t.shape()
        )));
    }
    Ok(())
}

fn check_eps(op: &str, eps: f32) -> Result<()> {
    if eps.is_finite() && eps >= 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{op}: eps must be finite and >= 0, got {eps}"
        )))
    }
}

/// Shape of layer norm's per-position statistics: `[N, 1, ...]`.
fn stats_shape(x: &Tensor) -> Vec<usize> {
    let mut s = x.shape().to_vec();
    s[1] = 1;
    s
}

/// What `norm_channel_sums` adds up per channel, with d = x − mean:
/// (Σ d², Σ d) for the variance, or (Σ g, Σ g·d·invstd) for the affine
/// gradients. Statistics are per channel (batch norm) or per position
/// (layer norm).
#[derive(Clone, Copy)]
enum Sums {
    Variance,
    AffineGrads { per_position: bool },
}

/// Partial per-channel sums `[C, chunks]` (two of them) and the chunk count.
#[allow(clippy::too_many_arguments)]
fn channel_sums(
    op: &str,
    x: &Tensor,
    g: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    sums: Sums,
    (n, c, hw): (usize, usize, usize),
) -> Result<(Tensor, Tensor, usize)> {
    let dev = x.device();
    let (chunk, groups) = chunking(n * hw);
    let a = Tensor::uninit(dev, &[c, groups], op)?;
    let b = Tensor::uninit(dev, &[c, groups], op)?;
    let (mode, per_position) = match sums {
        Sums::Variance => (0, false),
        Sums::AffineGrads { per_position } => (1, per_position),
    };
    let params = [n, c, hw, chunk, groups, mode, per_position as usize, 0].map(|v| v as u32);
    let pipeline = dev.pipeline("norm/channel_sums", || {
        include_str!("../shaders/norm_channel_sums.wgsl").into()
    });
    dev.dispatch(
        &pipeline,
        &params,
        &[
            x.buffer(),
            g.buffer(),
            mean.buffer(),
            invstd.buffer(),
            a.buffer(),
            b.buffer(),
        ],
        workgroup_grid(dev, c * groups),
    )?;
    Ok((a, b, groups))
}

/// y = (x − mean[c]) · inv[c] · weight[c] + bias[c], where inv is `stat` or,
/// with `from_var`, 1/√(stat + eps).
#[allow(clippy::too_many_arguments)]
fn bn_apply(
    op: &str,
    x: &Tensor,
    mean: &Tensor,
    stat: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    from_var: bool,
    eps: f32,
    (_, c, hw): (usize, usize, usize),
) -> Result<Tensor> {
    let dev = x.device();
    let y = Tensor::uninit(dev, x.shape(), op)?;
    let total = x.numel();
    let params = [
        total as u32,
        c as u32,
        hw as u32,
        from_var as u32,
        eps.to_bits(),
    ];
    let pipeline = dev.pipeline("norm/bn_apply", || {
        include_str!("../shaders/norm_bn_apply.wgsl").into()
    });
    dev.dispatch(
        &pipeline,
        &params,
        &[
            x.buffer(),
            mean.buffer(),
            stat.buffer(),
            weight.buffer(),
            bias.buffer(),
            y.buffer(),
        ],
        dev.linear_grid(total),
    )?;
    Ok(y)
}

/// Batch norm in training mode: statistics per channel over N·hw values,
/// biased variance. Returns (y, mean, invstd) with mean and invstd `[C]`,
/// invstd = 1/√(var + eps); pass them to [`batch_norm_backward`] and
/// [`batch_norm_update_running`].
///
/// The variance is the corrected two-pass one, (Σd² − (Σd)²/M)/M with
/// d = x − mean: no cancellation when the mean is large against the spread.
pub fn batch_norm_train(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "batch_norm_train";
    let dims = layout(op, x)?;
    let (_, c, _) = dims;
    check_shape(op, "weight", weight, &[c], x)?;
    check_shape(op, "bias", bias, &[c], x)?;
    check_eps(op, eps)?;
    kernels(x.device()).batch_norm_train(x, weight, bias, eps, dims)
}

/// Batch norm in evaluation mode: (x − running_mean)/√(running_var + eps)·weight + bias.
pub fn batch_norm_eval(
    x: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    let op = "batch_norm_eval";
    let dims = layout(op, x)?;
    let c = dims.1;
    check_shape(op, "running_mean", running_mean, &[c], x)?;
    check_shape(op, "running_var", running_var, &[c], x)?;
    check_shape(op, "weight", weight, &[c], x)?;
    check_shape(op, "bias", bias, &[c], x)?;
    check_eps(op, eps)?;
    kernels(x.device()).batch_norm_eval(x, running_mean, running_var, weight, bias, eps, dims)
}

/// Backward of [`batch_norm_train`] with x̂ = (x − mean)·invstd and M = N·hw:
/// grad_bias = Σ g, grad_weight = Σ g·x̂ (per channel), and
/// grad_x = weight·invstd·(g − Σg/M − x̂·Σ(g·x̂)/M).
/// Returns (grad_x, grad_weight, grad_bias).
pub fn batch_norm_backward(
    grad_out: &Tensor,
    x: &Tensor,
    weight: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "batch_norm_backward";
    let dims = layout(op, x)?;
    let (_, c, _) = dims;
    check_shape(op, "gradient", grad_out, x.shape(), x)?;
    check_shape(op, "weight", weight, &[c], x)?;
    check_shape(op, "mean", mean, &[c], x)?;
    check_shape(op, "invstd", invstd, &[c], x)?;
    kernels(x.device()).batch_norm_backward(grad_out, x, weight, mean, invstd, dims)
}

/// Updates the running statistics in place, like PyTorch:
/// running_mean ← (1 − momentum)·running_mean + momentum·mean and
/// running_var ← (1 − momentum)·running_var + momentum·var·count/(count − 1),
/// the unbiased variance, recovered from invstd as 1/invstd² − eps.
/// `count` is the number of values per channel (N·hw) that gave the batch statistics.
pub fn batch_norm_update_running(
    running_mean: &Tensor,
    running_var: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
    count: usize,
    momentum: f32,
    eps: f32,
) -> Result<()> {
    let op = "batch_norm_update_running";
    let c = mean.numel();
    for (what, t) in [
        ("mean", mean),
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("invstd", invstd),
    ] {
        mean.same_device(t, op)?;
        if t.shape() != [c] {
            return Err(Error::Shape(format!(
                "{op}: {what} must have shape [{c}] like the {c} values of mean, got {:?}",
                t.shape()
            )));
        }
    }
    if count < 2 {
        return Err(Error::InvalidArgument(format!(
            "{op}: the unbiased variance needs at least 2 values per channel, got count = {count}"
        )));
    }
    if !(0.0..=1.0).contains(&momentum) {
        return Err(Error::InvalidArgument(format!(
            "{op}: momentum must be in [0, 1], got {momentum}"
        )));
    }
    check_eps(op, eps)?;
    kernels(mean.device()).batch_norm_update_running(
        running_mean,
        running_var,
        mean,
        invstd,
        count,
        momentum,
        eps,
    )
}

/// Layer norm over the channels of `[N, C, ...]`: at each position, mean and
/// biased variance over C; then a per-channel affine map. Returns (y, mean,
/// invstd) with mean and invstd `[N, 1, ...]`.
pub fn layer_norm(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    eps: f32,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "layer_norm";
    let (n, c, hw) = layout(op, x)?;
    check_shape(op, "weight", weight, &[c], x)?;
    check_shape(op, "bias", bias, &[c], x)?;
    check_eps(op, eps)?;
    kernels(x.device()).layer_norm(x, weight, bias, eps, (n, c, hw))
}

/// Backward of [`layer_norm`] with x̂ = (x − mean)·invstd and ĝ = g·weight[c]:
/// grad_x = invstd·(ĝ − mean_C ĝ − x̂·mean_C(ĝ·x̂)) at each position;
/// grad_weight = Σ g·x̂ and grad_bias = Σ g over N and the positions.
/// Returns (grad_x, grad_weight, grad_bias).
pub fn layer_norm_backward(
    grad_out: &Tensor,
    x: &Tensor,
    weight: &Tensor,
    mean: &Tensor,
    invstd: &Tensor,
) -> Result<(Tensor, Tensor, Tensor)> {
    let op = "layer_norm_backward";
    let dims = layout(op, x)?;
    let (_, c, _) = dims;
    check_shape(op, "gradient", grad_out, x.shape(), x)?;
    check_shape(op, "weight", weight, &[c], x)?;
    check_shape(op, "mean", mean, &stats_shape(x), x)?;
    check_shape(op, "invstd", invstd, &stats_shape(x), x)?;
    kernels(x.device()).layer_norm_backward(grad_out, x, weight, mean, invstd, dims)
}

/// The normalisation kernels of a backend, given checked shapes; `dims` is
/// the input viewed as `(N, C, positions)`.
pub(crate) trait NormKernels {
    /// (y, mean, invstd).
    fn batch_norm_train(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)>;
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_eval(
        &self,
        x: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        dims: (usize, usize, usize),
    ) -> Result<Tensor>;
    /// (grad_x, grad_weight, grad_bias).
    fn batch_norm_backward(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        weight: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)>;
    /// Updates the running statistics in place.
    #[allow(clippy::too_many_arguments)]
    fn batch_norm_update_running(
        &self,
        running_mean: &Tensor,
        running_var: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        count: usize,
        momentum: f32,
        eps: f32,
    ) -> Result<()>;
    /// (y, mean, invstd).
    fn layer_norm(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)>;
    /// (grad_x, grad_weight, grad_bias).
    fn layer_norm_backward(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        weight: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)>;
}

impl NormKernels for Native {
    fn batch_norm_train(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let c = dims.1;
        let (y, mean, invstd) =
            cpu::norm::batch_norm_train(&x.host(), x.shape(), &weight.host(), &bias.host(), eps);
        let dev = x.device();
        Ok((
            Tensor::from_vec(dev, y, x.shape())?,
            Tensor::from_vec(dev, mean, &[c])?,
            Tensor::from_vec(dev, invstd, &[c])?,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_norm_eval(
        &self,
        x: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        _dims: (usize, usize, usize),
    ) -> Result<Tensor> {
        let y = cpu::norm::batch_norm_eval(
            &x.host(),
            x.shape(),
            &running_mean.host(),
            &running_var.host(),
            &weight.host(),
            &bias.host(),
            eps,
        );
        Tensor::from_vec(x.device(), y, x.shape())
    }

    fn batch_norm_backward(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        weight: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let c = dims.1;
        let (gx, gw, gb) = cpu::norm::batch_norm_backward(
            &grad_out.host(),
            &x.host(),
            x.shape(),
            &weight.host(),
            &mean.host(),
            &invstd.host(),
        );
        let dev = x.device();
        Ok((
            Tensor::from_vec(dev, gx, x.shape())?,
            Tensor::from_vec(dev, gw, &[c])?,
            Tensor::from_vec(dev, gb, &[c])?,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_norm_update_running(
        &self,
        running_mean: &Tensor,
        running_var: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        count: usize,
        momentum: f32,
        eps: f32,
    ) -> Result<()> {
        cpu::norm::batch_norm_update_running(
            &mut running_mean.host_mut(),
            &mut running_var.host_mut(),
            &mean.host(),
            &invstd.host(),
            count,
            momentum,
            eps,
        );
        Ok(())
    }

    fn layer_norm(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        _dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let dev = x.device();
        let (y, mean, invstd) =
            cpu::norm::layer_norm(&x.host(), x.shape(), &weight.host(), &bias.host(), eps);
        let s = stats_shape(x);
        Ok((
            Tensor::from_vec(dev, y, x.shape())?,
            Tensor::from_vec(dev, mean, &s)?,
            Tensor::from_vec(dev, invstd, &s)?,
        ))
    }

    fn layer_norm_backward(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        weight: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let c = dims.1;
        let dev = x.device();
        let (gx, gw, gb) = cpu::norm::layer_norm_backward(
            &grad_out.host(),
            &x.host(),
            x.shape(),
            &weight.host(),
            &mean.host(),
            &invstd.host(),
        );
        Ok((
            Tensor::from_vec(dev, gx, x.shape())?,
            Tensor::from_vec(dev, gw, &[c])?,
            Tensor::from_vec(dev, gb, &[c])?,
        ))
    }
}

impl NormKernels for Wgpu {
    fn batch_norm_train(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let op = "batch_norm_train";
        let (n, c, hw) = dims;
        let axes: Vec<usize> = std::iter::once(0).chain(2..x.shape().len()).collect();
        let mean = mean_axes(x, &axes, false)?;
        let dev = x.device();
        let invstd = Tensor::uninit(dev, &[c], op)?;
        let (sq, lin, groups) = channel_sums(op, x, x, &mean, &mean, Sums::Variance, dims)?;
        let count = n * hw;
        let params = [
            c as u32,
            groups as u32,
            ((1.0 / count as f64) as f32).to_bits(),
            eps.to_bits(),
        ];
        let pipeline = dev.pipeline("norm/bn_finalize", || {
            include_str!("../shaders/norm_bn_finalize.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[sq.buffer(), lin.buffer(), mean.buffer(), invstd.buffer()],
            dev.linear_grid(c),
        )?;
        let y = bn_apply(op, x, &mean, &invstd, weight, bias, false, eps, dims)?;
        Ok((y, mean, invstd))
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_norm_eval(
        &self,
        x: &Tensor,
        running_mean: &Tensor,
        running_var: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        dims: (usize, usize, usize),
    ) -> Result<Tensor> {
        let op = "batch_norm_eval";
        bn_apply(
            op,
            x,
            running_mean,
            running_var,
            weight,
            bias,
            true,
            eps,
            dims,
        )
    }

    fn batch_norm_backward(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        weight: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let op = "batch_norm_backward";
        let (n, c, hw) = dims;
        let (pg, pgx, _) = channel_sums(
            op,
            x,
            grad_out,
            mean,
            invstd,
            Sums::AffineGrads {
                per_position: false,
            },
            dims,
        )?;
        let grad_bias = sum_axes(&pg, &[1], false)?;
        let grad_weight = sum_axes(&pgx, &[1], false)?;
        let dev = x.device();
        let gx = Tensor::uninit(dev, x.shape(), op)?;
        let total = x.numel();
        let inv_count = (1.0 / (n * hw) as f64) as f32;
        let params = [total as u32, c as u32, hw as u32, inv_count.to_bits()];
        let pipeline = dev.pipeline("norm/bn_backward", || {
            include_str!("../shaders/norm_bn_backward.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[
                grad_out.buffer(),
                x.buffer(),
                weight.buffer(),
                mean.buffer(),
                invstd.buffer(),
                grad_bias.buffer(),
                grad_weight.buffer(),
                gx.buffer(),
            ],
            dev.linear_grid(total),
        )?;
        Ok((gx, grad_weight, grad_bias))
    }

    #[allow(clippy::too_many_arguments)]
    fn batch_norm_update_running(
        &self,
        running_mean: &Tensor,
        running_var: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        count: usize,
        momentum: f32,
        eps: f32,
    ) -> Result<()> {
        let c = mean.numel();
        let dev = mean.device();
        let unbias = (count as f64 / (count - 1) as f64) as f32;
        let params = [
            c as u32,
            momentum.to_bits(),
            eps.to_bits(),
            unbias.to_bits(),
        ];
        let pipeline = dev.pipeline("norm/bn_running", || {
            include_str!("../shaders/norm_bn_running.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[
                mean.buffer(),
                invstd.buffer(),
                running_mean.buffer(),
                running_var.buffer(),
            ],
            dev.linear_grid(c),
        )
    }

    fn layer_norm(
        &self,
        x: &Tensor,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let op = "layer_norm";
        let (n, c, hw) = dims;
        let dev = x.device();
        let y = Tensor::uninit(dev, x.shape(), op)?;
        let mean = Tensor::uninit(dev, &stats_shape(x), op)?;
        let invstd = Tensor::uninit(dev, &stats_shape(x), op)?;
        let positions = n * hw;
        let params = [positions as u32, c as u32, hw as u32, eps.to_bits()];
        let pipeline = dev.pipeline("norm/ln_forward", || {
            include_str!("../shaders/norm_ln_forward.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[
                x.buffer(),
                weight.buffer(),
                bias.buffer(),
                y.buffer(),
                mean.buffer(),
                invstd.buffer(),
            ],
            dev.linear_grid(positions),
        )?;
        Ok((y, mean, invstd))
    }

    fn layer_norm_backward(
        &self,
        grad_out: &Tensor,
        x: &Tensor,
        weight: &Tensor,
        mean: &Tensor,
        invstd: &Tensor,
        dims: (usize, usize, usize),
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let op = "layer_norm_backward";
        let (n, c, hw) = dims;
        let dev = x.device();
        let gx = Tensor::uninit(dev, x.shape(), op)?;
        let positions = n * hw;
        let params = [
            positions as u32,
            c as u32,
            hw as u32,
            ((1.0 / c as f64) as f32).to_bits(),
        ];
        let pipeline = dev.pipeline("norm/ln_backward", || {
            include_str!("../shaders/norm_ln_backward.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[
                grad_out.buffer(),
                x.buffer(),
                weight.buffer(),
                mean.buffer(),
                invstd.buffer(),
                gx.buffer(),
            ],
            dev.linear_grid(positions),
        )?;
        let (pg, pgx, _) = channel_sums(
            op,
            x,
            grad_out,
            mean,
            invstd,
            Sums::AffineGrads { per_position: true },
            dims,
        )?;
        let grad_bias = sum_axes(&pg, &[1], false)?;
        let grad_weight = sum_axes(&pgx, &[1], false)?;
        Ok((gx, grad_weight, grad_bias))
    }
}
