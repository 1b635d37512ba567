//! The fused BPTT kernel against an independent path: the same LIF/IF/PLIF
//! recurrence unrolled step by step from the engine's elementwise ops and
//! autograd, whose Heaviside backward is the surrogate. Spikes, input
//! gradients and PLIF's w gradient must agree to 1e-5 relative.

mod common;

use common::{data, device};
use spikeir_core::autograd;
use spikeir_core::functional as f;
use spikeir_core::ops::neuron::{NeuronConfig, NeuronKind, Surrogate};
use spikeir_core::ops::{BinaryOp, UnaryOp};
use spikeir_core::Tensor;

/// The recurrence of DESIGN §3 written with differentiable elementwise ops.
/// Returns the spikes of every step, stacked as [T, n].
fn unrolled(
    x: &Tensor,
    cfg: &NeuronConfig,
    w: Option<&Tensor>,
    t_steps: usize,
    n: usize,
) -> Tensor {
    let dev = x.device();
    let steps = f::split(x, 0, &vec![1; t_steps]).unwrap();
    let v_reset = cfg.v_reset.unwrap_or(0.0);
    let mut v = Tensor::full(dev, &[1, n], v_reset).unwrap();
    // k = 1/τ (LIF), sigmoid(w) (PLIF), unused (IF).
    let k = match (cfg.kind, w) {
        (NeuronKind::Plif, Some(w)) => Some(f::sigmoid(w).unwrap()),
        (NeuronKind::Lif { tau }, _) => Some(Tensor::full(dev, &[1], 1.0 / tau).unwrap()),
        _ => None,
    };
    let mut spikes = Vec::new();
    for xt in &steps {
        let h = match &k {
            None => f::add(&v, xt).unwrap(),
            Some(k) => {
                let leak = f::unary(&v, UnaryOp::SubScalar(v_reset)).unwrap(); // V − V_reset
                if cfg.decay_input {
                    // H = V + (X − (V − V_reset))·k
                    f::add(&v, &f::mul(&f::sub(xt, &leak).unwrap(), k).unwrap()).unwrap()
                } else {
                    // H = V − (V − V_reset)·k + X
                    f::add(&f::sub(&v, &f::mul(&leak, k).unwrap()).unwrap(), xt).unwrap()
                }
            }
        };
        let s = f::heaviside(
            &f::unary(&h, UnaryOp::SubScalar(cfg.v_threshold)).unwrap(),
            cfg.surrogate,
        )
        .unwrap();
        let s_reset = if cfg.detach_reset {
            s.detach()
        } else {
            s.clone()
        };
        v = match cfg.v_reset {
            // V = H·(1 − S) + V_reset·S
            Some(vr) => f::add(
                &f::mul(&h, &f::unary(&s_reset, UnaryOp::RsubScalar(1.0)).unwrap()).unwrap(),
                &f::unary(&s_reset, UnaryOp::MulScalar(vr)).unwrap(),
            )
            .unwrap(),
            // V = H − V_th·S
            None => f::sub(
                &h,
                &f::unary(&s_reset, UnaryOp::MulScalar(cfg.v_threshold)).unwrap(),
            )
            .unwrap(),
        };
        spikes.push(s);
    }
    let refs: Vec<&Tensor> = spikes.iter().collect();
    f::concat(&refs, 0).unwrap()
}

fn rel_close(got: &[f32], want: &[f32], what: &str) {
    let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-5 * w.abs().max(scale),
            "{what}: element {i}: fused {g}, unrolled {w}"
        );
    }
}

#[test]
fn fused_bptt_matches_the_unrolled_recurrence() {
    let dev = device();
    let (t_steps, n) = (6, 257);
    // Inputs on a 1/64 grid between −0.5 and 1.5, offset from the threshold
    // by 1/128 so no membrane lands within rounding of it.
    let xs: Vec<f32> = data(3, t_steps * n)
        .iter()
        .map(|v| ((v + 0.5) * 64.0).round() / 64.0 + 1.0 / 128.0)
        .collect();
    let gs = data(4, t_steps * n);
    let surrogates = [
        Surrogate::sigmoid(),
        Surrogate::atan(),
        Surrogate::triangle(),
    ];
    let kinds = [
        NeuronKind::If,
        NeuronKind::Lif { tau: 2.0 },
        NeuronKind::Plif,
    ];
    for kind in kinds {
        for surrogate in surrogates {
            for v_reset in [Some(0.0), None] {
                for detach_reset in [false, true] {
                    for decay_input in [false, true] {
                        let cfg = NeuronConfig {
                            kind,
                            v_threshold: 0.5,
                            v_reset,
                            decay_input,
                            detach_reset,
                            surrogate,
                        };
                        let what = format!("{cfg:?}");
                        autograd::zero_grad();
                        let x =
                            autograd::param(&Tensor::from_slice(&dev, &xs, &[t_steps, n]).unwrap());
                        let w = (kind == NeuronKind::Plif)
                            .then(|| autograd::param(&Tensor::full(&dev, &[1], 0.3).unwrap()));
                        let g = Tensor::from_slice(&dev, &gs, &[t_steps, n]).unwrap();
                        // Fused kernels.
                        let s_fused = f::neuron(&x, &cfg, w.as_ref()).unwrap();
                        let loss = f::sum_axes(
                            &f::binary(&s_fused, &g, BinaryOp::Mul).unwrap(),
                            &[0, 1],
                            false,
                        )
                        .unwrap();
                        autograd::backward(&loss, None).unwrap();
                        let gx_fused = autograd::grad(&x).unwrap().to_vec().unwrap();
                        let gw_fused = w
                            .as_ref()
                            .map(|w| autograd::grad(w).unwrap().to_vec().unwrap());
                        // Unrolled path.
                        autograd::zero_grad();
                        let s_unrolled = unrolled(&x, &cfg, w.as_ref(), t_steps, n);
                        assert_eq!(
                            s_fused.to_vec().unwrap(),
                            s_unrolled.to_vec().unwrap(),
                            "spikes {what}"
                        );
                        let loss = f::sum_axes(
                            &f::binary(&s_unrolled, &g, BinaryOp::Mul).unwrap(),
                            &[0, 1],
                            false,
                        )
                        .unwrap();
                        autograd::backward(&loss, None).unwrap();
                        rel_close(
                            &gx_fused,
                            &autograd::grad(&x).unwrap().to_vec().unwrap(),
                            &format!("grad x {what}"),
                        );
                        if let (Some(w), Some(gw)) = (&w, gw_fused) {
                            let gw_u = autograd::grad(w).unwrap().to_vec().unwrap();
                            assert!(
                                (gw[0] - gw_u[0]).abs() <= 1e-5 * gw_u[0].abs().max(1e-3),
                                "grad w {what}: {} vs {}",
                                gw[0],
                                gw_u[0]
                            );
                        }
                    }
                }
            }
        }
    }
}
