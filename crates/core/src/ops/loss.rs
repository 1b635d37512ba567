//! Losses between a prediction and a target of the same shape, each a `[1]`
//! tensor, and their gradients with respect to the prediction for an
//! upstream gradient `grad` of shape `[1]` (read on the device, never on the
//! host).
//!
//! L1, MSE and Charbonnier are means of a function of d = ŷ − y: one fused
//! kernel sums each chunk of that function in a shared-memory tree, and the
//! partial sums are reduced by [`crate::ops::reduce`].
//!
//! The FFT loss takes images `[..., H, W]` (NCHW), the 2-D DFT F of every
//! H×W plane and the mean over all frequencies of the complex modulus
//! |F(ŷ) − F(y)| = |F(d)|, taken as √(re² + im² + ε) so that its gradient
//! is finite where F(d) = 0. With C and S the cosine and sine DFT matrices
//! (C[a, b] = cos(2π·ab/L), both symmetric), F = (C_H − iS_H)·d·(C_W − iS_W):
//! the transforms are matrix products with the planes, batched over them.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::ops::reduce::{chunking, reduce_scaled, u32_arg, workgroup_grid};
use crate::ops::{binary, matmul, BinaryOp};
use crate::tensor::Tensor;

/// Charbonnier's ε in √(d² + ε²) unless the caller picks another.
pub const CHARBONNIER_EPS: f32 = 1e-3;
/// ε in the FFT loss's modulus √(re² + im² + ε).
pub const FFT_LOSS_EPS: f32 = 1e-12;

/// A loss that is the mean of `forward(d, s)`; `backward(d, s)` is its derivative in d.
pub(crate) struct Pointwise {
    name: &'static str,
    forward: &'static str,
    backward: &'static str,
}

const L1: Pointwise = Pointwise {
    name: "l1",
    forward: "abs(d)",
    // The subgradient 0 at d = 0 (WGSL's sign(0) is 0).
    backward: "sign(d)",
};
const MSE: Pointwise = Pointwise {
    name: "mse",
    forward: "d * d",
    backward: "2.0 * d",
};
const CHARBONNIER: Pointwise = Pointwise {
    name: "charbonnier",
    forward: "sqrt(d * d + s * s)",
    backward: "d / sqrt(d * d + s * s)",
};

fn check_pair(op: &str, pred: &Tensor, target: &Tensor) -> Result<usize> {
    pred.same_device(target, op)?;
    if pred.shape() != target.shape() {
        return Err(Error::Shape(format!(
            "{op}: prediction {:?} and target {:?} differ in shape",
            pred.shape(),
            target.shape()
        )));
    }
    let n = pred.numel();
    if n == 0 {
        return Err(Error::Shape(format!(
            "{op}: prediction {:?} is empty",
            pred.shape()
        )));
    }
    u32_arg(op, n)?;
    Ok(n)
}

fn check_grad(op: &str, grad: &Tensor, pred: &Tensor) -> Result<()> {
    grad.same_device(pred, op)?;
    if grad.numel() != 1 {
        return Err(Error::Shape(format!(
            "{op}: the upstream gradient must hold one value, got shape {:?} (prediction {:?})",
            grad.shape(),
            pred.shape()
        )));
    }
    Ok(())
}

/// Sums `partials` and scales by `scale`, as a `[1]` tensor.
fn finish(op: &str, partials: &Tensor, scale: f32) -> Result<Tensor> {
    reduce_scaled(op, partials, &[0], true, scale)
}

fn pointwise(pred: &Tensor, target: &Tensor, loss: &Pointwise, s: f32) -> Result<Tensor> {
    let op = format!("{}_loss", loss.name);
    let n = check_pair(&op, pred, target)?;
    kernels(pred.device()).pointwise_loss(pred, target, loss, s, n)
}

fn pointwise_backward(
    grad: &Tensor,
    pred: &Tensor,
    target: &Tensor,
    loss: &Pointwise,
    s: f32,
) -> Result<Tensor> {
    let op = format!("{}_loss_backward", loss.name);
    let n = check_pair(&op, pred, target)?;
    check_grad(&op, grad, pred)?;
    kernels(pred.device()).pointwise_loss_backward(grad, pred, target, loss, s, n)
}

fn check_charbonnier_eps(op: &str, eps: f32) -> Result<()> {
    if eps.is_finite() && eps > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{op}: eps must be finite and > 0, got {eps}"
        )))
    }
}

/// mean |ŷ − y|.
pub fn l1_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    pointwise(pred, target, &L1, 0.0)
}

