//! The CPU kernels for norms, losses, spiking neurons and optimizer steps
//! (`spikeir_core::cpu::{norm, loss, neuron, optim}`) against the GPU ops on
//! the same inputs (the GPU ops are verified against f64 references and
//! finite differences in their own tests), plus hand-derived golden values.
//!
//! Shapes have odd sizes and batch > 1; some exceed 32K values so that the
//! CPU kernels take their rayon paths. Each CPU function gets exactly the
//! inputs its GPU counterpart got (e.g. backward gets the GPU's saved
//! statistics), so a mismatch points at that function alone.

mod common;

use common::{assert_close, data, device};
use spikeir_core::cpu;
use spikeir_core::ops::loss::{self, CHARBONNIER_EPS, FFT_LOSS_EPS};
use spikeir_core::ops::neuron::{self, NeuronConfig, NeuronKind, Surrogate};
use spikeir_core::ops::norm;
use spikeir_core::optim::{self, AdamConfig};
use spikeir_core::Tensor;

/// Relative tolerance of CPU against GPU.
const RTOL: f64 = 1e-5;

fn gpu(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(&device(), values, shape).unwrap()
}

fn read(t: &Tensor) -> Vec<f32> {
    t.to_vec().unwrap()
}

/// CPU values against GPU values at `rtol`, with an absolute floor of `rtol`
/// times `scale`.
fn assert_matches_at(cpu: &[f32], gpu: &[f32], rtol: f64, scale: f64, what: &str) {
    let want: Vec<f64> = gpu.iter().map(|&v| v as f64).collect();
    assert_close(cpu, &want, rtol, rtol * scale + 1e-30, what);
}

/// [`assert_matches_at`] scaled by the largest GPU entry: entries far below
/// the output's scale carry the rounding error of the larger terms they are
/// differences of.
fn assert_matches(cpu: &[f32], gpu: &[f32], rtol: f64, what: &str) {
    let scale = gpu.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    assert_matches_at(cpu, gpu, rtol, scale, what);
}

/// max |v|.
fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs() as f64))
}

/// `data(seed, n)` mapped to offset + spread·u, u uniform in [−1, 1).
fn values(seed: u64, n: usize, offset: f32, spread: f32) -> Vec<f32> {
    data(seed, n)
        .into_iter()
        .map(|u| offset + spread * u)
        .collect()
}

/// A few shapes `[N, C, ...]` drawn from `seed`: N in 2..=4, odd C, odd
/// spatial sizes, rank 2 to 5.
fn random_shapes(seed: u64) -> Vec<Vec<usize>> {
    let u = data(seed, 32);
    let mut next = u.iter().map(|&v| ((v + 1.0) * 0.5 * 1000.0) as usize);
    let mut pick = |lo: usize, hi: usize| lo + next.next().unwrap() % (hi - lo + 1);
    (2..=5)
        .map(|rank| {
            let mut s = vec![pick(2, 4), 2 * pick(0, 3) + 1];
            for _ in 2..rank {
                s.push(2 * pick(0, 5) + 1);
            }
            s
        })
        .collect()
}

/// Fixed shapes with odd sizes, `[N, C]`, and two above 32K values (one with
/// rows hw ≥ 16K, split into pieces), then the random ones.
fn norm_shapes() -> Vec<Vec<usize>> {
    let mut shapes = vec![
        vec![3, 5, 7, 9],
        vec![4, 3],
        vec![2, 7, 11],
        vec![3, 3, 67, 61],
        vec![2, 2, 129, 131],
    ];
    shapes.extend(random_shapes(7));
    shapes
}

// ---------------------------------------------------------------- batch norm

