//! Batch norm, layer norm and the losses against f64 CPU references written
//! here, and every backward against central finite differences of those
//! references (L = Σ G ⊙ op(x) for a random G, or the scalar loss itself).

mod common;

use common::{assert_close, data, device};
use spikeir_core::ops::{loss, norm};
use spikeir_core::{Error, Tensor};

fn tensor(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(&device(), values, shape).unwrap()
}

fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Central differences of `f` at `x` in f64.
fn numeric_grad(x: &[f32], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut xs = to_f64(x);
    (0..xs.len())
        .map(|i| {
            let orig = xs[i];
            let h = 1e-5 * (1.0 + orig.abs());
            xs[i] = orig + h;
            let up = f(&xs);
            xs[i] = orig - h;
            let down = f(&xs);
            xs[i] = orig;
            (up - down) / (2.0 * h)
        })
        .collect()
}

/// A GPU gradient against a reference at relative tolerance `rtol`, with an
/// absolute floor of `rtol` times the largest reference entry: entries far
/// below the gradient's scale carry the rounding error of the larger terms
/// they are differences of.
fn assert_grad(got: &[f32], want: &[f64], rtol: f64, what: &str) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(got, want, rtol, rtol * scale + 1e-12, what);
}

fn dot(g: &[f32], y: &[f64]) -> f64 {
    g.iter().zip(y).map(|(&a, &b)| a as f64 * b).sum()
}

/// (N, C, hw) of `[N, C, ...]`.
fn dims(shape: &[usize]) -> (usize, usize, usize) {
    (shape[0], shape[1], shape[2..].iter().product())
}

// ---------------------------------------------------------------- batch norm

/// Per-channel statistics over N·hw, biased variance; returns (y, mean, invstd).
fn bn_ref(
    x: &[f64],
    shape: &[usize],
    w: &[f64],
    b: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (n, c, hw) = dims(shape);
    let idx = |i: usize, ch: usize, p: usize| (i * c + ch) * hw + p;
    let m = (n * hw) as f64;
    let mut y = vec![0.0; x.len()];
    let (mut means, mut invs) = (vec![0.0; c], vec![0.0; c]);
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| (0..hw).map(move |p| (i, p)))
            .map(|(i, p)| x[idx(i, ch, p)])
            .collect();
        let mean = vals.iter().sum::<f64>() / m;
        let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / m;
        let inv = 1.0 / (var + eps).sqrt();
        for i in 0..n {
            for p in 0..hw {
                y[idx(i, ch, p)] = (x[idx(i, ch, p)] - mean) * inv * w[ch] + b[ch];
            }
        }
        means[ch] = mean;
        invs[ch] = inv;
    }
    (y, means, invs)
}

const BN_SHAPES: [&[usize]; 4] = [&[2, 3, 5, 7], &[3, 4], &[4, 2, 3], &[1, 2, 3, 1, 4]];

fn affine(c: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let w: Vec<f32> = data(seed, c).iter().map(|v| 1.0 + 0.5 * v).collect();
    (w, data(seed + 1, c))
}

