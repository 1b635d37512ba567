//! Fused multi-step IF/LIF/PLIF neurons and their BPTT backward on the CPU:
//! the recurrences of DESIGN §3 in the f32 operation order of
//! neuron_forward.wgsl and neuron_backward.wgsl, so spikes agree bit for bit
//! away from ties and gradients to rounding. (The sigmoid surrogate's
//! exponential is a branch-free polynomial within 3 ulp, so that the
//! backward vectorises; WGSL's exp is itself an approximation.)
//!
//! Tensors are time-major `[T, ...]`: neuron i at step t is element t·n + i.
//! Neurons are cut into chunks of `CHUNK` (each chunk's T row pieces handed
//! to one task), and each task loops over all T steps with the chunk's
//! membrane, or ∂L/∂V in backward, held in a small buffer: one pass over the
//! inputs and outputs, contiguous inner loops over neurons.

use rayon::prelude::*;

use super::conv::avx2_dispatch;

use crate::ops::neuron::{NeuronConfig, NeuronKind, Surrogate};

/// Below this many values (T·n) a loop runs on the calling thread.
const PARALLEL_MIN: usize = 32 * 1024;
/// Neurons per task: their state stays in L1.
const CHUNK: usize = 2048;

/// The kernels' parameters (see `ops::neuron::common_params`). Passed by
/// value into the per-chunk loops, so that they are registers there and not
/// loads that might alias the outputs (which would stop vectorisation).
#[derive(Clone, Copy)]
struct Dynamics {
    /// k = 1/τ, the share of V − V_reset leaked per step (and of X taken,
    /// with decay_input): 1/τ (LIF), sigmoid(w) (PLIF), 0 (IF).
    k: f32,
    /// IF ignores decay_input: it runs as k = 0 without it.
    decay_input: bool,
    plif: bool,
    hard: bool,
    /// V_reset; 0 with soft reset (used in the charge and as V[−1]).
    vr: f32,
    vth: f32,
}

/// σ(z) without overflow, as the shaders compute it: exp of −|z| only.
fn sigmoid(z: f32) -> f32 {
    let e = (-z.abs()).exp();
    if z >= 0.0 {
        1.0 / (1.0 + e)
    } else {
        e / (1.0 + e)
    }
}

impl Dynamics {
    fn new(cfg: &NeuronConfig, plif_w: Option<f32>) -> Dynamics {
        let (k, decay_input, plif) = match cfg.kind {
            NeuronKind::If => (0.0, false, false),
            NeuronKind::Lif { tau } => ((1.0 / tau as f64) as f32, cfg.decay_input, false),
            NeuronKind::Plif => {
                let w = plif_w.expect("a PLIF neuron needs its weight w");
                (sigmoid(w), cfg.decay_input, true)
            }
        };
        Dynamics {
            k,
            decay_input,
            plif,
            hard: cfg.v_reset.is_some(),
            vr: cfg.v_reset.unwrap_or(0.0),
            vth: cfg.v_threshold,
        }
    }

    /// V[t] from H[t]: V_reset where it fired (hard) or H − V_th (soft).
    #[inline(always)]
    fn reset(self, h: f32) -> f32 {
        let fired = h >= self.vth;
        match (fired, self.hard) {
            (false, _) => h,
            (true, true) => self.vr,
            (true, false) => h - self.vth,
        }
    }
}

/// One neuron chunk's pieces of a `[T, n]` buffer, one per step.
type Steps<'a> = Vec<&'a [f32]>;
/// [`Steps`] of a buffer being written.
type StepsMut<'a> = Vec<&'a mut [f32]>;

/// The T row pieces of each neuron chunk of a `[T, n]` buffer: entry j holds
/// rows 0..T of neurons j·CHUNK.. (so that a task can own them mutably).
fn chunks_by_neuron_mut(buf: &mut [f32], n: usize) -> Vec<StepsMut<'_>> {
    let steps = buf.len() / n;
    let mut out: Vec<StepsMut> = (0..n.div_ceil(CHUNK))
        .map(|_| Vec::with_capacity(steps))
        .collect();
    for row in buf.chunks_mut(n) {
        for (j, piece) in row.chunks_mut(CHUNK).enumerate() {
            out[j].push(piece);
        }
    }
    out
}