#[test]
fn batch_norm_train_eval_backward_match_gpu() {
    for (si, shape) in norm_shapes().iter().enumerate() {
        let seed = 100 + si as u64 * 10;
        let numel: usize = shape.iter().product();
        let c = shape[1];
        // An offset well above the spread checks the variance's numerics.
        let x = values(seed, numel, if si % 2 == 0 { 0.0 } else { 10.0 }, 2.0);
        let w = values(seed + 1, c, 1.0, 0.5);
        let b = values(seed + 2, c, 0.0, 1.0);
        let g = values(seed + 3, numel, 0.0, 1.0);
        let eps = 1e-5;
        let what = format!("batch norm {shape:?}");

        let (xt, wt, bt) = (gpu(&x, shape), gpu(&w, &[c]), gpu(&b, &[c]));
        let (y_g, mean_g, inv_g) = norm::batch_norm_train(&xt, &wt, &bt, eps).unwrap();
        let (y, mean, inv) = cpu::norm::batch_norm_train(&x, shape, &w, &b, eps);
        // A mean's rounding scales with the values averaged, not with the mean.
        let (mean_gpu, scale) = (read(&mean_g), max_abs(&x));
        assert_matches_at(&mean, &mean_gpu, RTOL, scale, &format!("{what}: mean"));
        assert_matches(&inv, &read(&inv_g), RTOL, &format!("{what}: invstd"));
        assert_matches(&y, &read(&y_g), RTOL, &format!("{what}: y"));

        let (mean_g, inv_g) = (read(&mean_g), read(&inv_g));
        let (gx_g, gw_g, gb_g) = norm::batch_norm_backward(
            &gpu(&g, shape),
            &xt,
            &wt,
            &gpu(&mean_g, &[c]),
            &gpu(&inv_g, &[c]),
        )
        .unwrap();
        let (gx, gw, gb) = cpu::norm::batch_norm_backward(&g, &x, shape, &w, &mean_g, &inv_g);
        assert_matches(&gx, &read(&gx_g), RTOL, &format!("{what}: grad_x"));
        assert_matches(&gw, &read(&gw_g), RTOL, &format!("{what}: grad_weight"));
        assert_matches(&gb, &read(&gb_g), RTOL, &format!("{what}: grad_bias"));

        let rm = values(seed + 4, c, 0.0, 1.0);
        let rv = values(seed + 5, c, 1.0, 0.5);
        let y_g =
            norm::batch_norm_eval(&xt, &gpu(&rm, &[c]), &gpu(&rv, &[c]), &wt, &bt, eps).unwrap();
        let y = cpu::norm::batch_norm_eval(&x, shape, &rm, &rv, &w, &b, eps);
        assert_matches(&y, &read(&y_g), RTOL, &format!("{what}: eval y"));
    }
}

/// Batch statistics where sample 0 sits far from the others (the values
/// the kernel centres its sums on), against a two-pass f64 reference: the
/// mean must come back from the shifted sums and the variance must not
/// cancel.
#[test]
fn batch_norm_statistics_with_an_outlying_first_sample() {
    let shape = [5usize, 3, 41];
    let (n, c, hw) = (shape[0], shape[1], shape[2]);
    let u = values(61, n * c * hw, 0.0, 0.5);
    // Sample 0 at +1000, the others near channel offsets 0, 1, 2.
    let x: Vec<f32> = u
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let (s, ch) = (i / (c * hw), (i / hw) % c);
            v + ch as f32 + if s == 0 { 1000.0 } else { 0.0 }
        })
        .collect();
    let (w, b) = (vec![1.0f32; c], vec![0.0f32; c]);
    let eps = 1e-5;
    let (_, mean, invstd) = cpu::norm::batch_norm_train(&x, &shape, &w, &b, eps);
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|s| x[(s * c + ch) * hw..][..hw].iter().map(|&v| v as f64))
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let var = vals.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / vals.len() as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        assert!(
            (mean[ch] as f64 - m).abs() <= 1e-6 * m.abs(),
            "channel {ch}: mean {} against {m}",
            mean[ch]
        );
        assert!(
            (invstd[ch] as f64 - inv).abs() <= 1e-6 * inv,
            "channel {ch}: invstd {} against {inv}",
            invstd[ch]
        );
    }
}