#[test]
fn batch_norm_train_and_eval_match_the_cpu() {
    let eps = 1e-5;
    // The last shape has 16 800 values per channel: 9 chunks per channel.
    let shapes: Vec<&[usize]> = BN_SHAPES
        .iter()
        .copied()
        .chain([&[4usize, 3, 60, 70][..]])
        .collect();
    for (si, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let c = shape[1];
        let x: Vec<f32> = data(100 + si as u64, n)
            .iter()
            .map(|v| 3.0 * v + 0.7)
            .collect();
        let (w, b) = affine(c, 200 + si as u64);
        let (want_y, want_mean, want_inv) =
            bn_ref(&to_f64(&x), shape, &to_f64(&w), &to_f64(&b), eps as f64);
        let (y, mean, inv) = norm::batch_norm_train(
            &tensor(&x, shape),
            &tensor(&w, &[c]),
            &tensor(&b, &[c]),
            eps,
        )
        .unwrap();
        let what = format!("{shape:?}");
        assert_eq!(
            (y.shape(), mean.shape(), inv.shape()),
            (&shape[..], &[c][..], &[c][..])
        );
        assert_close(&y.to_vec().unwrap(), &want_y, 1e-5, 1e-5, &what);
        assert_close(&mean.to_vec().unwrap(), &want_mean, 1e-5, 1e-6, &what);
        assert_close(&inv.to_vec().unwrap(), &want_inv, 1e-5, 0.0, &what);

        let rm: Vec<f32> = data(300 + si as u64, c);
        let rv: Vec<f32> = data(400 + si as u64, c)
            .iter()
            .map(|v| v.abs() + 0.2)
            .collect();
        let want: Vec<f64> = (0..n)
            .map(|i| {
                let ch = (i / (n / shape[0] / c)) % c;
                (x[i] as f64 - rm[ch] as f64) / (rv[ch] as f64 + eps as f64).sqrt() * w[ch] as f64
                    + b[ch] as f64
            })
            .collect();
        let got = norm::batch_norm_eval(
            &tensor(&x, shape),
            &tensor(&rm, &[c]),
            &tensor(&rv, &[c]),
            &tensor(&w, &[c]),
            &tensor(&b, &[c]),
            eps,
        )
        .unwrap();
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-5,
            1e-5,
            &format!("eval {shape:?}"),
        );
    }
}

#[test]
fn batch_norm_variance_survives_a_large_mean() {
    // Values 1000 ± 0.01: E[x²] − E[x]² in f32 would lose every digit of the
    // variance (1e-4 against 1e6); the two-pass statistics keep it.
    let shape = [8, 2, 30, 30];
    let x: Vec<f32> = data(5, 14_400).iter().map(|v| 1000.0 + 0.01 * v).collect();
    let ones = tensor(&[1.0, 1.0], &[2]);
    let zeros = tensor(&[0.0, 0.0], &[2]);
    let (_, mean, inv) = norm::batch_norm_train(&tensor(&x, &shape), &ones, &zeros, 0.0).unwrap();
    let (_, want_mean, want_inv) = bn_ref(&to_f64(&x), &shape, &[1.0, 1.0], &[0.0, 0.0], 0.0);
    assert_close(&mean.to_vec().unwrap(), &want_mean, 1e-7, 0.0, "mean");
    assert_close(&inv.to_vec().unwrap(), &want_inv, 1e-3, 0.0, "invstd");
}

