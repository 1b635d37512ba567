//! Optimizer steps as fused in-place kernels (one dispatch per parameter),
//! and global gradient-norm clipping. Learning-rate schedules are plain
//! arithmetic and live with the training loop.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::ops::{self, BinaryOp, UnaryOp};
use crate::tensor::Tensor;

/// Adam hyper-parameters; `decoupled` selects AdamW's weight decay.
#[derive(Debug, Clone, Copy)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub decoupled: bool,
}

fn same_shape(op: &str, a: &Tensor, b: &Tensor, what: &str) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(Error::Shape(format!(
            "{op}: {what} {:?} does not match the parameter {:?}",
            b.shape(),
            a.shape()
        )));
    }
    Ok(())
}

/// One Adam/AdamW step at `step` (counted from 1), updating `param`, `m`, `v` in place.
pub fn adam_step(
    param: &Tensor,
    grad: &Tensor,
    m: &Tensor,
    v: &Tensor,
    step: u32,
    c: &AdamConfig,
) -> Result<()> {
    for (t, what) in [
        (grad, "gradient"),
        (m, "first moment"),
        (v, "second moment"),
    ] {
        same_shape("adam", param, t, what)?;
        param.same_device(t, "adam")?;
    }
    if step == 0 {
        return Err(Error::InvalidArgument("adam: step counts from 1".into()));
    }
    let _p = crate::profile::span("adam step");
    kernels(param.device()).adam_step(param, grad, m, v, step, c)
}

/// One Adam/AdamW step over every parameter of `params` that has a gradient
/// (from the last backward passes), with `m[i]` and `v[i]` the moments of
/// `params[i]`: the update of [`adam_step`] for each, in one call. On the CPU
/// backend the parameters are updated in parallel, a few small ones per
/// thread, instead of one call (and for small tensors one thread) each.
pub fn adam_step_params(
    params: &[Tensor],
    m: &[Tensor],
    v: &[Tensor],
    step: u32,
    c: &AdamConfig,
) -> Result<()> {
    if m.len() != params.len() || v.len() != params.len() {
        return Err(Error::InvalidArgument(format!(
            "adam: {} parameters but {} first and {} second moments",
            params.len(),
            m.len(),
            v.len()
        )));
    }
    let grads: Vec<Option<Tensor>> = params.iter().map(crate::autograd::grad).collect();
    for (i, p) in params.iter().enumerate() {
        if let Some(g) = &grads[i] {
            same_shape("adam", p, g, "gradient")?;
        }
        same_shape("adam", p, &m[i], "first moment")?;
        same_shape("adam", p, &v[i], "second moment")?;
    }
    if step == 0 {
        return Err(Error::InvalidArgument("adam: step counts from 1".into()));
    }
    let Some(first) = params.first() else {
        return Ok(());
    };
    for (i, p) in params.iter().enumerate() {
        for t in [p, &m[i], &v[i]].into_iter().chain(&grads[i]) {
            first.same_device(t, "adam")?;
        }
    }
    kernels(first.device()).adam_step_params(params, &grads, m, v, step, c)
}

/// One SGD step; `momentum_buf` (zeros at the start) is required when `momentum > 0`.
pub fn sgd_step(
    param: &Tensor,
    grad: &Tensor,
    momentum_buf: Option<&Tensor>,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
) -> Result<()> {
    same_shape("sgd", param, grad, "gradient")?;
    param.same_device(grad, "sgd")?;
    let buf = match (momentum > 0.0, momentum_buf) {
        (true, Some(b)) => {
            same_shape("sgd", param, b, "momentum buffer")?;
            param.same_device(b, "sgd")?;
            Some(b)
        }
        (true, None) => {
            return Err(Error::InvalidArgument(
                "sgd: momentum > 0 needs a momentum buffer".into(),
            ))
        }
        (false, _) => None,
    };
    kernels(param.device()).sgd_step(param, grad, buf, lr, momentum, weight_decay)
}

