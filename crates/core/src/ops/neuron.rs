//! Fused multi-step spiking neurons (IF, LIF, PLIF) and their BPTT backward,
//! with the equations, surrogates and reset modes of DESIGN §3 (SpikingJelly's
//! conventions).
//!
//! Inputs and spikes are time-major `[T, ...]`: one neuron per element of the
//! trailing dimensions, step t of neuron i at `t·n + i`. The forward is one
//! dispatch (an invocation per neuron loops over all T steps) that writes the
//! spikes S and the charged membrane H, the only tensor backward needs; the
//! backward is one dispatch that runs BPTT from t = T−1 down to 0, rebuilding
//! V[t−1] from H[t−1]. PLIF's ∂L/∂w is written per neuron and summed on the
//! device by [`reduce::sum_all`].
//!
//! Choices where DESIGN is silent:
//! - LIF needs a finite τ ≥ 1. τ = 1 (k = 1) is allowed: the neuron forgets
//!   its membrane every step (H = V_reset + X) and stays finite; τ < 1 would
//!   overshoot (k > 1) and is refused.
//! - IF ignores `decay_input` (there is no decay); it runs as k = 0.
//! - A PLIF weight passed to an IF or LIF neuron is refused rather than ignored.
//! - Soft reset uses V_reset = 0 in the charge and as V[−1] (DESIGN §3).

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::ops::reduce::{self, u32_arg};
use crate::tensor::Tensor;

/// Which neuron: PLIF's k = 1/τ = sigmoid(w) for a learnable scalar w `[1]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NeuronKind {
    If,
    Lif { tau: f32 },
    Plif,
}

/// Surrogate derivative g'(x) of the spike at x = H − V_th.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Surrogate {
    /// α·σ(αx)(1 − σ(αx)); default α = 4.
    Sigmoid { alpha: f32 },
    /// α / (2(1 + (π/2·α·x)²)); default α = 2.
    Atan { alpha: f32 },
    /// α − α²|x| for |x| ≤ 1/α, else 0; default α = 1.
    Triangle { alpha: f32 },
}

impl Surrogate {
    pub fn sigmoid() -> Surrogate {
        Surrogate::Sigmoid { alpha: 4.0 }
    }

    pub fn atan() -> Surrogate {
        Surrogate::Atan { alpha: 2.0 }
    }

    pub fn triangle() -> Surrogate {
        Surrogate::Triangle { alpha: 1.0 }
    }

    pub fn alpha(self) -> f32 {
        match self {
            Surrogate::Sigmoid { alpha }
            | Surrogate::Atan { alpha }
            | Surrogate::Triangle { alpha } => alpha,
        }
    }

    /// The kernel's `surrogate` switch value.
    fn id(self) -> u32 {
        match self {
            Surrogate::Sigmoid { .. } => 0,
            Surrogate::Atan { .. } => 1,
            Surrogate::Triangle { .. } => 2,
        }
    }
}

impl Default for Surrogate {
    fn default() -> Surrogate {
        Surrogate::sigmoid()
    }
}

/// A spiking neuron layer's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NeuronConfig {
    pub kind: NeuronKind,
    pub v_threshold: f32,
    /// `Some(v)`: hard reset to v (also the initial membrane); `None`: soft reset.
    pub v_reset: Option<f32>,
    pub decay_input: bool,
    /// Stops the gradient through the reset's dependence on S.
    pub detach_reset: bool,
    pub surrogate: Surrogate,
}

impl Default for NeuronConfig {
    /// The student's defaults (DESIGN §3): LIF τ = 2, V_th = 0.15, hard reset
    /// to 0, no input decay, sigmoid surrogate α = 4, reset not detached.
    fn default() -> NeuronConfig {
        NeuronConfig {
            kind: NeuronKind::Lif { tau: 2.0 },
            v_threshold: 0.15,
            v_reset: Some(0.0),
            decay_input: false,
            detach_reset: false,
            surrogate: Surrogate::sigmoid(),
        }
    }
}