/// grad · sign(ŷ − y)/n, with 0 where ŷ = y.
pub fn l1_loss_backward(grad: &Tensor, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    pointwise_backward(grad, pred, target, &L1, 0.0)
}

/// mean (ŷ − y)².
pub fn mse_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    pointwise(pred, target, &MSE, 0.0)
}

/// grad · 2(ŷ − y)/n.
pub fn mse_loss_backward(grad: &Tensor, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    pointwise_backward(grad, pred, target, &MSE, 0.0)
}

/// mean √((ŷ − y)² + ε²) (ε = [`CHARBONNIER_EPS`] is the usual choice).
pub fn charbonnier_loss(pred: &Tensor, target: &Tensor, eps: f32) -> Result<Tensor> {
    check_charbonnier_eps("charbonnier_loss", eps)?;
    pointwise(pred, target, &CHARBONNIER, eps)
}

/// grad · (ŷ − y)/√((ŷ − y)² + ε²)/n.
pub fn charbonnier_loss_backward(
    grad: &Tensor,
    pred: &Tensor,
    target: &Tensor,
    eps: f32,
) -> Result<Tensor> {
    check_charbonnier_eps("charbonnier_loss_backward", eps)?;
    pointwise_backward(grad, pred, target, &CHARBONNIER, eps)
}

/// Planes, H and W of an image batch `[..., H, W]`.
fn fft_layout(op: &str, pred: &Tensor) -> Result<(usize, usize, usize)> {
    let s = pred.shape();
    if s.len() < 2 {
        return Err(Error::Shape(format!(
            "{op}: images must be [N, C, H, W] (or [..., H, W]), got {s:?}"
        )));
    }
    let (h, w) = (s[s.len() - 2], s[s.len() - 1]);
    // Products of frequency and position indices must fit in u32.
    if h > 65_535 || w > 65_535 {
        return Err(Error::TooLarge(format!(
            "{op}: planes of {s:?} exceed 65535 in H or W"
        )));
    }
    u32_arg(op, pred.numel() * 4)?;
    Ok((pred.numel() / (h * w), h, w))
}

/// (sin, cos) of 2π·k/len: exact at multiples of a quarter turn, so that
/// sin π is 0 and not 1.2e-16; otherwise from f64.
fn twiddle(k: usize, len: usize) -> (f64, f64) {
    if (4 * k).is_multiple_of(len) {
        [(0.0, 1.0), (1.0, 0.0), (0.0, -1.0), (-1.0, 0.0)][4 * k / len]
    } else {
        (2.0 * std::f64::consts::PI * k as f64 / len as f64).sin_cos()
    }
}

/// [C | S] as `[L, 2L]` (`stacked` false) or [C; −S] as `[2L, L]` (true),
/// with the angle reduced exactly to 2π·((a·b) mod L)/L.
fn dft_basis(pred: &Tensor, len: usize, stacked: bool) -> Result<Tensor> {
    let mut m = vec![0f32; 2 * len * len];
    for a in 0..len {
        for b in 0..len {
            let (sin, cos) = twiddle((a * b) % len, len);
            if stacked {
                m[a * len + b] = cos as f32;
                m[(len + a) * len + b] = -sin as f32;
            } else {
                m[a * 2 * len + b] = cos as f32;
                m[a * 2 * len + len + b] = sin as f32;
            }
        }
    }
    let shape = if stacked {
        [2 * len, len]
    } else {
        [len, 2 * len]
    };
    Tensor::from_slice(pred.device(), &m, &shape)
}

/// S = [Aᵀ; Bᵀ]·[C_H | S_H] `[planes, 2W, 2H]`, where d·[C_W | S_W] = [A | B].
/// Then F(d)ᵀ = (AᵀC_H − BᵀS_H) − i(BᵀC_H + AᵀS_H): its four blocks.
fn fft_blocks(
    op: &str,
    pred: &Tensor,
    target: &Tensor,
    (planes, h, w): (usize, usize, usize),
) -> Result<Tensor> {
    let dev = pred.device();
    let d = binary(pred, target, BinaryOp::Sub)?.reshape(&[planes, h, w])?;
    let row = matmul(&d, &dft_basis(pred, w, false)?)?;
    let rows_t = Tensor::uninit(dev, &[planes, 2 * w, h], op)?;
    let pipeline = dev.pipeline("loss/fft_transpose", || {
        include_str!("../shaders/loss_fft_transpose.wgsl").into()
    });
    let total = planes * h * 2 * w;
    let params = [total as u32, h as u32, (2 * w) as u32];
    dev.dispatch(
        &pipeline,
        &params,
        &[row.buffer(), rows_t.buffer()],
        dev.linear_grid(total),
    )?;
    matmul(&rows_t, &dft_basis(pred, h, false)?)
}