#[test]
fn batch_norm_update_running_matches_gpu() {
    let c = 37;
    let mean = values(1, c, 0.0, 2.0);
    let invstd = values(2, c, 2.0, 1.5);
    let (rm0, rv0) = (values(3, c, 0.0, 1.0), values(4, c, 1.0, 0.5));
    for (count, momentum, eps) in [(2, 0.1, 1e-5), (945, 0.3, 1e-3), (10_000, 1.0, 0.0)] {
        let (rm_g, rv_g) = (gpu(&rm0, &[c]), gpu(&rv0, &[c]));
        norm::batch_norm_update_running(
            &rm_g,
            &rv_g,
            &gpu(&mean, &[c]),
            &gpu(&invstd, &[c]),
            count,
            momentum,
            eps,
        )
        .unwrap();
        let (mut rm, mut rv) = (rm0.clone(), rv0.clone());
        cpu::norm::batch_norm_update_running(
            &mut rm, &mut rv, &mean, &invstd, count, momentum, eps,
        );
        let what = format!("running stats count {count} momentum {momentum}");
        assert_matches(&rm, &read(&rm_g), RTOL, &format!("{what}: mean"));
        assert_matches(&rv, &read(&rv_g), RTOL, &format!("{what}: var"));
    }
}

/// One channel of x = [1, 3 | 1, 3] (shape [2, 1, 2]), weight 2, bias 0.5,
/// eps 0: mean 2, biased variance ((−1)² + 1² + (−1)² + 1²)/4 = 1, invstd 1,
/// y = 2·(x − 2) + 0.5 = [−1.5, 2.5, −1.5, 2.5]. Backward with g = [1, 0, 0, 0]:
/// Σg = 1, Σg·x̂ = −1, M = 4, so grad_x = 2·(g − 1/4 − x̂·(−1)/4) with
/// x̂ = [−1, 1, −1, 1] gives 2·[1 − 0.25 − 0.25, −0.25 + 0.25, −0.25 − 0.25,
/// −0.25 + 0.25] = [1, 0, −1, 0]. Running stats from 0 and 1, count 4, momentum 0.1:
/// mean 0.1·2 = 0.2, var 0.9·1 + 0.1·1·4/3 = 1.0333….
#[test]
fn batch_norm_golden() {
    let x = [1.0, 3.0, 1.0, 3.0];
    let (y, mean, inv) = cpu::norm::batch_norm_train(&x, &[2, 1, 2], &[2.0], &[0.5], 0.0);
    assert_eq!(y, [-1.5, 2.5, -1.5, 2.5]);
    assert_eq!((mean[0], inv[0]), (2.0, 1.0));
    let (gx, gw, gb) =
        cpu::norm::batch_norm_backward(&[1.0, 0.0, 0.0, 0.0], &x, &[2, 1, 2], &[2.0], &mean, &inv);
    assert_eq!(gx, [1.0, 0.0, -1.0, 0.0]);
    assert_eq!((gw[0], gb[0]), (-1.0, 1.0));
    let (mut rm, mut rv) = ([0.0], [1.0]);
    cpu::norm::batch_norm_update_running(&mut rm, &mut rv, &mean, &inv, 4, 0.1, 0.0);
    assert_close(&rm, &[0.2], 1e-6, 0.0, "running mean");
    assert_close(&rv, &[0.9 + 0.4 / 3.0], 1e-6, 0.0, "running var");
}

// ---------------------------------------------------------------- layer norm