/// Checks `cfg` and the PLIF weight against `like` (the input or H).
fn validate(op: &str, cfg: &NeuronConfig, plif_w: Option<&Tensor>, like: &Tensor) -> Result<()> {
    if like.shape().is_empty() {
        return Err(Error::Shape(format!(
            "{op}: the input must be time-major [T, ...] (rank >= 1), got a scalar shape []"
        )));
    }
    match cfg.kind {
        NeuronKind::Lif { tau } => {
            if !(tau.is_finite() && tau >= 1.0) {
                return Err(Error::InvalidArgument(format!(
                    "{op}: LIF needs a finite tau >= 1, got tau = {tau}"
                )));
            }
        }
        NeuronKind::If | NeuronKind::Plif => {}
    }
    match (cfg.kind, plif_w) {
        (NeuronKind::Plif, None) => {
            return Err(Error::InvalidArgument(format!(
                "{op}: a PLIF neuron needs its weight w (a [1] tensor)"
            )))
        }
        (NeuronKind::Plif, Some(w)) => {
            if w.shape() != [1] {
                return Err(Error::Shape(format!(
                    "{op}: the PLIF weight w must have shape [1], got {:?}",
                    w.shape()
                )));
            }
            like.same_device(w, op)?;
        }
        (kind, Some(_)) => {
            return Err(Error::InvalidArgument(format!(
                "{op}: a PLIF weight was given but the neuron is {kind:?}"
            )))
        }
        (_, None) => {}
    }
    if !cfg.v_threshold.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "{op}: v_threshold must be finite, got {}",
            cfg.v_threshold
        )));
    }
    if let Some(vr) = cfg.v_reset {
        if !vr.is_finite() {
            return Err(Error::InvalidArgument(format!(
                "{op}: v_reset must be finite, got {vr}"
            )));
        }
    }
    let alpha = cfg.surrogate.alpha();
    if !(alpha.is_finite() && alpha > 0.0) {
        return Err(Error::InvalidArgument(format!(
            "{op}: the surrogate's alpha must be finite and > 0, got {:?}",
            cfg.surrogate
        )));
    }
    Ok(())
}

/// The uniform words both kernels start with (see neuron_forward.wgsl), and
/// the number of neurons.
fn common_params(op: &str, cfg: &NeuronConfig, shape: &[usize]) -> Result<(Vec<u32>, usize)> {
    let steps = shape[0];
    u32_arg(op, shape.iter().product())?;
    let n: usize = shape[1..].iter().product();
    let (plif, k, decay_input) = match cfg.kind {
        NeuronKind::If => (0, 0.0f32, false),
        NeuronKind::Lif { tau } => (0, (1.0 / tau as f64) as f32, cfg.decay_input),
        NeuronKind::Plif => (1, 0.0, cfg.decay_input),
    };
    let params = vec![
        n as u32,
        steps as u32,
        plif,
        cfg.v_reset.is_some() as u32,
        decay_input as u32,
        k.to_bits(),
        cfg.v_threshold.to_bits(),
        cfg.v_reset.unwrap_or(0.0).to_bits(),
    ];
    Ok((params, n))
}

/// Runs all T steps of the neuron on `x` `[T, ...]` in one dispatch. Returns
/// the spikes S (0 or 1; S = 1 where H ≥ V_th) and the membrane H after the
/// charge and before fire/reset, both shaped like `x`; H is what
/// [`neuron_backward`] needs. `plif_w` is PLIF's `[1]` weight, `None` otherwise.
pub fn neuron_forward(
    x: &Tensor,
    cfg: &NeuronConfig,
    plif_w: Option<&Tensor>,
) -> Result<(Tensor, Tensor)> {
    const OP: &str = "neuron_forward";
    validate(OP, cfg, plif_w, x)?;
    // The uniform also checks the sizes against the kernels' u32 indices.
    common_params(OP, cfg, x.shape())?;
    kernels(x.device()).neuron_forward(x, cfg, plif_w)
}

/// BPTT through all T steps in one dispatch, from the gradient of the spikes
/// and the H saved by [`neuron_forward`] (same `cfg` and `plif_w`). Returns
/// ∂L/∂X and, for PLIF, ∂L/∂w as a `[1]` tensor.
pub fn neuron_backward(
    grad_spikes: &Tensor,
    h: &Tensor,
    cfg: &NeuronConfig,
    plif_w: Option<&Tensor>,
) -> Result<(Tensor, Option<Tensor>)> {
    const OP: &str = "neuron_backward";
    validate(OP, cfg, plif_w, h)?;
    grad_spikes.same_device(h, OP)?;
    if grad_spikes.shape() != h.shape() {
        return Err(Error::Shape(format!(
            "{OP}: the spikes' gradient {:?} and the saved membrane H {:?} differ in shape",
            grad_spikes.shape(),
            h.shape()
        )));
    }
    kernels(h.device()).neuron_backward(grad_spikes, h, cfg, plif_w)
}