#[test]
fn batch_norm_of_a_tiny_tensor_matches_hand_computed_values() {
    // x: [N=2, C=2, 1, 2]. Channel 0 holds 1, 3, 1, 3: mean 2, biased var
    // (1+1+1+1)/4 = 1. Channel 1 holds 0, 0, 4, 4: mean 2, var 4, invstd 1/2.
    // With eps = 0, weight (2, 3), bias (0.5, −1):
    //   channel 0: (x − 2)·1·2 + 0.5 → −1.5, 2.5;  channel 1: (x − 2)·0.5·3 − 1 → −4, 2.
    let x = tensor(&[1.0, 3.0, 0.0, 0.0, 1.0, 3.0, 4.0, 4.0], &[2, 2, 1, 2]);
    let w = tensor(&[2.0, 3.0], &[2]);
    let b = tensor(&[0.5, -1.0], &[2]);
    let (y, mean, inv) = norm::batch_norm_train(&x, &w, &b, 0.0).unwrap();
    assert_close(
        &y.to_vec().unwrap(),
        &[-1.5, 2.5, -4.0, -4.0, -1.5, 2.5, 2.0, 2.0],
        1e-6,
        1e-6,
        "y",
    );
    assert_close(&mean.to_vec().unwrap(), &[2.0, 2.0], 1e-7, 0.0, "mean");
    assert_close(&inv.to_vec().unwrap(), &[1.0, 0.5], 1e-6, 0.0, "invstd");
    // Running stats from (0, 1) with momentum 0.1 and count 4: mean 0.9·0 +
    // 0.1·2 = 0.2; var 0.9·1 + 0.1·var·4/3 → 0.9 + 0.4/3 and 0.9 + 1.6/3.
    let rm = tensor(&[0.0, 0.0], &[2]);
    let rv = tensor(&[1.0, 1.0], &[2]);
    norm::batch_norm_update_running(&rm, &rv, &mean, &inv, 4, 0.1, 0.0).unwrap();
    assert_close(
        &rm.to_vec().unwrap(),
        &[0.2, 0.2],
        1e-6,
        0.0,
        "running mean",
    );
    assert_close(
        &rv.to_vec().unwrap(),
        &[0.9 + 0.4 / 3.0, 0.9 + 1.6 / 3.0],
        1e-6,
        0.0,
        "running var",
    );
    // With g = 1 everywhere: grad_bias = Σ g = 4 per channel, grad_weight =
    // Σ x̂ = 0, and grad_x = w·invstd·(1 − 4/4 − x̂·0/4) = 0.
    let (gx, gw, gb) =
        norm::batch_norm_backward(&tensor(&[1.0; 8], &[2, 2, 1, 2]), &x, &w, &mean, &inv).unwrap();
    assert_close(&gx.to_vec().unwrap(), &[0.0; 8], 0.0, 1e-6, "grad_x");
    assert_close(&gw.to_vec().unwrap(), &[0.0, 0.0], 0.0, 1e-6, "grad_weight");
    assert_close(&gb.to_vec().unwrap(), &[4.0, 4.0], 1e-6, 0.0, "grad_bias");
}

#[test]
fn batch_norm_running_update_matches_pytorch_formula() {
    let shape = [3, 4, 5, 6];
    let c = 4;
    let x: Vec<f32> = data(11, 360).iter().map(|v| 2.0 * v - 0.3).collect();
    let (w, b) = affine(c, 12);
    let eps = 1e-5;
    let (_, mean, inv) = norm::batch_norm_train(
        &tensor(&x, &shape),
        &tensor(&w, &[c]),
        &tensor(&b, &[c]),
        eps,
    )
    .unwrap();
    let (rm0, rv0) = (
        data(13, c),
        data(14, c)
            .iter()
            .map(|v| v.abs() + 0.5)
            .collect::<Vec<f32>>(),
    );
    let (rm, rv) = (tensor(&rm0, &[c]), tensor(&rv0, &[c]));
    norm::batch_norm_update_running(&rm, &rv, &mean, &inv, 90, 0.1, eps).unwrap();
    let (_, want_mean, want_inv) =
        bn_ref(&to_f64(&x), &shape, &to_f64(&w), &to_f64(&b), eps as f64);
    let var_unbiased: Vec<f64> = want_inv
        .iter()
        .map(|i| (1.0 / (i * i) - eps as f64) * 90.0 / 89.0)
        .collect();
    let want_rm: Vec<f64> = (0..c)
        .map(|k| 0.9 * rm0[k] as f64 + 0.1 * want_mean[k])
        .collect();
    let want_rv: Vec<f64> = (0..c)
        .map(|k| 0.9 * rv0[k] as f64 + 0.1 * var_unbiased[k])
        .collect();
    assert_close(&rm.to_vec().unwrap(), &want_rm, 1e-5, 1e-6, "running mean");
    assert_close(&rv.to_vec().unwrap(), &want_rv, 1e-5, 0.0, "running var");
}

