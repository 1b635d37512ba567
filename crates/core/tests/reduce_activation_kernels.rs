//! Reductions over axes, activations and softmax against f64 CPU references
//! written here, and every backward against central finite differences of
//! those references (L = Σ G ⊙ op(x) for a random G).

mod common;

use common::{assert_close, data, device};
use spikeir_core::ops::{activation as act, reduce};
use spikeir_core::{Error, Tensor};

fn tensor(values: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(&device(), values, shape).unwrap()
}

/// Central differences of `f` at `x` in f64.
fn numeric_grad(x: &[f32], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let mut xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
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
/// that produced them.
fn assert_grad(got: &[f32], want: &[f64], rtol: f64, what: &str) {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert_close(got, want, rtol, rtol * scale + 1e-12, what);
}

fn dot(g: &[f32], y: &[f64]) -> f64 {
    g.iter().zip(y).map(|(&a, &b)| a as f64 * b).sum()
}

// ---------------------------------------------------------------- reductions

/// Reference reduction: walks every input index and adds it to the output
/// index with the reduced coordinates dropped (or set to 0 with keepdim).
fn reduce_ref(
    x: &[f64],
    shape: &[usize],
    axes: &[usize],
    keepdim: bool,
    mean: bool,
) -> (Vec<usize>, Vec<f64>) {
    let out_full: Vec<usize> = shape
        .iter()
        .enumerate()
        .map(|(d, &s)| if axes.contains(&d) { 1 } else { s })
        .collect();
    let n_out: usize = out_full.iter().product();
    let mut out = vec![0.0f64; n_out];
    for (flat, &v) in x.iter().enumerate() {
        let mut rem = flat;
        let mut coords = vec![0; shape.len()];
        for d in (0..shape.len()).rev() {
            coords[d] = rem % shape[d];
            rem /= shape[d];
        }
        let mut o = 0;
        for d in 0..shape.len() {
            o = o * out_full[d] + if axes.contains(&d) { 0 } else { coords[d] };
        }
        out[o] += v;
    }
    if mean {
        let r: usize = axes.iter().map(|&a| shape[a]).product();
        out.iter_mut().for_each(|v| *v /= r as f64);
    }
    let out_shape = if keepdim {
        out_full
    } else {
        shape
            .iter()
            .enumerate()
            .filter(|(d, _)| !axes.contains(d))
            .map(|(_, &s)| s)
            .collect()
    };
    (out_shape, out)
}

fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

#[test]
fn sum_and_mean_match_the_cpu_over_every_set_of_axes() {
    let shapes: [&[usize]; 4] = [&[3, 5, 7], &[2, 3, 4, 5], &[2, 3, 1, 5, 7], &[1, 4, 1, 6]];
    for (si, shape) in shapes.iter().enumerate() {
        let n: usize = shape.iter().product();
        let x = data(10 + si as u64, n);
        let t = tensor(&x, shape);
        let rank = shape.len();
        for bits in 1..(1u32 << rank) {
            let axes: Vec<usize> = (0..rank).filter(|d| bits & (1 << d) != 0).collect();
            for keepdim in [false, true] {
                for mean in [false, true] {
                    let (want_shape, want) = reduce_ref(&to_f64(&x), shape, &axes, keepdim, mean);
                    let got = if mean {
                        reduce::mean_axes(&t, &axes, keepdim)
                    } else {
                        reduce::sum_axes(&t, &axes, keepdim)
                    }
                    .unwrap();
                    let what = format!(
                        "{} {shape:?} axes {axes:?} keepdim {keepdim}",
                        if mean { "mean" } else { "sum" }
                    );
                    assert_eq!(got.shape(), &want_shape[..], "{what}");
                    assert_close(&got.to_vec().unwrap(), &want, 1e-5, 1e-5, &what);
                }
            }
        }
    }
}

/// f32 sums of many values: compare against the f64 sum with an absolute
/// tolerance proportional to Σ|x| (the bound on f32 rounding of any order).
fn check_large(x: &[f32], shape: &[usize], axes: &[usize], mean: bool) {
    let t = tensor(x, shape);
    let got = if mean {
        reduce::mean_axes(&t, axes, false)
    } else {
        reduce::sum_axes(&t, axes, false)
    }
    .unwrap();
    let (want_shape, want) = reduce_ref(&to_f64(x), shape, axes, false, mean);
    let abs: Vec<f64> = x.iter().map(|v| v.abs() as f64).collect();
    let (_, abs_sums) = reduce_ref(&abs, shape, axes, false, mean);
    let tol = abs_sums.iter().fold(0.0f64, |m, &v| m.max(v)) * 1e-6;
    assert_eq!(got.shape(), &want_shape[..]);
    assert_close(
        &got.to_vec().unwrap(),
        &want,
        0.0,
        tol,
        &format!("{shape:?} axes {axes:?}"),
    );
}

#[test]
fn long_reductions_take_the_tree_and_multi_pass_paths() {
    // Per-channel sums of NCHW: 102 000 values per channel, 50 chunks each,
    // then a second tree pass over the chunks.
    let shape = [4, 3, 150, 170];
    let x = data(1, shape.iter().product());
    check_large(&x, &shape, &[0, 2, 3], false);
    check_large(&x, &shape, &[0, 2, 3], true);
    // Rows of 3000: two chunks per row, then a serial pass.
    let x = data(2, 5 * 3000);
    check_large(&x, &[5, 3000], &[1], false);
    // Many outputs with rows of 40: one invocation per output.
    let x = data(3, 9000 * 40);
    check_large(&x, &[9000, 40], &[1], true);
    // Mean over T of a time-major spike tensor [T, B, C, H, W].
    let shape = [4, 2, 3, 17, 19];
    let x = data(4, shape.iter().product());
    check_large(&x, &shape, &[0], true);
}

#[test]
fn sum_all_of_a_million_values_is_accurate() {
    let n = 1_000_003;
    // Positive values, so a sum without cancellation: the f32 tree should be
    // within a few units of f32 rounding of the exact sum.
    let x: Vec<f32> = data(7, n).iter().map(|v| v.abs() + 0.5).collect();
    let got = reduce::sum_all(&tensor(&x, &[n])).unwrap();
    assert_eq!(got.shape(), &[1]);
    let want: f64 = x.iter().map(|&v| v as f64).sum();
    assert_close(&got.to_vec().unwrap(), &[want], 2e-6, 0.0, "sum_all 1e6");
    // Also across dimensions and with 70 000 values (35 chunks, two tree passes).
    let x = data(8, 70_000);
    let got = reduce::sum_all(&tensor(&x, &[7, 100, 100]))
        .unwrap()
        .to_vec()
        .unwrap();
    let abs: f64 = x.iter().map(|v| v.abs() as f64).sum();
    assert_close(
        &got,
        &[x.iter().map(|&v| v as f64).sum()],
        0.0,
        abs * 1e-6,
        "sum_all 7x100x100",
    );
}

#[test]
fn reductions_of_a_small_matrix_match_hand_computed_values() {
    // [[1, 2, 3], [4, 5, 6]]: column sums 1+4, 2+5, 3+6 = [5, 7, 9]; row
    // means (1+2+3)/3 = 2 and (4+5+6)/3 = 5; total 21.
    let t = tensor(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
    assert_eq!(
        reduce::sum_axes(&t, &[0], false).unwrap().to_vec().unwrap(),
        vec![5.0, 7.0, 9.0]
    );
    let m = reduce::mean_axes(&t, &[1], true).unwrap();
    assert_eq!(m.shape(), &[2, 1]);
    assert_eq!(m.to_vec().unwrap(), vec![2.0, 5.0]);
    let all = reduce::sum_axes(&t, &[0, 1], false).unwrap();
    assert_eq!(all.shape(), &[] as &[usize]);
    assert_eq!(all.to_vec().unwrap(), vec![21.0]);
    assert_eq!(reduce::sum_all(&t).unwrap().to_vec().unwrap(), vec![21.0]);
}

#[test]
fn reduction_backward_matches_finite_differences() {
    let cases: [(&[usize], &[usize], bool); 4] = [
        (&[2, 3, 4, 5], &[0, 2], false),
        (&[3, 5, 7], &[1], true),
        (&[2, 3, 5], &[0, 1, 2], false),
        (&[4, 1, 3], &[0, 1], true),
    ];
    for (ci, &(shape, axes, keepdim)) in cases.iter().enumerate() {
        let n: usize = shape.iter().product();
        let x = data(20 + ci as u64, n);
        for mean in [false, true] {
            let (out_shape, _) = reduce_ref(&to_f64(&x), shape, axes, keepdim, mean);
            let g = data(40 + ci as u64, out_shape.iter().product());
            let want = numeric_grad(&x, |xs| {
                dot(&g, &reduce_ref(xs, shape, axes, keepdim, mean).1)
            });
            let gt = tensor(&g, &out_shape);
            let got = if mean {
                reduce::mean_axes_backward(&gt, shape, axes, keepdim)
            } else {
                reduce::sum_axes_backward(&gt, shape, axes, keepdim)
            }
            .unwrap();
            assert_eq!(got.shape(), shape);
            assert_grad(
                &got.to_vec().unwrap(),
                &want,
                1e-4,
                &format!("{shape:?} {axes:?} mean {mean}"),
            );
        }
    }
    let x = data(60, 30);
    let want = numeric_grad(&x, |xs| -1.5 * xs.iter().sum::<f64>());
    let got = reduce::sum_all_backward(&tensor(&[-1.5], &[1]), &[5, 6]).unwrap();
    assert_eq!(got.shape(), &[5, 6]);
    assert_grad(&got.to_vec().unwrap(), &want, 1e-4, "sum_all_backward");
}

#[test]
fn bad_axes_and_gradient_shapes_are_reported() {
    let t = tensor(&data(1, 24), &[2, 3, 4]);
    let e = reduce::sum_axes(&t, &[3], false).unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(_)) && e.to_string().contains("[2, 3, 4]"),
        "{e}"
    );
    let e = reduce::mean_axes(&t, &[1, 1], false)
        .unwrap_err()
        .to_string();
    assert!(e.contains("twice") && e.contains("mean"), "{e}");
    assert!(reduce::sum_axes(&t, &[], false).is_err());
    let g = tensor(&[0.0; 4], &[4]);
    let e = reduce::sum_axes_backward(&g, &[2, 3, 4], &[1], false).unwrap_err();
    assert!(
        matches!(e, Error::Shape(_)) && e.to_string().contains("[2, 4]"),
        "{e}"
    );
}