/// FFT loss: mean over all N·C·H·W frequencies of |F(ŷ) − F(y)|, F the
/// unnormalised 2-D DFT of each H×W plane (as torch.fft.fft2), the modulus
/// taken as √(re² + im² + [`FFT_LOSS_EPS`]).
pub fn fft_loss(pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let op = "fft_loss";
    let n = check_pair(op, pred, target)?;
    let dims = fft_layout(op, pred)?;
    kernels(pred.device()).fft_loss(pred, target, n, dims)
}

/// Gradient of [`fft_loss`] with respect to the prediction: the adjoint DFT
/// of G = F(d)/|F(d)|, scaled by grad/(N·C·H·W):
/// ∂L/∂d = Re(conj(E_H)·G·conj(E_W))/n with E the DFT matrices, i.e.
/// Re[(C_H + iS_H)·G·(C_W + iS_W)] = Q_r·C_W − Q_i·S_W for
/// Q = (C_H + iS_H)·G. The forward transform is recomputed, not saved.
pub fn fft_loss_backward(grad: &Tensor, pred: &Tensor, target: &Tensor) -> Result<Tensor> {
    let op = "fft_loss_backward";
    let n = check_pair(op, pred, target)?;
    check_grad(op, grad, pred)?;
    let dims = fft_layout(op, pred)?;
    kernels(pred.device()).fft_loss_backward(grad, pred, target, n, dims)
}

/// The loss kernels of a backend, given checked operands.
pub(crate) trait LossKernels {
    /// The mean of `loss` over the `n` values, as `[1]`.
    fn pointwise_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        loss: &Pointwise,
        s: f32,
        n: usize,
    ) -> Result<Tensor>;
    /// Its gradient for the `[1]` upstream `grad`.
    fn pointwise_loss_backward(
        &self,
        grad: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        loss: &Pointwise,
        s: f32,
        n: usize,
    ) -> Result<Tensor>;
    /// `dims` = (planes, H, W) of the `n` values.
    fn fft_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        n: usize,
        dims: (usize, usize, usize),
    ) -> Result<Tensor>;
    fn fft_loss_backward(
        &self,
        grad: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        n: usize,
        dims: (usize, usize, usize),
    ) -> Result<Tensor>;
}

impl LossKernels for Native {
    fn pointwise_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        loss: &Pointwise,
        s: f32,
        _n: usize,
    ) -> Result<Tensor> {
        let dev = pred.device();
        let (p, t) = (pred.host(), target.host());
        let v = match loss.name {
            "l1" => cpu::loss::l1_loss(&p, &t),
            "mse" => cpu::loss::mse_loss(&p, &t),
            _ => cpu::loss::charbonnier_loss(&p, &t, s),
        };
        Tensor::from_vec(dev, vec![v], &[1])
    }

    fn pointwise_loss_backward(
        &self,
        grad: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        loss: &Pointwise,
        s: f32,
        _n: usize,
    ) -> Result<Tensor> {
        let dev = pred.device();
        let g = grad.host()[0];
        let (p, t) = (pred.host(), target.host());
        let gx = match loss.name {
            "l1" => cpu::loss::l1_loss_backward(g, &p, &t),
            "mse" => cpu::loss::mse_loss_backward(g, &p, &t),
            _ => cpu::loss::charbonnier_loss_backward(g, &p, &t, s),
        };
        Tensor::from_vec(dev, gx, pred.shape())
    }

    fn fft_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        _n: usize,
        _dims: (usize, usize, usize),
    ) -> Result<Tensor> {
        let v = cpu::loss::fft_loss(&pred.host(), &target.host(), pred.shape());
        Tensor::from_vec(pred.device(), vec![v], &[1])
    }

    fn fft_loss_backward(
        &self,
        grad: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        _n: usize,
        _dims: (usize, usize, usize),
    ) -> Result<Tensor> {
        let gx = cpu::loss::fft_loss_backward(
            grad.host()[0],
            &pred.host(),
            &target.host(),
            pred.shape(),
        );
        Tensor::from_vec(pred.device(), gx, pred.shape())
    }
}