#[test]
fn layer_norm_and_backward_match_gpu() {
    let mut shapes = vec![
        vec![3, 5, 7, 9],
        vec![4, 3],
        vec![2, 7, 11],
        vec![3, 4, 59, 53],
    ];
    shapes.extend(random_shapes(11));
    for (si, shape) in shapes.iter().enumerate() {
        let seed = 300 + si as u64 * 10;
        let numel: usize = shape.iter().product();
        let c = shape[1];
        let mut stats_shape = shape.clone();
        stats_shape[1] = 1;
        let x = values(seed, numel, if si % 2 == 0 { 0.0 } else { 5.0 }, 2.0);
        let w = values(seed + 1, c, 1.0, 0.5);
        let b = values(seed + 2, c, 0.0, 1.0);
        let g = values(seed + 3, numel, 0.0, 1.0);
        let eps = 1e-5;
        let what = format!("layer norm {shape:?}");

        let (xt, wt) = (gpu(&x, shape), gpu(&w, &[c]));
        let (y_g, mean_g, inv_g) = norm::layer_norm(&xt, &wt, &gpu(&b, &[c]), eps).unwrap();
        let (y, mean, inv) = cpu::norm::layer_norm(&x, shape, &w, &b, eps);
        let (mean_gpu, scale) = (read(&mean_g), max_abs(&x));
        assert_matches_at(&mean, &mean_gpu, RTOL, scale, &format!("{what}: mean"));
        assert_matches(&inv, &read(&inv_g), RTOL, &format!("{what}: invstd"));
        assert_matches(&y, &read(&y_g), RTOL, &format!("{what}: y"));

        let (mean_g, inv_g) = (read(&mean_g), read(&inv_g));
        let (gx_g, gw_g, gb_g) = norm::layer_norm_backward(
            &gpu(&g, shape),
            &xt,
            &wt,
            &gpu(&mean_g, &stats_shape),
            &gpu(&inv_g, &stats_shape),
        )
        .unwrap();
        let (gx, gw, gb) = cpu::norm::layer_norm_backward(&g, &x, shape, &w, &mean_g, &inv_g);
        assert_matches(&gx, &read(&gx_g), RTOL, &format!("{what}: grad_x"));
        assert_matches(&gw, &read(&gw_g), RTOL, &format!("{what}: grad_weight"));
        assert_matches(&gb, &read(&gb_g), RTOL, &format!("{what}: grad_bias"));
    }
}

// -------------------------------------------------------------------- losses

#[test]
fn pointwise_losses_match_gpu() {
    for (si, shape) in [vec![3, 5, 7, 9], vec![5, 3, 47, 49]].iter().enumerate() {
        let numel: usize = shape.iter().product();
        let pred = values(500 + si as u64, numel, 0.0, 1.0);
        let mut target = values(510 + si as u64, numel, 0.0, 1.0);
        // Exact ties check L1's subgradient 0 at d = 0.
        for i in (0..numel).step_by(17) {
            target[i] = pred[i];
        }
        let grad = 0.7;
        let (p, t, gt) = (gpu(&pred, shape), gpu(&target, shape), gpu(&[grad], &[1]));
        let what = format!("{shape:?}");

        let l = cpu::loss::l1_loss(&pred, &target);
        assert_matches(&[l], &read(&loss::l1_loss(&p, &t).unwrap()), RTOL, &what);
        let gx = cpu::loss::l1_loss_backward(grad, &pred, &target);
        let gx_g = read(&loss::l1_loss_backward(&gt, &p, &t).unwrap());
        assert_matches(&gx, &gx_g, RTOL, &format!("l1 backward {what}"));
        assert_eq!(gx[0], 0.0, "l1 subgradient at a tie");

        let l = cpu::loss::mse_loss(&pred, &target);
        assert_matches(&[l], &read(&loss::mse_loss(&p, &t).unwrap()), RTOL, &what);
        let gx = cpu::loss::mse_loss_backward(grad, &pred, &target);
        let gx_g = read(&loss::mse_loss_backward(&gt, &p, &t).unwrap());
        assert_matches(&gx, &gx_g, RTOL, &format!("mse backward {what}"));

        for eps in [CHARBONNIER_EPS, 0.5] {
            let l = cpu::loss::charbonnier_loss(&pred, &target, eps);
            let l_g = read(&loss::charbonnier_loss(&p, &t, eps).unwrap());
            assert_matches(&[l], &l_g, RTOL, &format!("charbonnier {eps} {what}"));
            let gx = cpu::loss::charbonnier_loss_backward(grad, &pred, &target, eps);
            let gx_g = read(&loss::charbonnier_loss_backward(&gt, &p, &t, eps).unwrap());
            assert_matches(
                &gx,
                &gx_g,
                RTOL,
                &format!("charbonnier {eps} backward {what}"),
            );
        }
    }
}