/// √(Σ‖g‖²) over all gradients: one reduction per tensor, one readback.
pub fn global_norm(grads: &[Tensor]) -> Result<f32> {
    let _p = crate::profile::span("grad norm");
    let mut total: Option<Tensor> = None;
    for g in grads {
        let sq = ops::reduce::sum_all(&ops::binary(g, g, BinaryOp::Mul)?)?;
        total = Some(match total {
            None => sq,
            Some(t) => ops::binary(&t, &sq, BinaryOp::Add)?,
        });
    }
    match total {
        None => Ok(0.0),
        Some(t) => Ok(t.to_vec()?[0].sqrt()),
    }
}

/// Clips the gradients of `params` (those a backward pass reached) in place
/// of [`clip_grad_norm`] plus one `setGrad` each: when their global norm is
/// finite and above `max_norm`, each gradient becomes g·max_norm/(norm + 1e-6).
/// Returns the norm before clipping (not finite: nothing is changed, and the
/// caller decides what to do).
pub fn clip_grad_norm_params(params: &[Tensor], max_norm: f32) -> Result<f32> {
    let _p = crate::profile::span("clip gradients");
    let with_grad: Vec<(&Tensor, Tensor)> = params
        .iter()
        .filter_map(|p| crate::autograd::grad(p).map(|g| (p, g)))
        .collect();
    let grads: Vec<Tensor> = with_grad.iter().map(|(_, g)| g.clone()).collect();
    let norm = global_norm(&grads)?;
    drop(grads);
    if norm.is_finite() && norm > max_norm {
        let scale = max_norm / (norm + 1e-6);
        for (p, g) in with_grad {
            let clipped = ops::unary(&g, UnaryOp::MulScalar(scale))?;
            crate::autograd::set_grad(p, Some(clipped))?;
        }
    }
    Ok(norm)
}

/// Scales `grads` so their global norm is at most `max_norm`; returns the
/// norm before clipping and the clipped gradients.
pub fn clip_grad_norm(grads: &[Tensor], max_norm: f32) -> Result<(f32, Vec<Tensor>)> {
    let norm = global_norm(grads)?;
    if !norm.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "clipGradNorm: the gradient norm is {norm}; the loss or a parameter is not finite"
        )));
    }
    if norm <= max_norm {
        return Ok((norm, grads.to_vec()));
    }
    let scale = max_norm / (norm + 1e-6);
    let clipped = grads
        .iter()
        .map(|g| ops::unary(g, UnaryOp::MulScalar(scale)))
        .collect::<Result<Vec<_>>>()?;
    Ok((norm, clipped))
}

/// The optimizer steps of a backend, updating checked tensors in place.
pub(crate) trait OptimKernels {
    fn adam_step(
        &self,
        param: &Tensor,
        grad: &Tensor,
        m: &Tensor,
        v: &Tensor,
        step: u32,
        c: &AdamConfig,
    ) -> Result<()>;
    /// [`OptimKernels::adam_step`] for every parameter with a gradient
    /// (`grads[i]`), all on this backend.
    fn adam_step_params(
        &self,
        params: &[Tensor],
        grads: &[Option<Tensor>],
        m: &[Tensor],
        v: &[Tensor],
        step: u32,
        c: &AdamConfig,
    ) -> Result<()>;
    /// `momentum_buf` is present exactly when `momentum > 0`.
    fn sgd_step(
        &self,
        param: &Tensor,
        grad: &Tensor,
        momentum_buf: Option<&Tensor>,
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    ) -> Result<()>;
}

impl OptimKernels for Native {
    fn adam_step(
        &self,
        param: &Tensor,
        grad: &Tensor,
        m: &Tensor,
        v: &Tensor,
        step: u32,
        c: &AdamConfig,
    ) -> Result<()> {
        cpu::optim::adam_step(
            &mut param.host_mut(),
            &grad.host(),
            &mut m.host_mut(),
            &mut v.host_mut(),
            step,
            c,
        );
        Ok(())
    }