/// The neuron kernels of a backend, given checked arguments: all T steps
/// of the forward, and BPTT through them.
pub(crate) trait NeuronKernels {
    /// (spikes, membrane H before fire/reset), both shaped like `x`.
    fn neuron_forward(
        &self,
        x: &Tensor,
        cfg: &NeuronConfig,
        plif_w: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)>;
    /// (∂L/∂X, ∂L/∂w for PLIF).
    fn neuron_backward(
        &self,
        grad_spikes: &Tensor,
        h: &Tensor,
        cfg: &NeuronConfig,
        plif_w: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)>;
}

impl NeuronKernels for Native {
    fn neuron_forward(
        &self,
        x: &Tensor,
        cfg: &NeuronConfig,
        plif_w: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        let dev = x.device();
        let w = plif_w.map(|w| w.host()[0]);
        let (s, h) = cpu::neuron::neuron_forward(&x.host(), x.shape(), cfg, w);
        Ok((
            Tensor::from_vec(dev, s, x.shape())?,
            Tensor::from_vec(dev, h, x.shape())?,
        ))
    }

    fn neuron_backward(
        &self,
        grad_spikes: &Tensor,
        h: &Tensor,
        cfg: &NeuronConfig,
        plif_w: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let w = plif_w.map(|w| w.host()[0]);
        let (gx, gw) =
            cpu::neuron::neuron_backward(&grad_spikes.host(), &h.host(), h.shape(), cfg, w);
        let gw = match gw {
            Some(v) => Some(Tensor::from_vec(h.device(), vec![v], &[1])?),
            None => None,
        };
        Ok((Tensor::from_vec(h.device(), gx, h.shape())?, gw))
    }
}

impl NeuronKernels for Wgpu {
    fn neuron_forward(
        &self,
        x: &Tensor,
        cfg: &NeuronConfig,
        plif_w: Option<&Tensor>,
    ) -> Result<(Tensor, Tensor)> {
        const OP: &str = "neuron_forward";
        let (params, n) = common_params(OP, cfg, x.shape())?;
        let dev = x.device();
        let spikes = Tensor::uninit(dev, x.shape(), OP)?;
        let h = Tensor::uninit(dev, x.shape(), OP)?;
        if x.numel() == 0 {
            return Ok((spikes, h));
        }
        // Non-PLIF kernels never read w; any read-only buffer fills the binding.
        let w = plif_w.unwrap_or(x);
        let pipeline = dev.pipeline("neuron/forward", || {
            include_str!("../shaders/neuron_forward.wgsl").to_string()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[x.buffer(), w.buffer(), spikes.buffer(), h.buffer()],
            dev.linear_grid(n),
        )?;
        Ok((spikes, h))
    }

    fn neuron_backward(
        &self,
        grad_spikes: &Tensor,
        h: &Tensor,
        cfg: &NeuronConfig,
        plif_w: Option<&Tensor>,
    ) -> Result<(Tensor, Option<Tensor>)> {
        const OP: &str = "neuron_backward";
        let (mut params, n) = common_params(OP, cfg, h.shape())?;
        params.extend([
            cfg.detach_reset as u32,
            cfg.surrogate.id(),
            cfg.surrogate.alpha().to_bits(),
        ]);
        let dev = h.device();
        let grad_x = Tensor::uninit(dev, h.shape(), OP)?;
        let plif = plif_w.is_some();
        if h.numel() == 0 {
            let grad_w = if plif {
                Some(Tensor::zeros(dev, &[1])?)
            } else {
                None
            };
            return Ok((grad_x, grad_w));
        }
        // Per-neuron partial sums of ∂L/∂w; a one-value stand-in when not PLIF,
        // since the binding must exist (the kernel does not write it then).
        let partial = Tensor::uninit(dev, &[if plif { n } else { 1 }], OP)?;
        let w = plif_w.unwrap_or(h);
        let pipeline = dev.pipeline("neuron/backward", || {
            include_str!("../shaders/neuron_backward.wgsl").to_string()
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[
                grad_spikes.buffer(),
                h.buffer(),
                w.buffer(),
                grad_x.buffer(),
                partial.buffer(),
            ],
            dev.linear_grid(n),
        )?;
        let grad_w = if plif {
            Some(reduce::sum_all(&partial)?)
        } else {
            None
        };
        Ok((grad_x, grad_w))
    }
}

/// The mean of `spikes` (the fraction of neurons·steps that fired) as a `[1]`
/// tensor, reduced on the device; NaN for an empty tensor.
pub fn firing_rate(spikes: &Tensor) -> Result<Tensor> {
    let flat = spikes.reshape(&[spikes.numel()])?;
    reduce::mean_axes(&flat, &[0], true)
}