#[test]
fn batch_norm_backward_matches_finite_differences() {
    let eps = 1e-5;
    for (si, shape) in BN_SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let c = shape[1];
        let x = data(500 + si as u64, n);
        let (w, b) = affine(c, 600 + si as u64);
        let g = data(700 + si as u64, n);
        let (wf, bf) = (to_f64(&w), to_f64(&b));
        let loss = |xs: &[f64], ws: &[f64], bs: &[f64]| dot(&g, &bn_ref(xs, shape, ws, bs, eps).0);
        let want_x = numeric_grad(&x, |xs| loss(xs, &wf, &bf));
        let want_w = numeric_grad(&w, |ws| loss(&to_f64(&x), ws, &bf));
        let want_b = numeric_grad(&b, |bs| loss(&to_f64(&x), &wf, bs));
        let xt = tensor(&x, shape);
        let wt = tensor(&w, &[c]);
        let (_, mean, inv) =
            norm::batch_norm_train(&xt, &wt, &tensor(&b, &[c]), eps as f32).unwrap();
        let (gx, gw, gb) =
            norm::batch_norm_backward(&tensor(&g, shape), &xt, &wt, &mean, &inv).unwrap();
        assert_eq!(
            (gx.shape(), gw.shape(), gb.shape()),
            (&shape[..], &[c][..], &[c][..])
        );
        assert_grad(
            &gx.to_vec().unwrap(),
            &want_x,
            1e-4,
            &format!("grad_x {shape:?}"),
        );
        assert_grad(
            &gw.to_vec().unwrap(),
            &want_w,
            1e-4,
            &format!("grad_weight {shape:?}"),
        );
        assert_grad(
            &gb.to_vec().unwrap(),
            &want_b,
            1e-4,
            &format!("grad_bias {shape:?}"),
        );
    }
}

#[test]
fn batch_norm_checks_shapes_and_arguments() {
    let x = tensor(&[0.0; 24], &[2, 3, 4]);
    let w = tensor(&[1.0; 4], &[4]);
    let b = tensor(&[0.0; 3], &[3]);
    let e = norm::batch_norm_train(&x, &w, &b, 1e-5).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("batch_norm_train")
            && e.contains("weight")
            && e.contains("[4]")
            && e.contains("[2, 3, 4]"),
        "{e}"
    );
    let e = norm::batch_norm_train(&tensor(&[0.0; 3], &[3]), &b, &b, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[N, C, ...]") && e.contains("[3]"), "{e}");
    let e = norm::batch_norm_update_running(&b, &b, &b, &b, 1, 0.1, 1e-5).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("count = 1"),
        "{e}"
    );
    assert!(norm::batch_norm_train(&x, &b, &b, -1.0).is_err());
}

// ---------------------------------------------------------------- layer norm

/// Statistics over C at each (n, position); returns (y, mean, invstd) with
/// the statistics indexed n·hw + position.
fn ln_ref(
    x: &[f64],
    shape: &[usize],
    w: &[f64],
    b: &[f64],
    eps: f64,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (n, c, hw) = dims(shape);
    let mut y = vec![0.0; x.len()];
    let (mut means, mut invs) = (vec![0.0; n * hw], vec![0.0; n * hw]);
    for i in 0..n {
        for p in 0..hw {
            let idx = |ch: usize| (i * c + ch) * hw + p;
            let mean = (0..c).map(|ch| x[idx(ch)]).sum::<f64>() / c as f64;
            let var = (0..c).map(|ch| (x[idx(ch)] - mean).powi(2)).sum::<f64>() / c as f64;
            let inv = 1.0 / (var + eps).sqrt();
            for ch in 0..c {
                y[idx(ch)] = (x[idx(ch)] - mean) * inv * w[ch] + b[ch];
            }
            means[i * hw + p] = mean;
            invs[i * hw + p] = inv;
        }
    }
    (y, means, invs)
}

const LN_SHAPES: [&[usize]; 4] = [&[2, 5, 3, 4], &[3, 7], &[1, 3, 2, 2, 3], &[2, 16, 9, 11]];