impl LossKernels for Wgpu {
    fn pointwise_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        loss: &Pointwise,
        s: f32,
        n: usize,
    ) -> Result<Tensor> {
        let op = format!("{}_loss", loss.name);
        let dev = pred.device();
        let (chunk, groups) = chunking(n);
        let partials = Tensor::uninit(dev, &[groups], &op)?;
        let pipeline = dev.pipeline(&format!("loss/{}", loss.name), || {
            include_str!("../shaders/loss_pointwise.wgsl").replace("EXPR", loss.forward)
        });
        let params = [n as u32, chunk as u32, groups as u32, s.to_bits()];
        dev.dispatch(
            &pipeline,
            &params,
            &[pred.buffer(), target.buffer(), partials.buffer()],
            workgroup_grid(dev, groups),
        )?;
        finish(&op, &partials, (1.0 / n as f64) as f32)
    }

    fn pointwise_loss_backward(
        &self,
        grad: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        loss: &Pointwise,
        s: f32,
        n: usize,
    ) -> Result<Tensor> {
        let op = format!("{}_loss_backward", loss.name);
        let dev = pred.device();
        let gx = Tensor::uninit(dev, pred.shape(), &op)?;
        let pipeline = dev.pipeline(&format!("loss_backward/{}", loss.name), || {
            include_str!("../shaders/loss_pointwise_backward.wgsl").replace("EXPR", loss.backward)
        });
        let params = [n as u32, ((1.0 / n as f64) as f32).to_bits(), s.to_bits()];
        dev.dispatch(
            &pipeline,
            &params,
            &[grad.buffer(), pred.buffer(), target.buffer(), gx.buffer()],
            dev.linear_grid(n),
        )?;
        Ok(gx)
    }

    fn fft_loss(
        &self,
        pred: &Tensor,
        target: &Tensor,
        n: usize,
        dims: (usize, usize, usize),
    ) -> Result<Tensor> {
        let op = "fft_loss";
        let (planes, h, w) = dims;
        let blocks = fft_blocks(op, pred, target, dims)?;
        let dev = pred.device();
        let (chunk, groups) = chunking(n);
        let partials = Tensor::uninit(dev, &[groups], op)?;
        let pipeline = dev.pipeline("loss/fft_modulus", || {
            include_str!("../shaders/loss_fft_modulus.wgsl").into()
        });
        let params = [
            n as u32,
            h as u32,
            w as u32,
            chunk as u32,
            groups as u32,
            FFT_LOSS_EPS.to_bits(),
        ];
        debug_assert_eq!(n, planes * h * w);
        dev.dispatch(
            &pipeline,
            &params,
            &[blocks.buffer(), partials.buffer()],
            workgroup_grid(dev, groups),
        )?;
        finish(op, &partials, (1.0 / n as f64) as f32)
    }

    fn fft_loss_backward(
        &self,
        grad: &Tensor,
        pred: &Tensor,
        target: &Tensor,
        n: usize,
        dims: (usize, usize, usize),
    ) -> Result<Tensor> {
        let op = "fft_loss_backward";
        let (planes, h, w) = dims;
        let blocks = fft_blocks(op, pred, target, dims)?;
        let dev = pred.device();
        // Gᵀ stacked as [G_rᵀ; G_iᵀ]: [planes, 2W, H], scaled by grad/n.
        let unit = Tensor::uninit(dev, &[planes, 2 * w, h], op)?;
        let pipeline = dev.pipeline("loss/fft_normalize", || {
            include_str!("../shaders/loss_fft_normalize.wgsl").into()
        });
        let params = [
            n as u32,
            h as u32,
            w as u32,
            ((1.0 / n as f64) as f32).to_bits(),
            FFT_LOSS_EPS.to_bits(),
        ];
        dev.dispatch(
            &pipeline,
            &params,
            &[grad.buffer(), blocks.buffer(), unit.buffer()],
            dev.linear_grid(n),
        )?;
        // [G_rᵀ; G_iᵀ]·[C_H | S_H]: the blocks of Qᵀ = Gᵀ(C_H + iS_H).
        let q_blocks = matmul(&unit, &dft_basis(pred, h, false)?)?;
        let q = Tensor::uninit(dev, &[planes, h, 2 * w], op)?;
        let pipeline = dev.pipeline("loss/fft_combine", || {
            include_str!("../shaders/loss_fft_combine.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &[n as u32, h as u32, w as u32],
            &[q_blocks.buffer(), q.buffer()],
            dev.linear_grid(n),
        )?;
        matmul(&q, &dft_basis(pred, w, true)?)?.reshape(pred.shape())
    }
}