    /// The parameters are updated in parallel, a few small ones per thread,
    /// instead of one call (and for small tensors one thread) each.
    fn adam_step_params(
        &self,
        params: &[Tensor],
        grads: &[Option<Tensor>],
        m: &[Tensor],
        v: &[Tensor],
        step: u32,
        c: &AdamConfig,
    ) -> Result<()> {
        let _p = crate::profile::span("adam step");
        use rayon::prelude::*;
        (0..params.len()).into_par_iter().for_each(|i| {
            if let Some(g) = &grads[i] {
                cpu::optim::adam_step(
                    &mut params[i].host_mut(),
                    &g.host(),
                    &mut m[i].host_mut(),
                    &mut v[i].host_mut(),
                    step,
                    c,
                );
            }
        });
        Ok(())
    }

    fn sgd_step(
        &self,
        param: &Tensor,
        grad: &Tensor,
        momentum_buf: Option<&Tensor>,
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    ) -> Result<()> {
        let mut buf = momentum_buf.map(|b| b.host_mut());
        cpu::optim::sgd_step(
            &mut param.host_mut(),
            &grad.host(),
            buf.as_deref_mut().map(|b| b.as_mut_slice()),
            lr,
            momentum,
            weight_decay,
        );
        Ok(())
    }
}

impl OptimKernels for Wgpu {
    fn adam_step(
        &self,
        param: &Tensor,
        grad: &Tensor,
        m: &Tensor,
        v: &Tensor,
        step: u32,
        c: &AdamConfig,
    ) -> Result<()> {
        let dev = param.device();
        let n = param.numel();
        let bc1 = 1.0 - c.beta1.powi(step as i32);
        let bc2 = 1.0 - c.beta2.powi(step as i32);
        let params = [
            n as u32,
            c.decoupled as u32,
            c.lr.to_bits(),
            c.beta1.to_bits(),
            c.beta2.to_bits(),
            c.eps.to_bits(),
            c.weight_decay.to_bits(),
            bc1.to_bits(),
            bc2.to_bits(),
        ];
        let pipeline = dev.pipeline("optim/adam", || {
            include_str!("shaders/optim_adam.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[param.buffer(), grad.buffer(), m.buffer(), v.buffer()],
            dev.linear_grid(n),
        )
    }

    /// One fused dispatch per parameter, recorded into the same batch.
    fn adam_step_params(
        &self,
        params: &[Tensor],
        grads: &[Option<Tensor>],
        m: &[Tensor],
        v: &[Tensor],
        step: u32,
        c: &AdamConfig,
    ) -> Result<()> {
        for (i, p) in params.iter().enumerate() {
            if let Some(g) = &grads[i] {
                adam_step(p, g, &m[i], &v[i], step, c)?;
            }
        }
        Ok(())
    }

    fn sgd_step(
        &self,
        param: &Tensor,
        grad: &Tensor,
        momentum_buf: Option<&Tensor>,
        lr: f32,
        momentum: f32,
        weight_decay: f32,
    ) -> Result<()> {
        // Without momentum the kernel never touches the buffer, but a binding is
        // still required, and it must not alias the read-only gradient.
        let dummy;
        let buf = match momentum_buf {
            Some(b) => b,
            None => {
                dummy = Tensor::zeros(param.device(), &[1])?;
                &dummy
            }
        };
        let dev = param.device();
        let n = param.numel();
        let params = [
            n as u32,
            (momentum > 0.0) as u32,
            lr.to_bits(),
            momentum.to_bits(),
            weight_decay.to_bits(),
        ];
        let pipeline = dev.pipeline("optim/sgd", || {
            include_str!("shaders/optim_sgd.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[param.buffer(), grad.buffer(), buf.buffer()],
            dev.linear_grid(n),
        )
    }
}
