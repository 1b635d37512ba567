//! The fused spiking-neuron kernels against f64 CPU references of DESIGN §3
//! written here (forward recurrence and BPTT), hand-derived golden cases,
//! exact-threshold ties, the firing rate, and argument errors.

mod common;

use common::{assert_close, data, device};
use spikeir_core::ops::neuron::{
    firing_rate, neuron_backward, neuron_forward, NeuronConfig, NeuronKind, Surrogate,
};
use spikeir_core::{Error, Tensor};

fn tensor(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(&device(), values, shape).unwrap()
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

use common::neuron_cfg as cfg;

/// PLIF's weight as a device tensor, when the kind needs one.
fn plif_weight(kind: NeuronKind, w: f32) -> Option<Tensor> {
    (kind == NeuronKind::Plif).then(|| tensor(&[w], &[1]))
}

// ------------------------------------------------------------ CPU reference

/// The reference's view of a config, in f64.
struct Ref {
    is_if: bool,
    /// 1/τ (LIF) or sigmoid(w) (PLIF).
    k: f64,
    v_th: f64,
    hard: bool,
    /// V_reset; 0 for soft reset (DESIGN §3: used in the charge and as V[−1]).
    vr: f64,
    decay_input: bool,
    detach: bool,
    surrogate: Surrogate,
}

impl Ref {
    fn new(c: &NeuronConfig, w: f32) -> Ref {
        let (is_if, k) = match c.kind {
            NeuronKind::If => (true, 0.0),
            NeuronKind::Lif { tau } => (false, 1.0 / tau as f64),
            NeuronKind::Plif => (false, 1.0 / (1.0 + (-(w as f64)).exp())),
        };
        Ref {
            is_if,
            k,
            v_th: c.v_threshold as f64,
            hard: c.v_reset.is_some(),
            vr: c.v_reset.unwrap_or(0.0) as f64,
            decay_input: c.decay_input,
            detach: c.detach_reset,
            surrogate: c.surrogate,
        }
    }

    fn charge(&self, v: f64, x: f64) -> f64 {
        if self.is_if {
            v + x
        } else if self.decay_input {
            v + (x - (v - self.vr)) * self.k
        } else {
            v - (v - self.vr) * self.k + x
        }
    }

    fn fire(&self, h: f64) -> f64 {
        if h >= self.v_th {
            1.0
        } else {
            0.0
        }
    }

    fn reset(&self, h: f64) -> f64 {
        let s = self.fire(h);
        if self.hard {
            h * (1.0 - s) + self.vr * s
        } else {
            h - self.v_th * s
        }
    }

    fn surrogate_grad(&self, x: f64) -> f64 {
        match self.surrogate {
            Surrogate::Sigmoid { alpha } => {
                let a = alpha as f64;
                let s = 1.0 / (1.0 + (-a * x).exp());
                a * s * (1.0 - s)
            }
            Surrogate::Atan { alpha } => {
                let a = alpha as f64;
                let u = std::f64::consts::FRAC_PI_2 * a * x;
                a / (2.0 * (1.0 + u * u))
            }
            Surrogate::Triangle { alpha } => {
                let a = alpha as f64;
                if x.abs() <= 1.0 / a {
                    a - a * a * x.abs()
                } else {
                    0.0
                }
            }
        }
    }

    /// (S, H) of the recurrence for `x` `[steps, n]`.
    fn forward(&self, x: &[f64], steps: usize) -> (Vec<f64>, Vec<f64>) {
        let n = x.len() / steps;
        let mut s = vec![0.0; x.len()];
        let mut h = vec![0.0; x.len()];
        for i in 0..n {
            let mut v = self.vr;
            for t in 0..steps {
                let j = t * n + i;
                h[j] = self.charge(v, x[j]);
                s[j] = self.fire(h[j]);
                v = self.reset(h[j]);
            }
        }
        (s, h)
    }

    /// BPTT from the saved H (and X, which DESIGN's ∂H/∂k uses): ∂L/∂X,
    /// ∂L/∂w and Σ|terms of ∂L/∂w| (the scale of its rounding error).
    fn backward(&self, gs: &[f64], h: &[f64], x: &[f64], steps: usize) -> (Vec<f64>, f64, f64) {
        let n = h.len() / steps;
        let d = if self.detach { 1.0 } else { 0.0 };
        let mut gx = vec![0.0; h.len()];
        let mut gw = 0.0;
        let mut gw_abs = 0.0;
        for i in 0..n {
            let mut gv = 0.0;
            for t in (0..steps).rev() {
                let j = t * n + i;
                let s = self.fire(h[j]);
                let sg = self.surrogate_grad(h[j] - self.v_th);
                let gh = if self.hard {
                    gs[j] * sg + gv * (1.0 - s) + (1.0 - d) * gv * (self.vr - h[j]) * sg
                } else {
                    gs[j] * sg + gv - (1.0 - d) * self.v_th * gv * sg
                };
                gx[j] = if self.decay_input && !self.is_if {
                    gh * self.k
                } else {
                    gh
                };
                let v_prev = if t == 0 {
                    self.vr
                } else {
                    self.reset(h[j - n])
                };
                let dh_dk = if self.decay_input {
                    x[j] - (v_prev - self.vr)
                } else {
                    -(v_prev - self.vr)
                };
                let term = gh * self.k * (1.0 - self.k) * dh_dk;
                gw += term;
                gw_abs += term.abs();
                gv = if self.is_if { gh } else { gh * (1.0 - self.k) };
            }
        }
        (gx, gw, gw_abs)
    }
}

/// Inputs on a 1/16 grid in [−0.75, 1.25]: with V_th = 0.5, τ = 2 and V_reset
/// 0 every IF/LIF value is a short dyadic fraction, exact in f32, so the GPU
/// and the f64 reference agree bit for bit and many H land exactly on V_th.
fn grid_input(seed: u64, len: usize) -> Vec<f32> {
    data(seed, len)
        .into_iter()
        .map(|d| (d * 16.0).round() / 16.0 + 0.25)
        .collect()
}

const KINDS: [NeuronKind; 3] = [
    NeuronKind::If,
    NeuronKind::Lif { tau: 2.0 },
    NeuronKind::Plif,
];
const RESETS: [Option<f32>; 3] = [Some(0.0), Some(-0.1), None];
const PLIF_W: f32 = 0.3;

// ------------------------------------------------------------------ forward

#[test]
fn forward_matches_the_reference_for_every_configuration() {
    let v_th = 0.5f32;
    let mut exact_ties = 0;
    let mut runs = 0;
    for (ki, &kind) in KINDS.iter().enumerate() {
        for (ri, &v_reset) in RESETS.iter().enumerate() {
            for decay_input in [true, false] {
                for steps in [1usize, 4, 8] {
                    let c = cfg(kind, v_th, v_reset, decay_input);
                    let shape = [steps, 2, 3, 23];
                    let n = 2 * 3 * 23;
                    let x = grid_input((ki * 100 + ri * 10 + steps) as u64, steps * n);
                    let w = plif_weight(kind, PLIF_W);
                    let (s, h) = neuron_forward(&tensor(&x, &shape), &c, w.as_ref()).unwrap();
                    assert_eq!(s.shape(), shape);
                    assert_eq!(h.shape(), shape);
                    let (s, h) = (s.to_vec().unwrap(), h.to_vec().unwrap());
                    let r = Ref::new(&c, PLIF_W);
                    let (s_ref, h_ref) = r.forward(&to64(&x), steps);
                    let what = format!("{c:?} T={steps}");

                    // Exact in f32 (see grid_input): every value must match.
                    let exact = kind != NeuronKind::Plif && v_reset != Some(-0.1);
                    let tol = if exact { 0.0 } else { 1e-5 };
                    // Otherwise the GPU rounds: where the reference's H lies
                    // within 1e-5 of V_th either spike decision is right, and
                    // after a differing one the neuron's later steps differ
                    // too, so the rest of that neuron is skipped (rarely).
                    let mut skipped = 0;
                    for i in 0..n {
                        for t in 0..steps {
                            let j = t * n + i;
                            exact_ties += (exact && h_ref[j] == r.v_th) as usize;
                            let near = (h_ref[j] - r.v_th).abs() < 1e-5;
                            if !exact && near && s[j] as f64 != s_ref[j] {
                                skipped += 1;
                                break;
                            }
                            let at = format!("{what} t={t} neuron {i}");
                            assert_close(
                                &s[j..j + 1],
                                &s_ref[j..j + 1],
                                0.0,
                                0.0,
                                &format!("S {at}"),
                            );
                            assert_close(
                                &h[j..j + 1],
                                &h_ref[j..j + 1],
                                tol,
                                tol,
                                &format!("H {at}"),
                            );
                        }
                    }
                    assert!(
                        skipped * 50 <= n,
                        "{what}: {skipped} of {n} neurons near the threshold"
                    );
                    runs += 1;
                }
            }
        }
    }
    assert_eq!(runs, 54);
    // The exact configurations must have exercised H == V_th (which fires).
    assert!(
        exact_ties > 20,
        "only {exact_ties} exact threshold ties were tested"
    );
}

#[test]
fn membrane_exactly_on_the_threshold_fires() {
    // IF, V_th = 0.5, hard reset to 0, one neuron, x = [0.5, 0.25, 0.25, 0.5]:
    // H0 = 0 + 0.5 = 0.5 ≥ 0.5 → S0 = 1, V0 = 0; H1 = 0.25 → S1 = 0, V1 = 0.25;
    // H2 = 0.25 + 0.25 = 0.5 → S2 = 1, V2 = 0; H3 = 0.5 → S3 = 1.
    let c = cfg(NeuronKind::If, 0.5, Some(0.0), false);
    let (s, h) = neuron_forward(&tensor(&[0.5, 0.25, 0.25, 0.5], &[4]), &c, None).unwrap();
    assert_eq!(s.to_vec().unwrap(), [1.0, 0.0, 1.0, 1.0]);
    assert_eq!(h.to_vec().unwrap(), [0.5, 0.25, 0.5, 0.5]);

    // LIF τ = 2 with decay_input, V_th = 0.5, hard reset to 0, x = [1, 0.5, 0.75]:
    // H0 = 0 + (1 − 0)/2 = 0.5 → S0 = 1, V0 = 0; H1 = 0 + 0.5/2 = 0.25 → S1 = 0;
    // H2 = 0.25 + (0.75 − 0.25)/2 = 0.5 → S2 = 1.
    let c = cfg(NeuronKind::Lif { tau: 2.0 }, 0.5, Some(0.0), true);
    let (s, h) = neuron_forward(&tensor(&[1.0, 0.5, 0.75], &[3, 1]), &c, None).unwrap();
    assert_eq!(s.to_vec().unwrap(), [1.0, 0.0, 1.0]);
    assert_eq!(h.to_vec().unwrap(), [0.5, 0.25, 0.5]);

    // Soft reset, IF, V_th = 0.5, x = [0.75, 0.25]: H0 = 0.75 → S0 = 1,
    // V0 = 0.75 − 0.5 = 0.25; H1 = 0.25 + 0.25 = 0.5 → S1 = 1.
    let c = cfg(NeuronKind::If, 0.5, None, false);
    let (s, h) = neuron_forward(&tensor(&[0.75, 0.25], &[2, 1, 1]), &c, None).unwrap();
    assert_eq!(s.to_vec().unwrap(), [1.0, 1.0]);
    assert_eq!(h.to_vec().unwrap(), [0.75, 0.5]);
}

// The golden case: LIF τ = 2 (k = 1/2), V_th = 1, decay_input = false, hard
// reset to 0, one neuron, X = [0.6, 0.6, 0.6].
// Forward, H[t] = V[t−1] − V[t−1]/2 + X[t]:
//   H0 = 0 − 0 + 0.6 = 0.6 → S0 = 0, V0 = 0.6
//   H1 = 0.6 − 0.3 + 0.6 = 0.9 → S1 = 0, V1 = 0.9
//   H2 = 0.9 − 0.45 + 0.6 = 1.05 → S2 = 1, V2 = 0
// Backward for grad_S = [0.25, 0.5, 1], sigmoid surrogate α = 4,
// sg(x) = 4σ(4x)(1 − σ(4x)), reset not detached, g_X = g_H, g_V ← g_H/2:
//   t = 2: x = 0.05, σ(0.2) = 0.549833997, sg = 0.990066291;
//          g_H = 1·sg + 0 = 0.990066291, g_V = 0.495033145
//   t = 1: x = −0.1, σ(−0.4) = 0.401312340, sg = 0.961042983, S = 0;
//          g_H = 0.5·sg + g_V·1 + g_V·(0 − 0.9)·sg
//              = 0.480521491 + 0.495033145 − 0.428173318 = 0.547381319,
//          g_V = 0.273690660
//   t = 0: x = −0.4, σ(−1.6) = 0.167981615, sg = 0.559055168;
//          g_H = 0.25·sg + g_V − g_V·0.6·sg
//              = 0.139763792 + 0.273690660 − 0.091804907 = 0.321649545
// PLIF with w = 0 has k = σ(0) = 1/2, the same forward and g_X, and
// g_w = Σ g_H·k(1 − k)·(−V[t−1]) = −¼·(0.9·0.990066291 + 0.6·0.547381319 + 0)
//     = −0.304872113.
#[test]
fn golden_lif_case() {
    let x = tensor(&[0.6, 0.6, 0.6], &[3, 1]);
    let gs = tensor(&[0.25, 0.5, 1.0], &[3, 1]);
    let want_gx = [0.321649545, 0.547381319, 0.990066291];
    for (kind, w) in [
        (NeuronKind::Lif { tau: 2.0 }, None),
        (NeuronKind::Plif, Some(tensor(&[0.0], &[1]))),
    ] {
        let c = cfg(kind, 1.0, Some(0.0), false);
        let (s, h) = neuron_forward(&x, &c, w.as_ref()).unwrap();
        assert_eq!(s.to_vec().unwrap(), [0.0, 0.0, 1.0], "{kind:?}");
        assert_close(
            &h.to_vec().unwrap(),
            &[0.6, 0.9, 1.05],
            1e-6,
            0.0,
            "golden H",
        );
        let (gx, gw) = neuron_backward(&gs, &h, &c, w.as_ref()).unwrap();
        assert_close(&gx.to_vec().unwrap(), &want_gx, 1e-5, 0.0, "golden grad_x");
        match kind {
            NeuronKind::Plif => {
                let gw = gw.expect("PLIF returns grad_w");
                assert_eq!(gw.shape(), [1]);
                assert_close(
                    &gw.to_vec().unwrap(),
                    &[-0.304872113],
                    1e-5,
                    0.0,
                    "golden grad_w",
                );
            }
            _ => assert!(gw.is_none()),
        }
    }
}

// ----------------------------------------------------------------- backward

/// Relative error ≤ 1e-5, with an absolute floor of 1e-5 times the largest
/// reference entry: an entry far below the gradient's scale is a difference
/// of larger terms and carries their f32 rounding.
fn assert_grad(got: &[f32], want: &[f64], what: &str) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(got, want, 1e-5, 1e-5 * scale + 1e-12, what);
}