/// [`chunks_by_neuron_mut`] for a read-only buffer.
fn chunks_by_neuron(buf: &[f32], n: usize) -> Vec<Steps<'_>> {
    let steps = buf.len() / n;
    let mut out: Vec<Steps> = (0..n.div_ceil(CHUNK))
        .map(|_| Vec::with_capacity(steps))
        .collect();
    for row in buf.chunks(n) {
        for (j, piece) in row.chunks(CHUNK).enumerate() {
            out[j].push(piece);
        }
    }
    out
}

/// Number of neurons of a `[T, ...]` shape.
fn neurons(shape: &[usize]) -> usize {
    shape[1..].iter().product()
}

/// Runs all T steps of the neuron on `x` `[T, ...]`. Returns the spikes S
/// (1 where H ≥ V_th, else 0) and the membrane H after the charge and before
/// fire/reset, both shaped like `x`. With V[−1] = V_reset:
/// H = V + (X − (V − V_reset))·k (decay_input) or V − (V − V_reset)·k + X,
/// then V = V_reset (hard) or H − V_th (soft) where S = 1, else H.
/// `plif_w` is PLIF's scalar weight (k = sigmoid(w)), `None` otherwise.
pub fn neuron_forward(
    x: &[f32],
    shape: &[usize],
    cfg: &NeuronConfig,
    plif_w: Option<f32>,
) -> (Vec<f32>, Vec<f32>) {
    let mut spikes = crate::cpu::buffers::scratch(x.len());
    let mut h_out = crate::cpu::buffers::scratch(x.len());
    let n = neurons(shape);
    if x.is_empty() {
        return (spikes, h_out);
    }
    let p = Dynamics::new(cfg, plif_w);
    let task = |((xs, ss), hs): ((Steps, StepsMut), StepsMut)| forward_chunk(p, xs, ss, hs);
    let parts = chunks_by_neuron(x, n)
        .into_iter()
        .zip(chunks_by_neuron_mut(&mut spikes, n))
        .zip(chunks_by_neuron_mut(&mut h_out, n));
    if x.len() >= PARALLEL_MIN {
        parts.collect::<Vec<_>>().into_par_iter().for_each(task);
    } else {
        parts.for_each(task);
    }
    (spikes, h_out)
}

/// e^x for x ≤ 0, to within 3 ulp, without branches or library calls so
/// that loops over it vectorise (libm's expf took most of the backward's
/// time). x = k·ln2 + r with |r| ≤ ln2/2 (Cody–Waite: ln2 split into a high
/// part, exact in k·ln2_hi, and a low part), e^r by its Taylor series to r⁷
/// (truncation < 1.2e-8·e^r), and 2^k put in the exponent bits. Arguments
/// below −87 give e^−87 ≈ 1.6e−38, where 2^k is still a normal number.
#[inline(always)]
fn exp_nonpositive(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    // 1.5·2²³: adding it rounds x·log2(e) to an integer k, which then sits
    // in the low mantissa bits of the sum; subtracting it gives k as f32.
    const ROUND: f32 = 12_582_912.0;
    let x = if x > -87.0 { x } else { -87.0 };
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let k = t - ROUND;
    let r = (x - k * LN2_HI) - k * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = p * r + c;
    }
    // (k + 127) << 23 is 2^k; the high bits of t's representation shift out.
    p * f32::from_bits(t.to_bits().wrapping_add(127) << 23)
}

avx2_dispatch! {
    /// [`neuron_forward`] over one chunk of neurons: X, S and H by step.
    fn forward_chunk => forward_steps(p: Dynamics, xs: Steps, ss: StepsMut, hs: StepsMut)
}

#[inline(always)]
fn forward_steps(p: Dynamics, xs: Steps, ss: StepsMut, hs: StepsMut) {
    let mut v = vec![p.vr; xs[0].len()];
    for ((xt, st), ht) in xs.into_iter().zip(ss).zip(hs) {
        let steps = v.iter_mut().zip(xt).zip(st.iter_mut()).zip(ht.iter_mut());
        for (((v, &x), s), h_slot) in steps {
            let h = if p.decay_input {
                *v + (x - (*v - p.vr)) * p.k
            } else {
                *v - (*v - p.vr) * p.k + x
            };
            *s = if h >= p.vth { 1.0 } else { 0.0 };
            *h_slot = h;
            *v = p.reset(h);
        }
    }
}

/// g'(x) = α·σ(αx)(1 − σ(αx)) = α·e/(1 + e)² with e = exp(−|αx|).
#[inline(always)]
fn sigmoid_grad(a: f32, x: f32) -> f32 {
    let e = exp_nonpositive(-(a * x).abs());
    let d = 1.0 + e;
    a * e / (d * d)
}