#[test]
fn layer_norm_matches_the_cpu() {
    let eps = 1e-6;
    for (si, shape) in LN_SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let c = shape[1];
        let x: Vec<f32> = data(800 + si as u64, n)
            .iter()
            .map(|v| 2.0 * v - 0.4)
            .collect();
        let (w, b) = affine(c, 900 + si as u64);
        let (want_y, want_mean, want_inv) =
            ln_ref(&to_f64(&x), shape, &to_f64(&w), &to_f64(&b), eps as f64);
        let (y, mean, inv) = norm::layer_norm(
            &tensor(&x, shape),
            &tensor(&w, &[c]),
            &tensor(&b, &[c]),
            eps,
        )
        .unwrap();
        let mut stats_shape = shape.to_vec();
        stats_shape[1] = 1;
        assert_eq!(
            (mean.shape(), inv.shape()),
            (&stats_shape[..], &stats_shape[..])
        );
        let what = format!("{shape:?}");
        assert_close(&y.to_vec().unwrap(), &want_y, 1e-5, 1e-5, &what);
        assert_close(&mean.to_vec().unwrap(), &want_mean, 1e-5, 1e-6, &what);
        // invstd reaches ~1e3 where C is small and the values nearly agree.
        assert_close(&inv.to_vec().unwrap(), &want_inv, 1e-4, 0.0, &what);
    }
}

#[test]
fn layer_norm_of_two_pixels_matches_hand_computed_values() {
    // x: [1, C=2, 1, 2]. Pixel 0 has channels (0, 2): mean 1, var 1, x̂ = (−1, 1).
    // Pixel 1 has (3, −1): mean 1, var 4, invstd 1/2, x̂ = (1, −1).
    // Weight (2, 3), bias (0.5, −1): channel 0 → (−2 + 0.5, 2 + 0.5) = (−1.5, 2.5),
    // channel 1 → (3 − 1, −3 − 1) = (2, −4).
    let x = tensor(&[0.0, 3.0, 2.0, -1.0], &[1, 2, 1, 2]);
    let (y, mean, inv) = norm::layer_norm(
        &x,
        &tensor(&[2.0, 3.0], &[2]),
        &tensor(&[0.5, -1.0], &[2]),
        0.0,
    )
    .unwrap();
    assert_close(
        &y.to_vec().unwrap(),
        &[-1.5, 2.5, 2.0, -4.0],
        1e-6,
        1e-6,
        "y",
    );
    assert_close(&mean.to_vec().unwrap(), &[1.0, 1.0], 1e-7, 0.0, "mean");
    assert_close(&inv.to_vec().unwrap(), &[1.0, 0.5], 1e-6, 0.0, "invstd");
}

#[test]
fn layer_norm_backward_matches_finite_differences() {
    let eps = 1e-5;
    for (si, shape) in LN_SHAPES.iter().take(3).enumerate() {
        let n: usize = shape.iter().product();
        let c = shape[1];
        let x = data(1000 + si as u64, n);
        let (w, b) = affine(c, 1100 + si as u64);
        let g = data(1200 + si as u64, n);
        let (wf, bf) = (to_f64(&w), to_f64(&b));
        let loss = |xs: &[f64], ws: &[f64], bs: &[f64]| dot(&g, &ln_ref(xs, shape, ws, bs, eps).0);
        let want_x = numeric_grad(&x, |xs| loss(xs, &wf, &bf));
        let want_w = numeric_grad(&w, |ws| loss(&to_f64(&x), ws, &bf));
        let want_b = numeric_grad(&b, |bs| loss(&to_f64(&x), &wf, bs));
        let xt = tensor(&x, shape);
        let wt = tensor(&w, &[c]);
        let (_, mean, inv) = norm::layer_norm(&xt, &wt, &tensor(&b, &[c]), eps as f32).unwrap();
        let (gx, gw, gb) =
            norm::layer_norm_backward(&tensor(&g, shape), &xt, &wt, &mean, &inv).unwrap();
        assert_grad(
            &gx.to_vec().unwrap(),
            &want_x,
            1e-4,
            &format!("grad_x {shape:?}"),
        );
        assert_grad(
            &gw.to_vec().unwrap(),
            &want_w,
            1e-4,
            &format!("grad_weight {shape:?}"),
        );
        assert_grad(
            &gb.to_vec().unwrap(),
            &want_b,
            1e-4,
            &format!("grad_bias {shape:?}"),
        );
    }
}