#[test]
fn fft_loss_and_backward_match_gpu() {
    let shapes = [
        vec![3, 2, 7, 9],
        vec![2, 1, 5, 11],
        vec![2, 3, 1, 7],
        vec![4, 6, 6],
        // 4 planes above 32K values: whole planes per thread.
        vec![2, 2, 97, 91],
        // One plane above 32K values: rows of the plane per thread.
        vec![1, 1, 181, 183],
    ];
    for (si, shape) in shapes.iter().enumerate() {
        let numel: usize = shape.iter().product();
        let pred = values(600 + si as u64, numel, 0.0, 1.0);
        let target = values(610 + si as u64, numel, 0.0, 1.0);
        let grad = -1.3;
        let (p, t) = (gpu(&pred, shape), gpu(&target, shape));
        let what = format!("fft loss {shape:?}");
        let l = cpu::loss::fft_loss(&pred, &target, shape);
        assert_matches(&[l], &read(&loss::fft_loss(&p, &t).unwrap()), RTOL, &what);
        let gx = cpu::loss::fft_loss_backward(grad, &pred, &target, shape);
        let gx_g = read(&loss::fft_loss_backward(&gpu(&[grad], &[1]), &p, &t).unwrap());
        assert_matches(&gx, &gx_g, RTOL, &format!("{what}: backward"));
    }
}

/// Two 2×2 planes, n = 8 values. Plane 0 has d = ŷ − y = 1 everywhere, so
/// F(d)_uv = Σ_xy e^(−2πi(ux + vy)/2) is 4 at (0, 0) and 0 elsewhere; plane 1
/// has d = 0 and F = 0. With ε = FFT_LOSS_EPS the loss is
/// ((4 + 3√ε) + 4√ε)/8. Backward with grad = 2: G = F/√(|F|² + ε)·grad/n is
/// 4/√(16 + ε)·2/8 ≈ 0.25 at (0, 0) of plane 0 and 0 elsewhere, and the real
/// part of its unnormalised inverse DFT is G_00 = 0.25 at every pixel of
/// plane 0 and 0 on plane 1.
#[test]
fn fft_loss_golden() {
    let shape = [2, 1, 2, 2];
    let pred = [1.5, 0.5, 2.0, -1.0, 0.25, 0.25, 0.25, 0.25];
    let target = [0.5, -0.5, 1.0, -2.0, 0.25, 0.25, 0.25, 0.25];
    let root = (FFT_LOSS_EPS as f64).sqrt();
    let want = ((4.0 + 3.0 * root) + 4.0 * root) / 8.0;
    let l = cpu::loss::fft_loss(&pred, &target, &shape);
    assert_close(&[l], &[want], 1e-7, 0.0, "fft loss golden");
    let gx = cpu::loss::fft_loss_backward(2.0, &pred, &target, &shape);
    let want_gx = [0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0];
    assert_close(&gx, &want_gx, 1e-7, 1e-12, "fft loss backward golden");
}

// ------------------------------------------------------------------- neurons

/// Inputs for `cfg` whose membranes H all stay at least 1e-4 from V_th (CPU
/// forward, nudging an offending input by 0.01 and running again), so that
/// the GPU and CPU take the same spike decisions.
fn inputs_off_threshold(
    seed: u64,
    shape: &[usize],
    cfg: &NeuronConfig,
    w: Option<f32>,
) -> Vec<f32> {
    let numel: usize = shape.iter().product();
    let mut x = values(seed, numel, 0.15, 0.5);
    for _ in 0..10_000 {
        let (_, h) = cpu::neuron::neuron_forward(&x, shape, cfg, w);
        match h.iter().position(|&h| (h - cfg.v_threshold).abs() < 1e-4) {
            None => return x,
            Some(i) => x[i] += 0.01,
        }
    }
    panic!("could not move the membranes away from the threshold");
}