/// g'(x) = α / (2(1 + (π/2·α·x)²)).
#[inline(always)]
fn atan_grad(a: f32, x: f32) -> f32 {
    let u = std::f32::consts::FRAC_PI_2 * a * x;
    a / (2.0 * (1.0 + u * u))
}

/// g'(x) = max(α − α²|x|, 0), which is α − α²|x| exactly where |x| ≤ 1/α.
#[inline(always)]
fn triangle_grad(a: f32, x: f32) -> f32 {
    (a - a * a * x.abs()).max(0.0)
}

/// BPTT through all T steps, from the spikes' gradient and the H saved by
/// [`neuron_forward`] (same `cfg` and `plif_w`). Returns ∂L/∂X and, for PLIF,
/// ∂L/∂w. From t = T−1 down to 0, with g_V = ∂L/∂V[t] (0 after the last
/// step), sg = g'(H − V_th), S = Θ(H − V_th) and D = detach_reset:
/// hard: g_H = g_S·sg + g_V·(1 − S) + (1 − D)·g_V·(V_reset − H)·sg;
/// soft: g_H = g_S·sg + g_V − (1 − D)·V_th·g_V·sg;
/// g_X = g_H·k (decay_input) or g_H, g_V ← g_H·(1 − k); V[t−1] is rebuilt
/// from H[t−1]. PLIF adds g_H·(1 − k)·(H − V[t−1]) with decay_input
/// (= g_H·k(1 − k)·(X − (V[t−1] − V_reset)), X not being saved) or
/// g_H·k(1 − k)·(V_reset − V[t−1]) without.
pub fn neuron_backward(
    grad_spikes: &[f32],
    h: &[f32],
    shape: &[usize],
    cfg: &NeuronConfig,
    plif_w: Option<f32>,
) -> (Vec<f32>, Option<f32>) {
    let p = Dynamics::new(cfg, plif_w);
    let detach = cfg.detach_reset;
    match cfg.surrogate {
        Surrogate::Sigmoid { alpha } => backward_with(grad_spikes, h, shape, &p, detach, |x| {
            sigmoid_grad(alpha, x)
        }),
        Surrogate::Atan { alpha } => {
            backward_with(grad_spikes, h, shape, &p, detach, |x| atan_grad(alpha, x))
        }
        Surrogate::Triangle { alpha } => backward_with(grad_spikes, h, shape, &p, detach, |x| {
            triangle_grad(alpha, x)
        }),
    }
}

/// [`neuron_backward`] over one chunk of neurons: g_S, H and g_X by step.
/// Returns the chunk's Σ ∂L/∂w (PLIF; else 0): per neuron in f32 over t like
/// the shader, then over the chunk's neurons in f64.
fn backward_chunk<G: Fn(f32) -> f32>(
    p: Dynamics,
    detach_reset: bool,
    surrogate: G,
    gs: Steps,
    hs: Steps,
    gxs: StepsMut,
) -> f64 {
    // `avx2_dispatch!` takes no generic kernels: the same dispatch written out.
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2() {
        #[target_feature(enable = "avx,avx2")]
        unsafe fn avx2<G: Fn(f32) -> f32>(
            p: Dynamics,
            detach_reset: bool,
            surrogate: G,
            gs: Steps,
            hs: Steps,
            gxs: StepsMut,
        ) -> f64 {
            backward_steps(p, detach_reset, surrogate, gs, hs, gxs)
        }
        // SAFETY: the CPU has the features `avx2` is compiled for.
        return unsafe { avx2(p, detach_reset, surrogate, gs, hs, gxs) };
    }
    backward_steps(p, detach_reset, surrogate, gs, hs, gxs)
}