// ---------------------------------------------------------------- pointwise losses

type LossRef = fn(f64, f64) -> f64;

fn pointwise_cases() -> Vec<(&'static str, LossRef)> {
    vec![
        ("l1", |d, _| d.abs()),
        ("mse", |d, _| d * d),
        ("charbonnier", |d, e| (d * d + e * e).sqrt()),
    ]
}

fn loss_forward(name: &str, p: &Tensor, t: &Tensor, eps: f32) -> Tensor {
    match name {
        "l1" => loss::l1_loss(p, t),
        "mse" => loss::mse_loss(p, t),
        "charbonnier" => loss::charbonnier_loss(p, t, eps),
        "fft" => loss::fft_loss(p, t),
        _ => unreachable!(),
    }
    .unwrap()
}

fn loss_backward(name: &str, g: &Tensor, p: &Tensor, t: &Tensor, eps: f32) -> Tensor {
    match name {
        "l1" => loss::l1_loss_backward(g, p, t),
        "mse" => loss::mse_loss_backward(g, p, t),
        "charbonnier" => loss::charbonnier_loss_backward(g, p, t, eps),
        "fft" => loss::fft_loss_backward(g, p, t),
        _ => unreachable!(),
    }
    .unwrap()
}

fn mean_of(pred: &[f64], target: &[f32], f: LossRef, eps: f64) -> f64 {
    pred.iter()
        .zip(target)
        .map(|(&p, &t)| f(p - t as f64, eps))
        .sum::<f64>()
        / pred.len() as f64
}

#[test]
fn pointwise_losses_match_the_cpu() {
    let eps = loss::CHARBONNIER_EPS;
    // 300 000 values: 147 chunks, then a second tree pass.
    let shapes: [&[usize]; 4] = [&[2, 3, 5, 7], &[17], &[1, 1, 1, 1], &[3, 100, 1000]];
    for (si, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let p = data(1300 + si as u64, n);
        let t = data(1400 + si as u64, n);
        let (pt, tt) = (tensor(&p, shape), tensor(&t, shape));
        for (name, f) in pointwise_cases() {
            let want = mean_of(&to_f64(&p), &t, f, eps as f64);
            let got = loss_forward(name, &pt, &tt, eps);
            assert_eq!(got.shape(), &[1]);
            assert_close(
                &got.to_vec().unwrap(),
                &[want],
                1e-5,
                0.0,
                &format!("{name} {shape:?}"),
            );
        }
    }
}

#[test]
fn pointwise_loss_backward_matches_finite_differences() {
    let eps = 0.05f32;
    let shape = [2, 3, 5, 7];
    let p = data(1500, 210);
    // The L1 kink at d = 0 is kept 1e-3 away.
    let t: Vec<f32> = data(1501, 210)
        .iter()
        .zip(&p)
        .map(|(&t, &p)| if (p - t).abs() < 1e-3 { t + 0.01 } else { t })
        .collect();
    let upstream = 1.7f32;
    for (name, f) in pointwise_cases() {
        let want = numeric_grad(&p, |ps| upstream as f64 * mean_of(ps, &t, f, eps as f64));
        let got = loss_backward(
            name,
            &tensor(&[upstream], &[1]),
            &tensor(&p, &shape),
            &tensor(&t, &shape),
            eps,
        );
        assert_eq!(got.shape(), &shape);
        assert_grad(&got.to_vec().unwrap(), &want, 1e-4, name);
    }
}