/// Runs forward and backward on the GPU and checks the backward against the
/// reference fed the GPU's H (so both take the same spike decisions).
fn check_backward(c: &NeuronConfig, steps: usize, n: usize, seed: u64) {
    let x: Vec<f32> = data(seed, steps * n)
        .into_iter()
        .map(|d| d * 0.8 + 0.3)
        .collect();
    check_backward_on(c, &x, steps, PLIF_W, seed);
}

/// [`check_backward`] for given inputs `[steps, n]` and PLIF weight.
fn check_backward_on(c: &NeuronConfig, x: &[f32], steps: usize, plif_w: f32, seed: u64) {
    let n = x.len() / steps;
    let shape = [steps, n];
    let gs = data(seed + 7, steps * n);
    let w = plif_weight(c.kind, plif_w);
    let (_, h) = neuron_forward(&tensor(x, &shape), c, w.as_ref()).unwrap();
    let (gx, gw) = neuron_backward(&tensor(&gs, &shape), &h, c, w.as_ref()).unwrap();
    assert_eq!(gx.shape(), shape);
    let r = Ref::new(c, plif_w);
    let h = to64(&h.to_vec().unwrap());
    let (gx_ref, gw_ref, gw_abs) = r.backward(&to64(&gs), &h, &to64(x), steps);
    let what = format!("{c:?} T={steps}");
    assert_grad(&gx.to_vec().unwrap(), &gx_ref, &format!("grad_x {what}"));
    match (c.kind, gw) {
        (NeuronKind::Plif, Some(gw)) => {
            assert_eq!(gw.shape(), [1]);
            // A sum of many f32 terms: relative error 1e-5, plus each term's
            // own rounding (1e-6 of it, the kernel rebuilds ∂H/∂k from the
            // difference H − V[t−1]).
            let got = gw.to_vec().unwrap();
            assert_close(
                &got,
                &[gw_ref],
                1e-5,
                1e-6 * gw_abs,
                &format!("grad_w {what}"),
            );
        }
        (NeuronKind::Plif, None) => panic!("{what}: PLIF returned no grad_w"),
        (_, gw) => assert!(gw.is_none(), "{what}: grad_w for a non-PLIF neuron"),
    }
}