#[inline(always)]
fn backward_steps<G: Fn(f32) -> f32>(
    p: Dynamics,
    detach_reset: bool,
    surrogate: G,
    gs: Steps,
    hs: Steps,
    gxs: StepsMut,
) -> f64 {
    let k = p.k;
    // ∂H[t]/∂X[t] and ∂H[t]/∂V[t−1] (IF: k = 0 without decay_input).
    let dh_dx = if p.decay_input { k } else { 1.0 };
    let dh_dv = 1.0 - k;
    // 1 − D: whether the gradient flows through the reset's dependence on S.
    let through_reset = if detach_reset { 0.0 } else { 1.0 };
    // g_H at one neuron and step from g_S, H and g_V = ∂L/∂V[t].
    let grad_h = |gs: f32, h: f32, gv: f32| -> f32 {
        let s = if h >= p.vth { 1.0 } else { 0.0 };
        let sg = surrogate(h - p.vth);
        let gh = gs * sg;
        if p.hard {
            gh + (gv * (1.0 - s) + through_reset * gv * (p.vr - h) * sg)
        } else {
            gh + (gv - through_reset * p.vth * gv * sg)
        }
    };
    // PLIF's g_H·∂H[t]/∂w from H[t] and V[t−1] (see neuron_backward).
    let grad_w_term = |gh: f32, h: f32, v_prev: f32| -> f32 {
        if p.decay_input {
            gh * (1.0 - k) * (h - v_prev)
        } else {
            gh * k * (1.0 - k) * (p.vr - v_prev)
        }
    };
    let len = hs[0].len();
    let mut gv = crate::cpu::buffers::zeroed(len);
    let mut gw = crate::cpu::buffers::zeroed(if p.plif { len } else { 0 });
    for (t, gxt) in gxs.into_iter().enumerate().rev() {
        let steps = gs[t]
            .iter()
            .zip(hs[t])
            .zip(gxt.iter_mut())
            .zip(gv.iter_mut());
        if !p.plif {
            for (((&g_s, &h), gx), g_v) in steps {
                let gh = grad_h(g_s, h, *g_v);
                *gx = gh * dh_dx;
                *g_v = gh * dh_dv;
            }
        } else if t > 0 {
            for ((((&g_s, &h), gx), g_v), (gw, &h_prev)) in steps.zip(gw.iter_mut().zip(hs[t - 1]))
            {
                let gh = grad_h(g_s, h, *g_v);
                *gx = gh * dh_dx;
                *g_v = gh * dh_dv;
                *gw += grad_w_term(gh, h, p.reset(h_prev));
            }
        } else {
            for ((((&g_s, &h), gx), g_v), gw) in steps.zip(gw.iter_mut()) {
                let gh = grad_h(g_s, h, *g_v);
                *gx = gh * dh_dx;
                *g_v = gh * dh_dv;
                *gw += grad_w_term(gh, h, p.vr);
            }
        }
    }
    gw.iter().map(|&v| v as f64).sum()
}

/// [`neuron_backward`] for one surrogate, monomorphised so the inner loop
/// calls it directly.
fn backward_with<G>(
    grad_spikes: &[f32],
    h: &[f32],
    shape: &[usize],
    p: &Dynamics,
    detach_reset: bool,
    surrogate: G,
) -> (Vec<f32>, Option<f32>)
where
    G: Fn(f32) -> f32 + Sync + Copy,
{
    let mut grad_x = crate::cpu::buffers::scratch(h.len());
    let n = neurons(shape);
    if h.is_empty() {
        return (grad_x, p.plif.then_some(0.0));
    }
    let task = |((gs, hs), gxs): ((Steps, Steps), StepsMut)| {
        backward_chunk(*p, detach_reset, surrogate, gs, hs, gxs)
    };
    let parts = chunks_by_neuron(grad_spikes, n)
        .into_iter()
        .zip(chunks_by_neuron(h, n))
        .zip(chunks_by_neuron_mut(&mut grad_x, n));
    let sums: Vec<f64> = if h.len() >= PARALLEL_MIN {
        parts
            .collect::<Vec<_>>()
            .into_par_iter()
            .map(task)
            .collect()
    } else {
        parts.map(task).collect()
    };
    let grad_w = p.plif.then(|| sums.iter().sum::<f64>() as f32);
    (grad_x, grad_w)
}

#[cfg(test)]
mod tests {
    use super::exp_nonpositive;

    /// Within 3 ulp (relative 3·2⁻²³) of e^x over [−87, 0], and 0 from the
    /// sigmoid surrogate's view far below.
    #[test]
    fn exp_nonpositive_matches_f64() {
        let mut worst = 0f64;
        for i in 0..=1_000_000 {
            let x = -87.0 * i as f32 / 1e6;
            let want = (x as f64).exp();
            worst = worst.max((exp_nonpositive(x) as f64 - want).abs() / want);
        }
        assert!(worst < 3.0 * f32::EPSILON as f64, "relative error {worst}");
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1e30) < 1e-37);
    }
}