#[test]
fn pointwise_losses_of_a_small_difference_match_hand_computed_values() {
    // d = ŷ − y = (3, −4, 0, 1): L1 = (3 + 4 + 0 + 1)/4 = 2, MSE = (9 + 16 + 0 + 1)/4 = 6.5.
    // With upstream 2: ∂L1 = 2·sign(d)/4 = (0.5, −0.5, 0, 0.5) (0 at d = 0),
    // ∂MSE = 2·2d/4 = d.
    let p = tensor(&[3.0, -3.0, 2.0, 1.0], &[4]);
    let t = tensor(&[0.0, 1.0, 2.0, 0.0], &[4]);
    let two = tensor(&[2.0], &[1]);
    assert_eq!(loss::l1_loss(&p, &t).unwrap().to_vec().unwrap(), vec![2.0]);
    assert_eq!(loss::mse_loss(&p, &t).unwrap().to_vec().unwrap(), vec![6.5]);
    assert_eq!(
        loss::l1_loss_backward(&two, &p, &t)
            .unwrap()
            .to_vec()
            .unwrap(),
        vec![0.5, -0.5, 0.0, 0.5]
    );
    assert_eq!(
        loss::mse_loss_backward(&two, &p, &t)
            .unwrap()
            .to_vec()
            .unwrap(),
        vec![3.0, -4.0, 0.0, 1.0]
    );
    // Charbonnier with ε = 4 on d = (3, 0): (√(9 + 16) + √(0 + 16))/2 = (5 + 4)/2 = 4.5;
    // its gradient with upstream 1 is d/√(d² + ε²)/2 = (3/5/2, 0) = (0.3, 0).
    let (p, t) = (tensor(&[3.0, 1.0], &[2]), tensor(&[0.0, 1.0], &[2]));
    assert_close(
        &loss::charbonnier_loss(&p, &t, 4.0)
            .unwrap()
            .to_vec()
            .unwrap(),
        &[4.5],
        1e-6,
        0.0,
        "charbonnier",
    );
    let g = loss::charbonnier_loss_backward(&tensor(&[1.0], &[1]), &p, &t, 4.0)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_close(&g, &[0.3, 0.0], 1e-6, 0.0, "charbonnier backward");
}

// ---------------------------------------------------------------- FFT loss

/// Mean over all frequencies of √(|F(ŷ − y)|² + ε), the DFT by its
/// definition F[u, v] = Σ_k Σ_l d[k, l]·exp(−2πi(uk/H + vl/W)).
fn fft_loss_ref(pred: &[f64], target: &[f32], shape: &[usize]) -> f64 {
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    let planes = pred.len() / (h * w);
    let tau = 2.0 * std::f64::consts::PI;
    let mut total = 0.0;
    for p in 0..planes {
        let d = |k: usize, l: usize| pred[(p * h + k) * w + l] - target[(p * h + k) * w + l] as f64;
        for u in 0..h {
            for v in 0..w {
                let (mut re, mut im) = (0.0, 0.0);
                for k in 0..h {
                    for l in 0..w {
                        let theta = tau * ((u * k) as f64 / h as f64 + (v * l) as f64 / w as f64);
                        re += d(k, l) * theta.cos();
                        im -= d(k, l) * theta.sin();
                    }
                }
                total += (re * re + im * im + loss::FFT_LOSS_EPS as f64).sqrt();
            }
        }
    }
    total / pred.len() as f64
}

const FFT_SHAPES: [&[usize]; 6] = [
    &[2, 3, 5, 6],
    &[1, 2, 7, 4],
    &[2, 1, 1, 9],
    &[1, 1, 8, 1],
    &[3, 6, 5],
    &[1, 2, 24, 19],
];

#[test]
fn fft_loss_matches_the_dft_by_definition() {
    for (si, shape) in FFT_SHAPES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let p = data(1600 + si as u64, n);
        let t = data(1700 + si as u64, n);
        let want = fft_loss_ref(&to_f64(&p), &t, shape);
        let got = loss::fft_loss(&tensor(&p, shape), &tensor(&t, shape)).unwrap();
        assert_eq!(got.shape(), &[1]);
        assert_close(
            &got.to_vec().unwrap(),
            &[want],
            1e-5,
            0.0,
            &format!("{shape:?}"),
        );
    }
}