#[test]
fn backward_matches_the_reference_for_every_configuration() {
    let surrogates = [
        Surrogate::sigmoid(),
        Surrogate::atan(),
        Surrogate::triangle(),
    ];
    let mut seed = 1000;
    for &kind in &KINDS {
        for &v_reset in &RESETS {
            for decay_input in [true, false] {
                for detach_reset in [false, true] {
                    for &surrogate in &surrogates {
                        let c = NeuronConfig {
                            kind,
                            v_threshold: 0.5,
                            v_reset,
                            decay_input,
                            detach_reset,
                            surrogate,
                        };
                        seed += 1;
                        check_backward(&c, 4, 70, seed);
                        if surrogate == Surrogate::sigmoid() {
                            check_backward(&c, 1, 70, seed);
                            check_backward(&c, 8, 70, seed);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn backward_through_exact_threshold_ties() {
    // grid_input with V_th = 0.5, k = 1/2 (LIF τ = 2, PLIF w = 0) makes many
    // H[t] equal V_th exactly; the backward must treat them as spikes both
    // at step t and when it rebuilds V[t] for PLIF's ∂H[t+1]/∂k.
    for kind in KINDS {
        for v_reset in [Some(0.0), None] {
            for decay_input in [true, false] {
                let c = cfg(kind, 0.5, v_reset, decay_input);
                let x = grid_input(300, 6 * 120);
                let r = Ref::new(&c, 0.0);
                let ties = r
                    .forward(&to64(&x), 6)
                    .1
                    .iter()
                    .filter(|&&h| h == 0.5)
                    .count();
                assert!(ties >= 3, "{c:?}: only {ties} ties");
                check_backward_on(&c, &x, 6, 0.0, 300);
            }
        }
    }
}

#[test]
fn backward_with_other_alphas_tau_and_many_neurons() {
    // Non-default α, a τ whose k = 1/3 is not exact in f32, and enough neurons
    // that PLIF's per-neuron partial sums need a multi-pass device reduction.
    let surrogates = [
        Surrogate::Sigmoid { alpha: 2.5 },
        Surrogate::Atan { alpha: 0.7 },
        Surrogate::Triangle { alpha: 1.8 },
    ];
    for (i, &surrogate) in surrogates.iter().enumerate() {
        for kind in [NeuronKind::Lif { tau: 3.0 }, NeuronKind::Plif] {
            let c = NeuronConfig {
                kind,
                v_threshold: 0.4,
                v_reset: if i == 1 { None } else { Some(-0.2) },
                decay_input: i != 2,
                detach_reset: i == 0,
                surrogate,
            };
            check_backward(&c, 3, 70_001, 50 + i as u64);
        }
    }
}

#[test]
fn tau_one_forgets_the_membrane_every_step() {
    // k = 1: H = V − (V − V_reset) + X = V_reset + X either way, and
    // g_V ← g_H·(1 − k) = 0, so g_X[t] = grad_S[t]·sg(H[t] − V_th).
    let x = [0.3f32, 0.9, -0.2, 0.7, 0.1, 0.6];
    let gs = [1.0f32, -0.5, 0.25, 2.0, 0.75, -1.0];
    for decay_input in [true, false] {
        let c = cfg(NeuronKind::Lif { tau: 1.0 }, 0.5, Some(-0.1), decay_input);
        let (s, h) = neuron_forward(&tensor(&x, &[3, 2]), &c, None).unwrap();
        let want_h: Vec<f64> = x.iter().map(|&v| v as f64 - 0.1).collect();
        let h_got = h.to_vec().unwrap();
        assert_close(&h_got, &want_h, 1e-6, 1e-7, "tau = 1 H");
        let want_s: Vec<f64> = h_got
            .iter()
            .map(|&v| if v >= 0.5 { 1.0 } else { 0.0 })
            .collect();
        assert_close(&s.to_vec().unwrap(), &want_s, 0.0, 0.0, "tau = 1 S");
        let (gx, _) = neuron_backward(&tensor(&gs, &[3, 2]), &h, &c, None).unwrap();
        let want_gx: Vec<f64> = gs
            .iter()
            .zip(&h_got)
            .map(|(&g, &hv)| {
                let sig = 1.0 / (1.0 + (-4.0 * (hv as f64 - 0.5)).exp());
                g as f64 * 4.0 * sig * (1.0 - sig)
            })
            .collect();
        assert_grad(&gx.to_vec().unwrap(), &want_gx, "tau = 1 grad_x");
    }
}

#[test]
fn empty_inputs_dispatch_nothing() {
    let dev = device();
    let c = cfg(NeuronKind::Plif, 0.5, Some(0.0), true);
    let w = tensor(&[0.3], &[1]);
    let x = Tensor::zeros(&dev, &[4, 0, 3]).unwrap();
    let (s, h) = neuron_forward(&x, &c, Some(&w)).unwrap();
    assert_eq!(s.shape(), [4, 0, 3]);
    let (gx, gw) = neuron_backward(&s, &h, &c, Some(&w)).unwrap();
    assert_eq!(gx.shape(), [4, 0, 3]);
    assert_eq!(gw.unwrap().to_vec().unwrap(), [0.0]);
    // The mean of no spikes is undefined.
    assert!(firing_rate(&s).unwrap().to_vec().unwrap()[0].is_nan());
}

// -------------------------------------------------------------- firing rate

#[test]
fn firing_rate_is_the_mean_of_the_spikes() {
    let c = cfg(NeuronKind::Lif { tau: 2.0 }, 0.15, Some(0.0), false);
    let shape = [4, 2, 3, 40, 50];
    let x = data(77, 4 * 2 * 3 * 40 * 50);
    let (s, _) = neuron_forward(&tensor(&x, &shape), &c, None).unwrap();
    let rate = firing_rate(&s).unwrap();
    assert_eq!(rate.shape(), [1]);
    let spikes = s.to_vec().unwrap();
    let mean = spikes.iter().map(|&v| v as f64).sum::<f64>() / spikes.len() as f64;
    assert!(
        mean > 0.05 && mean < 0.95,
        "degenerate test data: rate {mean}"
    );
    assert_close(&rate.to_vec().unwrap(), &[mean], 1e-5, 0.0, "firing rate");

    let few = tensor(&[1.0, 0.0, 0.0, 1.0, 1.0], &[5]);
    assert_close(
        &firing_rate(&few).unwrap().to_vec().unwrap(),
        &[0.6],
        1e-6,
        0.0,
        "rate of 5",
    );
}

// ------------------------------------------------------------------- errors

fn expect_err<T: std::fmt::Debug>(
    r: spikeir_core::Result<T>,
    shape_error: bool,
    op: &str,
    what: &str,
) {
    let e = r.expect_err(what);
    let msg = match (&e, shape_error) {
        (Error::Shape(m), true) | (Error::InvalidArgument(m), false) => m.clone(),
        _ => panic!("{what}: wrong error kind {e:?}"),
    };
    assert!(
        msg.contains(op),
        "{what}: message '{msg}' does not name {op}"
    );
}

#[test]
fn bad_arguments_are_refused() {
    let x = tensor(&[0.1, 0.2, 0.3, 0.4], &[2, 2]);
    let w = tensor(&[0.0], &[1]);
    let base = NeuronConfig::default();
    let fwd = "neuron_forward";

    expect_err(
        neuron_forward(&tensor(&[1.0], &[]), &base, None),
        true,
        fwd,
        "rank 0",
    );

    let plif = NeuronConfig {
        kind: NeuronKind::Plif,
        ..base
    };
    expect_err(
        neuron_forward(&x, &plif, None),
        false,
        fwd,
        "PLIF without w",
    );
    for shape in [&[2][..], &[1, 1]] {
        let bad = Tensor::zeros(&device(), shape).unwrap();
        expect_err(
            neuron_forward(&x, &plif, Some(&bad)),
            true,
            fwd,
            "PLIF w of the wrong shape",
        );
    }
    expect_err(neuron_forward(&x, &base, Some(&w)), false, fwd, "w for LIF");

    for tau in [0.5, 0.0, -2.0, f32::NAN, f32::INFINITY] {
        let c = NeuronConfig {
            kind: NeuronKind::Lif { tau },
            ..base
        };
        expect_err(
            neuron_forward(&x, &c, None),
            false,
            fwd,
            &format!("tau {tau}"),
        );
    }
    for alpha in [0.0, -1.0, f32::NAN] {
        for surrogate in [
            Surrogate::Sigmoid { alpha },
            Surrogate::Atan { alpha },
            Surrogate::Triangle { alpha },
        ] {
            let c = NeuronConfig { surrogate, ..base };
            expect_err(
                neuron_forward(&x, &c, None),
                false,
                fwd,
                &format!("{surrogate:?}"),
            );
        }
    }
    let c = NeuronConfig {
        v_threshold: f32::NAN,
        ..base
    };
    expect_err(neuron_forward(&x, &c, None), false, fwd, "NaN threshold");
    let c = NeuronConfig {
        v_reset: Some(f32::INFINITY),
        ..base
    };
    expect_err(neuron_forward(&x, &c, None), false, fwd, "infinite reset");

    let bwd = "neuron_backward";
    let (_, h) = neuron_forward(&x, &base, None).unwrap();
    let g = tensor(&[1.0; 4], &[4]);
    expect_err(
        neuron_backward(&g, &h, &base, None),
        true,
        bwd,
        "grad/H shape mismatch",
    );
    let c = NeuronConfig {
        surrogate: Surrogate::Atan { alpha: 0.0 },
        ..base
    };
    expect_err(
        neuron_backward(&h, &h, &c, None),
        false,
        bwd,
        "backward alpha 0",
    );
    expect_err(
        neuron_backward(&h, &h, &plif, None),
        false,
        bwd,
        "backward PLIF without w",
    );
    let s = tensor(&[1.0], &[]);
    expect_err(
        neuron_backward(&s, &s, &base, None),
        true,
        bwd,
        "backward rank 0",
    );
}