/// Forward and backward of `cfg` on `shape`: spikes exactly, H, grad_x and
/// PLIF's grad_w at RTOL.
fn check_neuron(shape: &[usize], cfg: &NeuronConfig, seed: u64) {
    let w = (cfg.kind == NeuronKind::Plif).then_some(0.3f32);
    let w_g = w.map(|w| gpu(&[w], &[1]));
    let x = inputs_off_threshold(seed, shape, cfg, w);
    let what = format!("{cfg:?} {shape:?}");
    let (s_g, h_g) = neuron::neuron_forward(&gpu(&x, shape), cfg, w_g.as_ref()).unwrap();
    let (s, h) = cpu::neuron::neuron_forward(&x, shape, cfg, w);
    assert_eq!(s, read(&s_g), "{what}: spikes");
    let h_g = read(&h_g);
    assert_matches(&h, &h_g, RTOL, &format!("{what}: H"));

    let gs = values(seed + 1, x.len(), 0.0, 1.0);
    let (gx_g, gw_g) =
        neuron::neuron_backward(&gpu(&gs, shape), &gpu(&h_g, shape), cfg, w_g.as_ref()).unwrap();
    let (gx, gw) = cpu::neuron::neuron_backward(&gs, &h_g, shape, cfg, w);
    assert_matches(&gx, &read(&gx_g), RTOL, &format!("{what}: grad_x"));
    match (gw, gw_g) {
        (Some(gw), Some(gw_g)) => {
            // A sum over neurons and steps, which the GPU adds up in f32: its
            // rounding is below ~log2(n)·2⁻²⁴ < 1e-6 of Σ|terms|. The terms are
            // g_H·(1 − k)·(H − V[t−1]) or g_H·k(1 − k)·(V_reset − V[t−1]) with
            // k = σ(0.3) ≈ 0.57 and |ΔV| < 2 here, and |g_H| ≤ |g_X|/k, so
            // Σ|terms| < 2·Σ|g_X|.
            let terms: f64 = 2.0 * gx.iter().map(|v| v.abs() as f64).sum::<f64>();
            let want = read(&gw_g)[0] as f64;
            let what = format!("{what}: grad_w");
            assert_close(&[gw], &[want], RTOL, 1e-6 * terms, &what);
        }
        (None, None) => {}
        other => panic!("{what}: grad_w presence differs: {other:?}"),
    }
}