#[test]
fn fft_loss_backward_matches_finite_differences() {
    let upstream = 0.7f32;
    for (si, shape) in FFT_SHAPES.iter().take(5).enumerate() {
        let n: usize = shape.iter().product();
        let p = data(1800 + si as u64, n);
        let t = data(1900 + si as u64, n);
        let want = numeric_grad(&p, |ps| upstream as f64 * fft_loss_ref(ps, &t, shape));
        let got = loss::fft_loss_backward(
            &tensor(&[upstream], &[1]),
            &tensor(&p, shape),
            &tensor(&t, shape),
        )
        .unwrap();
        assert_eq!(got.shape(), &shape[..]);
        assert_grad(&got.to_vec().unwrap(), &want, 1e-4, &format!("{shape:?}"));
    }
}

#[test]
fn fft_loss_of_a_2x2_difference_matches_hand_computed_values() {
    // d = [[1, 2], [3, 4]]. For H = W = 2 the DFT kernel e^{−πi(uk + vl)} is
    // (−1)^{uk+vl}, so F = [[1+2+3+4, 1−2+3−4], [1+2−3−4, 1−2−3+4]]
    // = [[10, −2], [−4, 0]]: all real. The loss is the mean modulus
    // (10 + 2 + 4 + √ε)/4 = 4 + 2.5e-7 (with ε = 1e-12): f32 accumulation
    // gives 4, an f64 one 4 + 2.5e-7 rounded to the next f32 (4.0000005);
    // both lie within 1e-7 relative of the exact value.
    // The gradient is the adjoint DFT of F/|F| over 4: with s = sign(F) =
    // [[1, −1], [−1, 0]] (0/√ε = 0), ∂L/∂d[k, l] = Σ_{u,v} s[u, v](−1)^{uk+vl}/4:
    // d[0,0]: (1 − 1 − 1)/4 = −1/4; d[0,1]: (1 + 1 − 1)/4 = 1/4;
    // d[1,0]: (1 − 1 + 1)/4 = 1/4;  d[1,1]: (1 + 1 + 1)/4 = 3/4.
    let p = tensor(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]);
    let t = tensor(&[0.0; 4], &[1, 1, 2, 2]);
    assert_close(
        &loss::fft_loss(&p, &t).unwrap().to_vec().unwrap(),
        &[4.0 + 1e-6 / 4.0],
        1e-7,
        0.0,
        "loss",
    );
    let g = loss::fft_loss_backward(&tensor(&[1.0], &[1]), &p, &t)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_close(&g, &[-0.25, 0.25, 0.25, 0.75], 1e-6, 1e-7, "gradient");
    // Equal images: every modulus is √ε, the gradient exactly 0.
    let g = loss::fft_loss_backward(&tensor(&[1.0], &[1]), &p, &p)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(g, vec![0.0; 4]);
}

#[test]
fn losses_check_their_shapes() {
    let a = tensor(&[0.0; 6], &[2, 3]);
    let b = tensor(&[0.0; 6], &[3, 2]);
    for name in ["l1", "mse", "charbonnier", "fft"] {
        let e = match name {
            "l1" => loss::l1_loss(&a, &b),
            "mse" => loss::mse_loss(&a, &b),
            "charbonnier" => loss::charbonnier_loss(&a, &b, 1e-3),
            _ => loss::fft_loss(&a, &b),
        }
        .unwrap_err();
        assert!(matches!(e, Error::Shape(_)), "{e}");
        let e = e.to_string();
        assert!(
            e.contains(name) && e.contains("[2, 3]") && e.contains("[3, 2]"),
            "{e}"
        );
    }
    let e = loss::mse_loss_backward(&tensor(&[1.0, 1.0], &[2]), &a, &a)
        .unwrap_err()
        .to_string();
    assert!(e.contains("mse_loss_backward") && e.contains("[2]"), "{e}");
    let e = loss::fft_loss(&tensor(&[1.0; 3], &[3]), &tensor(&[1.0; 3], &[3]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("fft_loss") && e.contains("[3]"), "{e}");
    assert!(matches!(
        loss::charbonnier_loss(&a, &a, 0.0).unwrap_err(),
        Error::InvalidArgument(_)
    ));
}