// ---------------------------------------------------------------- activations

/// erf in f64: the Maclaurin series below 3, the continued fraction
/// erfc(x) = e^{−x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) above.
fn erf(x: f64) -> f64 {
    let z = x.abs();
    let r = if z < 3.0 {
        let (mut term, mut sum, mut n) = (z, z, 0.0);
        while term.abs() > 1e-18 * sum.abs() {
            n += 1.0;
            term *= -z * z / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let mut k = z;
        for i in (1..=200).rev() {
            k = z + (i as f64 / 2.0) / k;
        }
        1.0 - (-z * z).exp() / (std::f64::consts::PI.sqrt() * k)
    };
    r.copysign(x)
}

fn gelu_ref(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

#[test]
fn the_reference_erf_agrees_with_itself_and_known_values() {
    // Both branches of the reference meet at 3, and erf(1) = 0.8427007929497149.
    let series_at = |z: f64| {
        let (mut term, mut sum, mut n) = (z, z, 0.0);
        while term.abs() > 1e-18 * sum.abs() {
            n += 1.0;
            term *= -z * z / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    };
    assert!((series_at(3.0) - erf(3.0)).abs() < 1e-12);
    assert!((erf(1.0) - 0.842_700_792_949_714_9).abs() < 1e-15);
}

type ActRef = fn(f64, f64) -> f64;

/// (name, scalar argument, reference, absolute tolerance of the forward).
/// Gelu's is 1e-6: its erf is accurate to ~2e-7 absolute, so gelu = x·Φ(x)
/// is accurate to ~|x|·1e-7 absolute but not relative in the left tail,
/// where Φ(x) = (1 + erf)/2 is a small difference.
fn activation_cases() -> Vec<(&'static str, f32, ActRef, f64)> {
    vec![
        ("relu", 0.0, |x, _| x.max(0.0), 1e-7),
        (
            "leaky_relu",
            0.1,
            |x, s| if x > 0.0 { x } else { s * x },
            1e-7,
        ),
        ("gelu", 0.0, |x, _| gelu_ref(x), 1e-6),
        ("sigmoid", 0.0, |x, _| 1.0 / (1.0 + (-x).exp()), 1e-7),
        ("tanh", 0.0, |x, _| x.tanh(), 1e-7),
    ]
}

fn act_forward(name: &str, x: &Tensor, s: f32) -> Tensor {
    match name {
        "relu" => act::relu(x),
        "leaky_relu" => act::leaky_relu(x, s),
        "gelu" => act::gelu(x),
        "sigmoid" => act::sigmoid(x),
        "tanh" => act::tanh(x),
        _ => unreachable!(),
    }
    .unwrap()
}

/// The backward as the tape would call it: with the input for relu, leaky
/// relu and gelu, with the output for sigmoid and tanh.
fn act_backward(name: &str, g: &Tensor, x: &Tensor, y: &Tensor, s: f32) -> Tensor {
    match name {
        "relu" => act::relu_backward(g, x),
        "leaky_relu" => act::leaky_relu_backward(g, x, s),
        "gelu" => act::gelu_backward(g, x),
        "sigmoid" => act::sigmoid_backward(g, y),
        "tanh" => act::tanh_backward(g, y),
        _ => unreachable!(),
    }
    .unwrap()
}

#[test]
fn activations_match_the_cpu_including_large_inputs() {
    // 1031 values in [−6, 6] plus zero, tiny and huge ones (overflow of e^x).
    let mut x: Vec<f32> = data(5, 1031).iter().map(|v| 6.0 * v).collect();
    x.extend([
        0.0, 1e-6, -1e-6, 0.05, -0.05, 30.0, -30.0, 100.0, -100.0, 1e4, -1e4,
    ]);
    let t = tensor(&x, &[2, x.len() / 2]);
    for (name, s, f, atol) in activation_cases() {
        let want: Vec<f64> = x.iter().map(|&v| f(v as f64, s as f64)).collect();
        let got = act_forward(name, &t, s).to_vec().unwrap();
        assert_close(&got, &want, 2e-6, atol, name);
    }
}

#[test]
fn gelu_uses_an_erf_accurate_to_1e_minus_6() {
    // gelu(x) = x(1 + erf(x/√2))/2, so erf(x/√2) = 2·gelu(x)/x − 1 recovers the
    // kernel's erf (up to f32 rounding of gelu, ~1e-7) on a dense grid.
    let x: Vec<f32> = (-1200..=1200)
        .filter(|&i| i != 0)
        .map(|i| i as f32 * 0.005)
        .collect();
    let got = act::gelu(&tensor(&x, &[x.len()]))
        .unwrap()
        .to_vec()
        .unwrap();
    for (&v, &gv) in x.iter().zip(&got) {
        let implied = 2.0 * gv as f64 / v as f64 - 1.0;
        let want = erf(v as f64 / std::f64::consts::SQRT_2);
        assert!(
            (implied - want).abs() < 1e-6,
            "erf({}) = {implied}, want {want}",
            v as f64 / std::f64::consts::SQRT_2
        );
    }
}

#[test]
fn activation_values_at_hand_derived_points() {
    // sigmoid(0) = 1/2; sigmoid(ln 3) = 1/(1 + 1/3) = 3/4;
    // tanh(ln 2) = (2 − 1/2)/(2 + 1/2) = 3/5; leaky_relu(−2, 0.1) = −0.2;
    // gelu(0) = 0 and gelu(x) → x for large x (erf(x/√2) = 1 in f32 beyond x ≈ 6).
    let ln2 = std::f32::consts::LN_2;
    let ln3 = 3f32.ln();
    let sig = act::sigmoid(&tensor(&[0.0, ln3], &[2]))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_close(&sig, &[0.5, 0.75], 1e-6, 0.0, "sigmoid");
    let th = act::tanh(&tensor(&[ln2, -ln2], &[2]))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_close(&th, &[0.6, -0.6], 1e-6, 0.0, "tanh");
    let lr = act::leaky_relu(&tensor(&[-2.0, 3.0], &[2]), 0.1)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_close(&lr, &[-0.2, 3.0], 1e-6, 0.0, "leaky_relu");
    let ge = act::gelu(&tensor(&[0.0, 8.0], &[2]))
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(ge, vec![0.0, 8.0]);
}

#[test]
fn activation_backward_matches_finite_differences() {
    // Inputs kept 0.01 away from relu's kink, where differences are meaningless.
    let x: Vec<f32> = data(9, 517)
        .iter()
        .map(|v| 4.0 * v)
        .map(|v| if v.abs() < 0.01 { v + 0.02 } else { v })
        .collect();
    let g = data(10, x.len());
    let t = tensor(&x, &[11, 47]);
    let gt = tensor(&g, &[11, 47]);
    for (name, s, f, _) in activation_cases() {
        let want = numeric_grad(&x, |xs| {
            xs.iter()
                .zip(&g)
                .map(|(&v, &gi)| gi as f64 * f(v, s as f64))
                .sum()
        });
        let y = act_forward(name, &t, s);
        let got = act_backward(name, &gt, &t, &y, s).to_vec().unwrap();
        // Sigmoid's and tanh's derivatives come from the f32 output: where it
        // is close to ±1, 1 − y² keeps only the absolute precision of y
        // (the floor in assert_grad).
        assert_grad(&got, &want, 1e-4, name);
    }
}

// ---------------------------------------------------------------- softmax

fn softmax_ref(x: &[f64], shape: &[usize], axis: usize) -> Vec<f64> {
    let outer: usize = shape[..axis].iter().product();
    let len = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    let mut y = vec![0.0; x.len()];
    for o in 0..outer {
        for k in 0..inner {
            let idx = |l: usize| (o * len + l) * inner + k;
            let m = (0..len)
                .map(|l| x[idx(l)])
                .fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = (0..len).map(|l| (x[idx(l)] - m).exp()).sum();
            for l in 0..len {
                y[idx(l)] = (x[idx(l)] - m).exp() / s;
            }
        }
    }
    y
}

/// Shapes and axes covering the invocation-per-row kernel (short rows, any
/// axis) and the workgroup-per-row one (a row of 1500, and rows of 200 with
/// a stride of 3).
const SOFTMAX_CASES: [(&[usize], usize); 7] = [
    (&[3, 5, 7], 0),
    (&[3, 5, 7], 1),
    (&[3, 5, 7], 2),
    (&[2, 1, 4], 1),
    (&[2, 1500], 1),
    (&[2, 200, 3], 1),
    (&[4, 9, 2, 3], 3),
];

#[test]
fn softmax_matches_the_cpu_on_every_axis_and_is_stable() {
    for (ci, &(shape, axis)) in SOFTMAX_CASES.iter().enumerate() {
        let n: usize = shape.iter().product();
        // Values up to ±100: exp would overflow f32 (beyond e^88) with any
        // shift but the row's maximum. x − max is rounded to f32 steps of
        // up to 2^-17 = 7.6e-6 for |x − max| < 256, a relative error of exp.
        let x: Vec<f32> = data(70 + ci as u64, n).iter().map(|v| 100.0 * v).collect();
        let got = act::softmax(&tensor(&x, shape), axis)
            .unwrap()
            .to_vec()
            .unwrap();
        assert_close(
            &got,
            &softmax_ref(&to_f64(&x), shape, axis),
            2e-5,
            1e-30,
            &format!("{shape:?} axis {axis}"),
        );
    }
    // Hand-derived: softmax(0, ln 2, ln 5) = (1, 2, 5)/8, and a shift by 1000
    // changes nothing (the largest exponent is then e^0).
    let v = [0.0f32, 2f32.ln(), 5f32.ln()];
    let shifted: Vec<f32> = v.iter().map(|x| x + 1000.0).collect();
    for (x, tol) in [(v.to_vec(), 1e-6), (shifted, 1e-4)] {
        let got = act::softmax(&tensor(&x, &[1, 3]), 1)
            .unwrap()
            .to_vec()
            .unwrap();
        // At 1000 the inputs themselves are rounded to f32 steps of 6e-5.
        assert_close(
            &got,
            &[0.125, 0.25, 0.625],
            tol,
            0.0,
            "softmax(0, ln 2, ln 5)",
        );
    }
}

#[test]
fn softmax_backward_matches_finite_differences() {
    for (ci, &(shape, axis)) in SOFTMAX_CASES.iter().enumerate() {
        let n: usize = shape.iter().product();
        let x: Vec<f32> = data(80 + ci as u64, n).iter().map(|v| 3.0 * v).collect();
        let g = data(90 + ci as u64, n);
        let want = numeric_grad(&x, |xs| dot(&g, &softmax_ref(xs, shape, axis)));
        let y = act::softmax(&tensor(&x, shape), axis).unwrap();
        let got = act::softmax_backward(&tensor(&g, shape), &y, axis).unwrap();
        assert_grad(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            &format!("{shape:?} axis {axis}"),
        );
    }
}

#[test]
fn activation_errors_name_the_op_and_shapes() {
    let a = tensor(&[0.0; 6], &[2, 3]);
    let b = tensor(&[0.0; 6], &[3, 2]);
    let e = act::sigmoid_backward(&a, &b).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e}");
    let e = e.to_string();
    assert!(
        e.contains("sigmoid_backward") && e.contains("[2, 3]") && e.contains("[3, 2]"),
        "{e}"
    );
    let e = act::softmax(&a, 2).unwrap_err().to_string();
    assert!(e.contains("softmax") && e.contains("[2, 3]"), "{e}");
    assert!(matches!(
        act::leaky_relu(&a, f32::NAN).unwrap_err(),
        Error::InvalidArgument(_)
    ));
}