#[test]
fn neuron_forward_backward_match_gpu_for_every_config() {
    let kinds = [
        NeuronKind::If,
        NeuronKind::Lif { tau: 2.0 },
        NeuronKind::Plif,
    ];
    let resets = [Some(0.0), Some(-0.2), None];
    let surrogates = [
        Surrogate::sigmoid(),
        Surrogate::atan(),
        Surrogate::triangle(),
        Surrogate::Sigmoid { alpha: 2.5 },
    ];
    let mut seed = 700;
    for kind in kinds {
        for v_reset in resets {
            for decay_input in [false, true] {
                for detach_reset in [false, true] {
                    for surrogate in surrogates {
                        for steps in [1, 4] {
                            let cfg = NeuronConfig {
                                kind,
                                v_threshold: 0.25,
                                v_reset,
                                decay_input,
                                detach_reset,
                                surrogate,
                            };
                            check_neuron(&[steps, 2, 3, 5], &cfg, seed);
                            seed += 2;
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn neuron_large_layers_match_gpu() {
    // 32 802 neurons: more than one chunk of 2048, and the rayon path.
    let shape = [4, 2, 3, 71, 77];
    for (kind, v_reset, decay_input) in [
        (NeuronKind::Lif { tau: 2.0 }, Some(0.0), false),
        (NeuronKind::Plif, None, true),
        (NeuronKind::If, Some(-0.1), false),
    ] {
        let cfg = NeuronConfig {
            kind,
            v_threshold: 0.15,
            v_reset,
            decay_input,
            detach_reset: false,
            surrogate: Surrogate::atan(),
        };
        check_neuron(&shape, &cfg, 900);
    }
}

/// LIF τ = 2 (k = 0.5), V_th = 1, hard reset to 0, no input decay, X = 0.6:
/// H0 = 0 − 0·0.5 + 0.6 = 0.6 (no spike, V0 = 0.6),
/// H1 = 0.6 − 0.3 + 0.6 = 0.9 (no spike), H2 = 0.9 − 0.45 + 0.6 = 1.05 (spike).
/// Backward with g_S = [0, 0, 1], sg(x) = 4σ(4x)(1 − σ(4x)):
/// t = 2: g_H = sg(0.05) = 0.9900663, g_X = g_H, g_V = 0.4950331;
/// t = 1 (S = 0): g_H = g_V·(1 + (0 − 0.9)·sg(−0.1)) = g_V·(1 − 0.9·0.9610430)
///   = 0.0668598, g_V = 0.0334299;
/// t = 0: g_H = g_V·(1 − 0.6·sg(−0.4)) = g_V·(1 − 0.6·0.5590552) = 0.0222164.
/// Second neuron, the same LIF with X = [2, 0, 0] and g_S = 0 sees no gradient.
#[test]
fn neuron_lif_golden() {
    let cfg = NeuronConfig {
        kind: NeuronKind::Lif { tau: 2.0 },
        v_threshold: 1.0,
        v_reset: Some(0.0),
        decay_input: false,
        detach_reset: false,
        surrogate: Surrogate::sigmoid(),
    };
    let x = [0.6, 2.0, 0.6, 0.0, 0.6, 0.0];
    let (s, h) = cpu::neuron::neuron_forward(&x, &[3, 2], &cfg, None);
    assert_eq!(s, [0.0, 1.0, 0.0, 0.0, 1.0, 0.0]);
    let want_h = [0.6, 2.0, 0.9, 0.0, 1.05, 0.0];
    assert_close(&h, &want_h, 1e-6, 1e-7, "golden H");
    let gs = [0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    let (gx, gw) = cpu::neuron::neuron_backward(&gs, &h, &[3, 2], &cfg, None);
    assert!(gw.is_none());
    let want_gx = [0.0222164, 0.0, 0.0668598, 0.0, 0.9900663, 0.0];
    assert_close(&gx, &want_gx, 2e-6, 1e-7, "golden grad_x");
}

/// IF with soft reset, V_th = 1, X = 0.7: H0 = 0.7, H1 = 1.4 (spike, V = 0.4),
/// H2 = 1.1 (spike, V = 0.1), H3 = 0.8.
#[test]
fn neuron_if_soft_reset_golden() {
    let cfg = NeuronConfig {
        kind: NeuronKind::If,
        v_threshold: 1.0,
        v_reset: None,
        ..NeuronConfig::default()
    };
    let (s, h) = cpu::neuron::neuron_forward(&[0.7; 4], &[4, 1], &cfg, None);
    assert_eq!(s, [0.0, 1.0, 1.0, 0.0]);
    assert_close(&h, &[0.7, 1.4, 1.1, 0.8], 1e-6, 0.0, "golden IF H");
}

// ---------------------------------------------------------------- optimizers

#[test]
fn adam_and_adamw_match_gpu() {
    for (n, decoupled) in [(1001, false), (1001, true), (40_000, true)] {
        let c = AdamConfig {
            lr: 1e-2,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.05,
            decoupled,
        };
        let mut p = values(800, n, 0.0, 1.0);
        let (mut m, mut v) = (vec![0.0; n], vec![0.0; n]);
        let (pg, mg, vg) = (gpu(&p, &[n]), gpu(&m, &[n]), gpu(&v, &[n]));
        for step in 1..=3 {
            let g = values(810 + step as u64, n, 0.0, 1.0);
            optim::adam_step(&pg, &gpu(&g, &[n]), &mg, &vg, step, &c).unwrap();
            cpu::optim::adam_step(&mut p, &g, &mut m, &mut v, step, &c);
        }
        let what = format!("adam n {n} decoupled {decoupled}");
        assert_matches(&p, &read(&pg), RTOL, &format!("{what}: param"));
        assert_matches(&m, &read(&mg), RTOL, &format!("{what}: m"));
        assert_matches(&v, &read(&vg), RTOL, &format!("{what}: v"));
    }
}

#[test]
fn sgd_with_momentum_matches_gpu() {
    for n in [1001, 40_000] {
        let mut p = values(850, n, 0.0, 1.0);
        let mut buf = vec![0.0; n];
        let (pg, bg) = (gpu(&p, &[n]), gpu(&buf, &[n]));
        for step in 0..3 {
            let g = values(860 + step, n, 0.0, 1.0);
            optim::sgd_step(&pg, &gpu(&g, &[n]), Some(&bg), 0.1, 0.9, 0.01).unwrap();
            cpu::optim::sgd_step(&mut p, &g, Some(&mut buf), 0.1, 0.9, 0.01);
        }
        let what = format!("sgd n {n}");
        assert_matches(&p, &read(&pg), RTOL, &format!("{what}: param"));
        assert_matches(&buf, &read(&bg), RTOL, &format!("{what}: buffer"));
    }
}

/// Without momentum, p ← p − lr·(g + wd·p), checked against that formula in
/// f64: the GPU op cannot run this case (it binds the gradient a second time
/// as the read-write momentum buffer, which wgpu rejects). The buffer, if
/// given, is left alone.
#[test]
fn sgd_without_momentum_matches_formula() {
    for n in [1001, 40_000] {
        let p0 = values(870, n, 0.0, 1.0);
        let g = values(871, n, 0.0, 1.0);
        let (lr, wd) = (0.1f64, 0.01f64);
        let want: Vec<f64> = p0
            .iter()
            .zip(&g)
            .map(|(&p, &g)| p as f64 - lr * (g as f64 + wd * p as f64))
            .collect();
        let mut p = p0.clone();
        let mut buf = vec![0.0; n];
        cpu::optim::sgd_step(&mut p, &g, Some(&mut buf), 0.1, 0.0, 0.01);
        assert_close(&p, &want, 1e-6, 1e-7, "sgd without momentum");
        assert!(buf.iter().all(|&b| b == 0.0), "momentum buffer touched");
        let mut p = p0.clone();
        cpu::optim::sgd_step(&mut p, &g, None, 0.1, 0.0, 0.01);
        assert_close(&p, &want, 1e-6, 1e-7, "sgd without a buffer");
    }
}

/// Adam step 1 from zero moments: m = (1 − β1)g and v = (1 − β2)g², so
/// m/bc1 = g and v/bc2 = g², and p ← p − lr·g/(|g| + ε) = 1 − 0.1·0.5/0.5 = 0.9
/// (ε = 0). SGD, p = 1, g = 0.5, wd = 0.1, μ = 0.9, lr = 0.1, twice:
/// g' = 0.6, buf = 0.6, p = 0.94; g' = 0.5 + 0.094 = 0.594,
/// buf = 0.54 + 0.594 = 1.134, p = 0.94 − 0.1134 = 0.8266.
#[test]
fn optim_golden() {
    let c = AdamConfig {
        lr: 0.1,
        beta1: 0.9,
        beta2: 0.999,
        eps: 0.0,
        weight_decay: 0.0,
        decoupled: false,
    };
    let (mut p, mut m, mut v) = ([1.0], [0.0], [0.0]);
    cpu::optim::adam_step(&mut p, &[0.5], &mut m, &mut v, 1, &c);
    assert_close(&p, &[0.9], 1e-6, 0.0, "adam golden");

    let (mut p, mut buf) = ([1.0], [0.0]);
    for _ in 0..2 {
        cpu::optim::sgd_step(&mut p, &[0.5], Some(&mut buf), 0.1, 0.9, 0.1);
    }
    assert_close(&buf, &[1.134], 1e-6, 0.0, "sgd golden buffer");
    assert_close(&p, &[0.8266], 1e-6, 0.0, "sgd golden param");
}
