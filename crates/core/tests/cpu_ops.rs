//! The CPU backend's kernels (`spikeir_core::cpu`) against the GPU ops on the
//! same random inputs. The GPU ops are verified elsewhere against f64
//! references and finite differences, so agreement here (≈1e-5 relative)
//! checks shapes, conventions, formulas and backward passes of the CPU port.
//! Shapes are random with odd sizes and batches > 1; a few are large enough
//! (> 32K elements) to take the threaded paths. A few hand-derived golden
//! values pin the conventions independently of either backend.

mod common;

use common::{data, device, numel, Rng};
use spikeir_core::cpu::{activation as cact, elementwise as cel, layout as clay, pool as cpool};
use spikeir_core::cpu::{reduce as cred, resample as cres};
use spikeir_core::ops::{self, activation as act, layout, pool, reduce, resample};
use spikeir_core::ops::{BinaryOp, UnaryOp};
use spikeir_core::Tensor;

fn up(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(&device(), v, shape).unwrap()
}

/// Values in [−scale, scale) with some exact zeros mixed in.
fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut v: Vec<f32> = data(seed, n).iter().map(|&x| x * scale).collect();
    for i in (0..n).step_by(17) {
        v[i] = 0.0;
    }
    v
}

/// Asserts |cpu − gpu| ≤ atol + rtol·|gpu| elementwise (NaN matches NaN,
/// equal infinities match).
fn close(cpu: &[f32], gpu: &[f32], rtol: f32, atol: f32, what: &str) {
    assert_eq!(cpu.len(), gpu.len(), "{what}: length");
    for (i, (&c, &g)) in cpu.iter().zip(gpu).enumerate() {
        let ok = c == g || (c.is_nan() && g.is_nan()) || (c - g).abs() <= atol + rtol * g.abs();
        assert!(ok, "{what}: element {i}: cpu {c}, gpu {g}");
    }
}

/// Reads back a GPU op's result.
fn gpu(t: spikeir_core::Result<Tensor>) -> Vec<f32> {
    t.unwrap().to_vec().unwrap()
}

const RTOL: f32 = 1e-5;

// ---------------------------------------------------------------- elementwise

#[test]
fn unary_ops_match_gpu_for_every_variant() {
    let shape = [3, 5, 7, 9];
    let x = values(1, numel(&shape), 3.0);
    let pos: Vec<f32> = x.iter().map(|v| v.abs() + 0.01).collect();
    let xt = up(&x, &shape);
    let pt = up(&pos, &shape);
    let mut cases: Vec<(UnaryOp, bool)> = vec![
        (UnaryOp::Neg, false),
        (UnaryOp::Abs, false),
        (UnaryOp::Sign, false),
        (UnaryOp::Exp, false),
        (UnaryOp::Log, true),
        (UnaryOp::Sqrt, true),
        (UnaryOp::AddScalar(1.5), false),
        (UnaryOp::SubScalar(-0.25), false),
        (UnaryOp::RsubScalar(2.0), false),
        (UnaryOp::MulScalar(-3.0), false),
        (UnaryOp::DivScalar(7.0), false),
        (UnaryOp::RdivScalar(1.0), true),
    ];
    // pow's rules: odd integers keep the sign, other exponents use |x|,
    // 0^s is 0 (or 1 for s = 0); the shortcuts s = 1, 2 included.
    for s in [2.0, 3.0, -1.0, 0.5, 0.0, 1.0, 2.5, -2.0, 1.0 / 3.0, -3.0] {
        cases.push((UnaryOp::PowScalar(s), false));
    }
    for (op, positive) in cases {
        let (xs, t) = if positive { (&pos, &pt) } else { (&x, &xt) };
        close(
            &cel::unary(xs, op),
            &gpu(ops::unary(t, op)),
            RTOL,
            1e-6,
            &format!("{op:?}"),
        );
    }
    // Large enough for the threaded path.
    let big = values(2, 70_001, 2.0);
    let op = UnaryOp::PowScalar(3.0);
    close(
        &cel::unary(&big, op),
        &gpu(ops::unary(&up(&big, &[70_001]), op)),
        RTOL,
        1e-6,
        "pow big",
    );
}

#[test]
fn binary_ops_with_broadcasting_match_gpu() {
    let pairs: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![2, 3, 5, 7], vec![2, 3, 5, 7]),
        (vec![2, 3, 5, 7], vec![]),
        (vec![1], vec![4, 3]),
        (vec![2, 3, 5, 7], vec![1, 3, 1, 1]),
        (vec![1, 3, 1, 1], vec![2, 3, 5, 7]),
        (vec![2, 1, 5, 7], vec![1, 3, 1, 1]),
        (vec![3, 1], vec![1, 5]),
        (vec![4, 1, 6], vec![5, 1]),
        (vec![7], vec![2, 3, 5, 7]),
        (vec![2, 3, 5, 1], vec![2, 3, 1, 7]),
        (vec![3, 1, 4, 1, 2], vec![3, 1, 5, 2]),
        (vec![5, 7], vec![1, 5, 7]),
        (vec![4, 16, 33, 31], vec![1, 16, 1, 1]),
        (vec![2, 1, 130, 131], vec![2, 3, 1, 131]),
        (vec![70_000], vec![1]),
    ];
    let ops_list = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Less,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
    ];
    for (k, (sa, sb)) in pairs.iter().enumerate() {
        // Quantised so that `less`, `maximum` and `minimum` meet ties; b
        // shifted away from 0 for `div`.
        let a: Vec<f32> = data(10 + k as u64, numel(sa))
            .iter()
            .map(|v| (v * 4.0).round() / 2.0)
            .collect();
        let b: Vec<f32> = data(50 + k as u64, numel(sb))
            .iter()
            .map(|v| {
                let q = (v * 4.0).round() / 2.0;
                if q == 0.0 {
                    0.5
                } else {
                    q
                }
            })
            .collect();
        let (ta, tb) = (up(&a, sa), up(&b, sb));
        for op in ops_list {
            let want = gpu(ops::binary(&ta, &tb, op));
            close(
                &cel::binary(&a, sa, &b, sb, op),
                &want,
                RTOL,
                0.0,
                &format!("{op:?} {sa:?} {sb:?}"),
            );
        }
    }
}

#[test]
fn fill_matches_gpu() {
    let t = up(&[0.0; 7], &[7]);
    ops::fill(&t, -2.5).unwrap();
    let mut out = vec![1.0f32; 7];
    cel::fill(&mut out, -2.5);
    assert_eq!(out, t.to_vec().unwrap());
    let mut big = vec![0.0f32; 40_000];
    cel::fill(&mut big, 3.25);
    assert!(big.iter().all(|&v| v == 3.25));
}

#[test]
fn elementwise_golden_values() {
    // pow: (−2)³ = −8 (odd exponent keeps the sign); (−8)^(1/3) uses |−8|,
    // so 2, not NaN; 0^−1 = 0 and 0^0 = 1 by the GPU's definition; (−3)² = 9.
    let x = [-2.0f32, -8.0, 0.0, 0.0, -3.0];
    assert_eq!(cel::unary(&x[..1], UnaryOp::PowScalar(3.0)), [-8.0]);
    let cube_root = cel::unary(&x[1..2], UnaryOp::PowScalar(1.0 / 3.0))[0];
    assert!((cube_root - 2.0).abs() < 1e-6, "{cube_root}");
    assert_eq!(cel::unary(&x[2..3], UnaryOp::PowScalar(-1.0)), [0.0]);
    assert_eq!(cel::unary(&x[3..4], UnaryOp::PowScalar(0.0)), [1.0]);
    assert_eq!(cel::unary(&x[4..5], UnaryOp::PowScalar(2.0)), [9.0]);
    // sign(0) = 0, unlike f32::signum.
    assert_eq!(
        cel::unary(&[0.0, -4.0, 2.0], UnaryOp::Sign),
        [0.0, -1.0, 1.0]
    );
    // [[1], [2]] − [10, 20, 30] broadcasts to [[−9, −19, −29], [−8, −18, −28]].
    let z = cel::binary(
        &[1.0, 2.0],
        &[2, 1],
        &[10.0, 20.0, 30.0],
        &[3],
        BinaryOp::Sub,
    );
    assert_eq!(z, [-9.0, -19.0, -29.0, -8.0, -18.0, -28.0]);
    // less is strict: 1 < 1 is false.
    assert_eq!(
        cel::binary(&[1.0, 0.0], &[2], &[1.0], &[1], BinaryOp::Less),
        [0.0, 1.0]
    );
}

// ---------------------------------------------------------------- reductions

fn reduction_cases() -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut rng = Rng(7);
    let mut cases = Vec::new();
    for _ in 0..24 {
        let rank = rng.size(1, 5);
        let shape: Vec<usize> = (0..rank).map(|_| rng.size(1, 7)).collect();
        let mut axes: Vec<usize> = (0..rank).filter(|_| rng.below(2) == 1).collect();
        if axes.is_empty() {
            axes.push(rng.below(rank));
        }
        cases.push((shape, axes));
    }
    // Threaded paths: per-channel sums, leading and trailing reductions,
    // few outputs over long reductions (the reduced range split into parts
    // that cut rows), and everything.
    cases.extend([
        (vec![4, 16, 40, 41], vec![0, 2, 3]),
        (vec![200, 301], vec![0]),
        (vec![301, 200], vec![1]),
        (vec![5, 3, 20_001], vec![0, 2]),
        (vec![40_001, 3], vec![0]),
        (vec![2, 3, 70, 90], vec![0, 1, 2, 3]),
        (vec![3, 50, 7, 60], vec![1, 3]),
    ]);
    cases
}

/// Σ|x| over the largest reduced set: f32 sums on the GPU carry rounding
/// error proportional to it, whatever the (possibly cancelled) result.
fn sum_tolerance(shape: &[usize], axes: &[usize], x: &[f32]) -> f32 {
    let r: usize = axes.iter().map(|&a| shape[a]).product();
    let mean_abs = x.iter().map(|v| v.abs() as f64).sum::<f64>() / x.len().max(1) as f64;
    (2e-7 * r as f64 * mean_abs) as f32 + 1e-6
}

#[test]
fn sum_mean_max_over_axes_match_gpu() {
    for (k, (shape, axes)) in reduction_cases().into_iter().enumerate() {
        let x = values(100 + k as u64, numel(&shape), 1.0);
        let t = up(&x, &shape);
        let what = format!("{shape:?} over {axes:?}");
        let tol = sum_tolerance(&shape, &axes, &x);
        let r: usize = axes.iter().map(|&a| shape[a]).product();
        for keepdim in [false, true] {
            close(
                &cred::sum_axes(&x, &shape, &axes),
                &gpu(reduce::sum_axes(&t, &axes, keepdim)),
                RTOL,
                tol,
                &format!("sum {what}"),
            );
        }
        close(
            &cred::mean_axes(&x, &shape, &axes),
            &gpu(reduce::mean_axes(&t, &axes, false)),
            RTOL,
            tol / r as f32,
            &format!("mean {what}"),
        );
        close(
            &cred::max_axes(&x, &shape, &axes),
            &gpu(reduce::max_axes(&t, &axes, true)),
            0.0,
            0.0,
            &format!("max {what}"),
        );
    }
}

#[test]
fn sum_all_matches_gpu() {
    for (k, n) in [1usize, 7, 1000, 100_003].into_iter().enumerate() {
        let x = values(200 + k as u64, n, 1.0);
        let tol = sum_tolerance(&[n], &[0], &x);
        close(
            &cred::sum_all(&x),
            &gpu(reduce::sum_all(&up(&x, &[n]))),
            RTOL,
            tol,
            &format!("sum_all {n}"),
        );
        let g = [0.75f32];
        let want = gpu(reduce::sum_all_backward(&up(&g, &[1]), &[n]));
        close(
            &cred::sum_all_backward(&g, n),
            &want,
            0.0,
            0.0,
            &format!("sum_all_backward {n}"),
        );
    }
}

#[test]
fn reduction_backwards_match_gpu() {
    for (k, (shape, axes)) in reduction_cases().into_iter().enumerate() {
        let out_len = numel(&shape) / axes.iter().map(|&a| shape[a]).product::<usize>();
        let g = values(300 + k as u64, out_len, 1.0);
        let kept: Vec<usize> = (0..shape.len())
            .map(|d| if axes.contains(&d) { 1 } else { shape[d] })
            .collect();
        let gt = up(&g, &kept);
        let what = format!("{shape:?} over {axes:?}");
        let want = gpu(reduce::sum_axes_backward(&gt, &shape, &axes, true));
        close(
            &cred::sum_axes_backward(&g, &shape, &axes),
            &want,
            0.0,
            0.0,
            &format!("sum backward {what}"),
        );
        let want = gpu(reduce::mean_axes_backward(&gt, &shape, &axes, true));
        close(
            &cred::mean_axes_backward(&g, &shape, &axes),
            &want,
            RTOL,
            0.0,
            &format!("mean backward {what}"),
        );
    }
}

#[test]
fn reduction_golden_values_and_empty_axes() {
    // x = [[1, 2, 3], [4, 5, 6]]: column sums 1+4, 2+5, 3+6 = [5, 7, 9]; row
    // sums 1+2+3 = 6 and 4+5+6 = 15; column means [2.5, 3.5, 4.5]; row
    // maxima [3, 6]; everything 21.
    let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
    assert_eq!(cred::sum_axes(&x, &[2, 3], &[0]), [5.0, 7.0, 9.0]);
    assert_eq!(cred::sum_axes(&x, &[2, 3], &[1]), [6.0, 15.0]);
    assert_eq!(cred::mean_axes(&x, &[2, 3], &[0]), [2.5, 3.5, 4.5]);
    assert_eq!(cred::max_axes(&x, &[2, 3], &[1]), [3.0, 6.0]);
    assert_eq!(cred::sum_axes(&x, &[2, 3], &[0, 1]), [21.0]);
    assert_eq!(cred::sum_all(&x), [21.0]);
    // Backward of the column mean: each input gets g[col] / 2.
    assert_eq!(
        cred::mean_axes_backward(&[2.0, 4.0, 6.0], &[2, 3], &[0]),
        [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    );
    // Empty reduced axis: sums 0, means NaN, maxima −f32::MAX (as on the GPU).
    assert_eq!(cred::sum_axes(&[], &[0, 3], &[0]), [0.0; 3]);
    assert!(cred::mean_axes(&[], &[0, 3], &[0])
        .iter()
        .all(|v| v.is_nan()));
    assert_eq!(cred::max_axes(&[], &[0, 3], &[0]), [-f32::MAX; 3]);
    assert!(cred::sum_axes(&[], &[3, 0], &[0]).is_empty());
}

// ---------------------------------------------------------------- activations

#[test]
fn activations_and_backwards_match_gpu() {
    for (k, shape) in [vec![2, 3, 5, 7], vec![70_001]].into_iter().enumerate() {
        let n = numel(&shape);
        let x = values(400 + k as u64, n, 4.0);
        let g = values(500 + k as u64, n, 1.0);
        let (xt, gt) = (up(&x, &shape), up(&g, &shape));
        let what = |name: &str| format!("{name} {shape:?}");
        close(
            &cact::relu(&x),
            &gpu(act::relu(&xt)),
            0.0,
            0.0,
            &what("relu"),
        );
        close(
            &cact::relu_backward(&g, &x),
            &gpu(act::relu_backward(&gt, &xt)),
            0.0,
            0.0,
            &what("relu'"),
        );
        for slope in [0.01f32, 0.2, -0.5] {
            close(
                &cact::leaky_relu(&x, slope),
                &gpu(act::leaky_relu(&xt, slope)),
                0.0,
                0.0,
                &what("leaky"),
            );
            let want = gpu(act::leaky_relu_backward(&gt, &xt, slope));
            close(
                &cact::leaky_relu_backward(&g, &x, slope),
                &want,
                0.0,
                0.0,
                &what("leaky'"),
            );
        }
        // The GPU's erf is accurate to 2e-7 absolute, hence the 1e-6 floor.
        close(
            &cact::gelu(&x),
            &gpu(act::gelu(&xt)),
            RTOL,
            1e-6,
            &what("gelu"),
        );
        close(
            &cact::gelu_backward(&g, &x),
            &gpu(act::gelu_backward(&gt, &xt)),
            RTOL,
            1e-6,
            &what("gelu'"),
        );
        let y = cact::sigmoid(&x);
        close(&y, &gpu(act::sigmoid(&xt)), RTOL, 1e-7, &what("sigmoid"));
        let yt = up(&y, &shape);
        close(
            &cact::sigmoid_backward(&g, &y),
            &gpu(act::sigmoid_backward(&gt, &yt)),
            RTOL,
            1e-7,
            &what("sigmoid'"),
        );
        let y = cact::tanh(&x);
        close(&y, &gpu(act::tanh(&xt)), RTOL, 1e-7, &what("tanh"));
        let yt = up(&y, &shape);
        close(
            &cact::tanh_backward(&g, &y),
            &gpu(act::tanh_backward(&gt, &yt)),
            RTOL,
            1e-6,
            &what("tanh'"),
        );
    }
}

#[test]
fn softmax_and_backward_match_gpu_on_every_axis() {
    let mut cases: Vec<(Vec<usize>, usize)> = (0..4).map(|a| (vec![2, 3, 5, 7], a)).collect();
    cases.extend([
        (vec![3, 2000], 1),     // contiguous rows, threaded
        (vec![1, 40, 1000], 1), // one block, columns threaded
        (vec![50, 30, 40], 0),  // one block, leading axis
        (vec![40, 7, 300], 1),  // many blocks, threaded over blocks
        (vec![6, 1], 1),        // rows of one
    ]);
    for (k, (shape, axis)) in cases.into_iter().enumerate() {
        let n = numel(&shape);
        let x = values(600 + k as u64, n, 5.0);
        let g = values(700 + k as u64, n, 1.0);
        let what = format!("{shape:?} axis {axis}");
        let y = cact::softmax(&x, &shape, axis);
        close(
            &y,
            &gpu(act::softmax(&up(&x, &shape), axis)),
            RTOL,
            1e-7,
            &format!("softmax {what}"),
        );
        let want = gpu(act::softmax_backward(
            &up(&g, &shape),
            &up(&y, &shape),
            axis,
        ));
        close(
            &cact::softmax_backward(&g, &y, &shape, axis),
            &want,
            1e-4,
            1e-6,
            &format!("softmax' {what}"),
        );
    }
}

/// erf by its Maclaurin series 2/√π Σ (−1)^n x^{2n+1} / (n!(2n+1)) (f64,
/// fine for |x| ≤ 3 where the largest term is below 1e3), and beyond by the
/// Laplace continued fraction erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + 3/2/(x + …)))),
/// evaluated bottom-up: independent of the Chebyshev fits under test.
fn erf_reference(x: f64) -> f64 {
    let z = x.abs();
    let r = if z <= 3.0 {
        let (mut term, mut sum) = (z, z);
        for n in 1..200 {
            term *= -z * z / n as f64;
            let t = term / (2 * n + 1) as f64;
            sum += t;
            if t.abs() < 1e-18 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else {
        let mut f = z;
        for k in (1..400).rev() {
            f = z + (k as f64 / 2.0) / f;
        }
        1.0 - (-z * z).exp() / std::f64::consts::PI.sqrt() / f
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

#[test]
fn erf_is_accurate_and_activation_golden_values_hold() {
    let mut worst = 0.0f64;
    for i in -8000..=8000 {
        let x = i as f64 * 1e-3;
        worst = worst.max((cact::erf(x) - erf_reference(x)).abs());
    }
    assert!(worst < 1e-12, "erf error {worst}");
    assert_eq!(cact::erf(0.0), 0.0);
    assert!(cact::erf(f64::NAN).is_nan());
    // gelu(1) = Φ(1) = ½(1 + erf(1/√2)) = 0.8413447460685429 (the normal
    // table's Φ(1)); gelu(−1) = −(1 − Φ(1)) = −0.15865525393145707.
    let y = cact::gelu(&[1.0, -1.0, 0.0]);
    assert!(
        (y[0] as f64 - 0.8413447460685429).abs() < 1e-7
            && (y[1] as f64 + 0.15865525393145707).abs() < 1e-7
            && y[2] == 0.0,
        "{y:?}"
    );
    // gelu'(0) = Φ(0) + 0 = ½.
    assert_eq!(cact::gelu_backward(&[1.0], &[0.0]), [0.5]);
    // softmax([0, ln 3]) = [1, 3] / 4.
    let s = cact::softmax(&[0.0, 3f32.ln()], &[2], 0);
    assert!(
        (s[0] - 0.25).abs() < 1e-7 && (s[1] - 0.75).abs() < 1e-7,
        "{s:?}"
    );
    // Along axis 0 of [[0, 0], [ln 3, 0]]: columns [1/4, 3/4] and [1/2, 1/2].
    let s = cact::softmax(&[0.0, 0.0, 3f32.ln(), 0.0], &[2, 2], 0);
    let want = [0.25, 0.5, 0.75, 0.5];
    assert!(
        s.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-7),
        "{s:?}"
    );
    // sigmoid(0) = ½; its backward at y = ½ is g/4.
    assert_eq!(cact::sigmoid(&[0.0]), [0.5]);
    assert_eq!(cact::sigmoid_backward(&[2.0], &[0.5]), [0.5]);
}

// ---------------------------------------------------------------- layout

#[test]
fn concat_and_split_match_gpu_on_every_axis() {
    let mut rng = Rng(11);
    for rank in 1..=5 {
        for axis in 0..rank {
            let base: Vec<usize> = (0..rank).map(|_| rng.size(1, 5)).collect();
            let sizes = [rng.size(1, 4), rng.size(1, 4), rng.size(1, 4)];
            let shapes: Vec<Vec<usize>> = sizes
                .iter()
                .map(|&s| {
                    let mut sh = base.clone();
                    sh[axis] = s;
                    sh
                })
                .collect();
            check_concat_split(&shapes, axis, rank as u64 * 10 + axis as u64);
        }
    }
    // Threaded: many rows, and a few long rows.
    check_concat_split(&[vec![64, 3, 200], vec![64, 5, 200]], 1, 1);
    check_concat_split(&[vec![40_000], vec![30_001]], 0, 2);
    check_concat_split(&[vec![2, 20_000], vec![2, 30_000]], 1, 3);
}

fn check_concat_split(shapes: &[Vec<usize>], axis: usize, seed: u64) {
    let xs: Vec<Vec<f32>> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| values(seed * 7 + i as u64, numel(s), 1.0))
        .collect();
    let ts: Vec<Tensor> = xs.iter().zip(shapes).map(|(x, s)| up(x, s)).collect();
    let refs: Vec<&Tensor> = ts.iter().collect();
    let slices: Vec<&[f32]> = xs.iter().map(|x| x.as_slice()).collect();
    let shape_refs: Vec<&[usize]> = shapes.iter().map(|s| s.as_slice()).collect();
    let what = format!("{shapes:?} axis {axis}");
    let cat = clay::concat(&slices, &shape_refs, axis);
    let cat_gpu = layout::concat(&refs, axis).unwrap();
    close(
        &cat,
        &cat_gpu.to_vec().unwrap(),
        0.0,
        0.0,
        &format!("concat {what}"),
    );
    let sizes: Vec<usize> = shapes.iter().map(|s| s[axis]).collect();
    let pieces = clay::split(&cat, cat_gpu.shape(), axis, &sizes);
    let gpu_pieces = layout::split(&cat_gpu, axis, &sizes).unwrap();
    for ((p, gp), x) in pieces.iter().zip(&gpu_pieces).zip(&xs) {
        close(p, &gp.to_vec().unwrap(), 0.0, 0.0, &format!("split {what}"));
        assert_eq!(p, x, "split undoes concat {what}");
    }
}

#[test]
fn permute_matches_gpu() {
    let mut rng = Rng(13);
    let mut cases: Vec<(Vec<usize>, Vec<usize>)> = Vec::new();
    for _ in 0..30 {
        let rank = rng.size(1, 5);
        let shape: Vec<usize> = (0..rank).map(|_| rng.size(1, 9)).collect();
        let mut dims: Vec<usize> = (0..rank).collect();
        for i in (1..rank).rev() {
            dims.swap(i, rng.below(i + 1));
        }
        cases.push((shape, dims));
    }
    // Tiled transposes with partial tiles, NCHW → NHWC and back, threaded.
    cases.extend([
        (vec![3, 70, 45], vec![0, 2, 1]),
        (vec![2, 64, 33, 37], vec![0, 2, 3, 1]),
        (vec![2, 33, 37, 64], vec![0, 3, 1, 2]),
        (vec![2, 5, 3, 40, 41], vec![4, 1, 0, 3, 2]),
        (vec![300, 257], vec![1, 0]),
        (vec![1, 3, 100, 130], vec![0, 1, 3, 2]),
    ]);
    for (k, (shape, dims)) in cases.into_iter().enumerate() {
        let x = values(800 + k as u64, numel(&shape), 1.0);
        let want = gpu(layout::permute(&up(&x, &shape), &dims));
        close(
            &clay::permute(&x, &shape, &dims),
            &want,
            0.0,
            0.0,
            &format!("permute {shape:?} {dims:?}"),
        );
    }
}

#[test]
fn pixel_shuffle_and_unshuffle_match_gpu() {
    for (k, (shape, r)) in [
        (vec![2, 12, 5, 7], 2),
        (vec![1, 18, 4, 3], 3),
        (vec![3, 4, 1, 1], 2),
        (vec![2, 16, 40, 50], 2),
    ]
    .into_iter()
    .enumerate()
    {
        let x = values(900 + k as u64, numel(&shape), 1.0);
        let y = clay::pixel_shuffle(&x, &shape, r);
        let yt = layout::pixel_shuffle(&up(&x, &shape), r).unwrap();
        close(
            &y,
            &yt.to_vec().unwrap(),
            0.0,
            0.0,
            &format!("pixel_shuffle {shape:?} r {r}"),
        );
        let back = clay::pixel_unshuffle(&y, yt.shape(), r);
        close(
            &back,
            &gpu(layout::pixel_unshuffle(&yt, r)),
            0.0,
            0.0,
            &format!("pixel_unshuffle {shape:?} r {r}"),
        );
        assert_eq!(back, x, "unshuffle undoes shuffle");
    }
    // Golden: one 2×2 block from 4 channels, out[0, 0, i, j] = x[0, 2i + j, 0, 0].
    assert_eq!(
        clay::pixel_shuffle(&[1.0, 2.0, 3.0, 4.0], &[1, 4, 1, 1], 2),
        [1.0, 2.0, 3.0, 4.0]
    );
    // Two pixels per channel: row 0 interleaves channels 0 and 1, row 1
    // channels 2 and 3: [[a0, b0, a1, b1], [c0, d0, c1, d1]].
    let x = [1.0, 2.0, 10.0, 20.0, 100.0, 200.0, 1000.0, 2000.0];
    assert_eq!(
        clay::pixel_shuffle(&x, &[1, 4, 1, 2], 2),
        [1.0, 10.0, 2.0, 20.0, 100.0, 1000.0, 200.0, 2000.0]
    );
}

#[test]
fn broadcast_to_and_sum_to_shape_match_gpu() {
    let pairs: Vec<(Vec<usize>, Vec<usize>)> = vec![
        (vec![3, 1, 5], vec![2, 3, 4, 5]),
        (vec![1], vec![4, 6]),
        (vec![], vec![3, 2]),
        (vec![3, 1, 1], vec![2, 3, 5, 7]),
        (vec![2, 1, 5, 1], vec![2, 3, 5, 4]),
        (vec![5], vec![13_000, 5]),
        (vec![16, 1, 1], vec![4, 16, 40, 40]),
        (vec![300], vec![200, 300]),
        (vec![1, 2], vec![60_000, 2]),
        (vec![2, 1], vec![2, 60_000]),
        (vec![3, 4], vec![3, 4]),
    ];
    for (k, (small, big)) in pairs.into_iter().enumerate() {
        let x = values(1000 + k as u64, numel(&small), 1.0);
        let want = gpu(layout::broadcast_to(&up(&x, &small), &big));
        close(
            &clay::broadcast_to(&x, &small, &big),
            &want,
            0.0,
            0.0,
            &format!("broadcast_to {small:?} -> {big:?}"),
        );
        let g = values(1100 + k as u64, numel(&big), 1.0);
        let want = gpu(layout::sum_to_shape(&up(&g, &big), &small));
        let r = numel(&big) / numel(&small).max(1);
        let tol = (2e-7 * r as f64) as f32 + 1e-6;
        close(
            &clay::sum_to_shape(&g, &big, &small),
            &want,
            RTOL,
            tol,
            &format!("sum_to_shape {big:?} -> {small:?}"),
        );
    }
}

// ---------------------------------------------------------------- pooling

type Geometry = ([usize; 2], [usize; 2], [usize; 2]);

fn pool_cases() -> Vec<(Vec<usize>, Geometry)> {
    let geometries: [Geometry; 6] = [
        ([2, 2], [2, 2], [0, 0]),
        ([3, 3], [1, 1], [1, 1]),
        ([3, 3], [2, 2], [1, 1]),
        ([1, 1], [2, 2], [0, 0]),
        ([2, 3], [1, 2], [1, 1]),
        ([5, 5], [3, 3], [2, 2]),
    ];
    let shapes = [vec![2, 3, 9, 11], vec![1, 2, 16, 16], vec![3, 1, 7, 5]];
    let mut cases = Vec::new();
    for s in &shapes {
        for g in geometries {
            cases.push((s.clone(), g));
        }
    }
    cases.push((vec![2, 8, 64, 65], ([3, 3], [1, 1], [1, 1])));
    cases.push((vec![2, 8, 64, 64], ([2, 2], [2, 2], [0, 0])));
    cases
}

#[test]
fn avg_pool_and_backward_match_gpu() {
    for (k, (shape, (kernel, stride, padding))) in pool_cases().into_iter().enumerate() {
        let x = values(1200 + k as u64, numel(&shape), 1.0);
        let what = format!("{shape:?} k {kernel:?} s {stride:?} p {padding:?}");
        let yt = pool::avg_pool2d(&up(&x, &shape), kernel, stride, padding).unwrap();
        let y = cpool::avg_pool2d(&x, &shape, kernel, stride, padding);
        close(
            &y,
            &yt.to_vec().unwrap(),
            RTOL,
            1e-6,
            &format!("avg_pool {what}"),
        );
        let g = values(1300 + k as u64, y.len(), 1.0);
        let want = gpu(pool::avg_pool2d_backward(
            &up(&g, yt.shape()),
            &shape,
            kernel,
            stride,
            padding,
        ));
        close(
            &cpool::avg_pool2d_backward(&g, &shape, kernel, stride, padding),
            &want,
            RTOL,
            1e-6,
            &format!("avg_pool' {what}"),
        );
    }
}

#[test]
fn max_pool_indices_ties_and_backward_match_gpu() {
    for (k, (shape, (kernel, stride, padding))) in pool_cases().into_iter().enumerate() {
        // Quantised to a few levels so windows hold ties: the first maximum
        // in row-major window order must win on both backends.
        let x: Vec<f32> = data(1400 + k as u64, numel(&shape))
            .iter()
            .map(|v| (v * 2.0).round())
            .collect();
        let what = format!("{shape:?} k {kernel:?} s {stride:?} p {padding:?}");
        let (yt, it) = pool::max_pool2d(&up(&x, &shape), kernel, stride, padding).unwrap();
        let (y, idx) = cpool::max_pool2d(&x, &shape, kernel, stride, padding);
        close(
            &y,
            &yt.to_vec().unwrap(),
            0.0,
            0.0,
            &format!("max_pool {what}"),
        );
        close(
            &idx,
            &it.to_vec().unwrap(),
            0.0,
            0.0,
            &format!("max_pool indices {what}"),
        );
        let g = values(1500 + k as u64, y.len(), 1.0);
        let want = gpu(pool::max_pool2d_backward(
            &up(&g, yt.shape()),
            &it,
            &shape,
            kernel,
            stride,
            padding,
        ));
        let got = cpool::max_pool2d_backward(&g, &idx, &shape, kernel, stride, padding);
        close(&got, &want, RTOL, 1e-6, &format!("max_pool' {what}"));
    }
    // Golden: an all-equal 2×2 window picks its first pixel (index 0); in
    // [[1, 3], [3, 2]] the first 3 (index 1) wins over the second (index 2).
    let (y, idx) = cpool::max_pool2d(&[1.0; 4], &[1, 1, 2, 2], [2, 2], [2, 2], [0, 0]);
    assert_eq!((y, idx), (vec![1.0], vec![0.0]));
    let (y, idx) = cpool::max_pool2d(&[1.0, 3.0, 3.0, 2.0], &[1, 1, 2, 2], [2, 2], [2, 2], [0, 0]);
    assert_eq!((y, idx), (vec![3.0], vec![1.0]));
    // Padded 3×3 windows of stride 1 over a 1×2 image [5, 4]: both windows
    // see both pixels, so both pick index 0 and its gradient sums both.
    let (_, idx) = cpool::max_pool2d(&[5.0, 4.0], &[1, 1, 1, 2], [3, 3], [1, 1], [1, 1]);
    assert_eq!(idx, [0.0, 0.0]);
    let dx = cpool::max_pool2d_backward(&[1.5, 2.0], &idx, &[1, 1, 1, 2], [3, 3], [1, 1], [1, 1]);
    assert_eq!(dx, [3.5, 0.0]);
}

#[test]
fn adaptive_avg_pool_and_backward_match_gpu() {
    for (k, shape) in [
        vec![2, 3, 5, 7],
        vec![1, 1, 1, 1],
        vec![3, 2, 1, 9],
        vec![2, 4, 100, 101],
        vec![1, 2, 150, 151],
    ]
    .into_iter()
    .enumerate()
    {
        let x = values(1600 + k as u64, numel(&shape), 1.0);
        let what = format!("{shape:?}");
        let hw = (shape[2] * shape[3]) as f32;
        let want = gpu(pool::adaptive_avg_pool_1x1(&up(&x, &shape)));
        close(
            &cpool::adaptive_avg_pool_1x1(&x, &shape),
            &want,
            RTOL,
            2e-7 * hw.sqrt() + 1e-6,
            &format!("adaptive {what}"),
        );
        let g = values(1700 + k as u64, shape[0] * shape[1], 1.0);
        let want = gpu(pool::adaptive_avg_pool_1x1_backward(
            &up(&g, &[shape[0], shape[1], 1, 1]),
            &shape,
        ));
        close(
            &cpool::adaptive_avg_pool_1x1_backward(&g, &shape),
            &want,
            RTOL,
            0.0,
            &format!("adaptive' {what}"),
        );
    }
    // Golden: the mean of [1, 2, 3, 6] is 3; its backward spreads g/4.
    assert_eq!(
        cpool::adaptive_avg_pool_1x1(&[1.0, 2.0, 3.0, 6.0], &[1, 1, 2, 2]),
        [3.0]
    );
    assert_eq!(
        cpool::adaptive_avg_pool_1x1_backward(&[2.0], &[1, 1, 2, 2]),
        [0.5; 4]
    );
}

// ---------------------------------------------------------------- resampling

#[test]
fn upsampling_and_backward_match_gpu() {
    for (k, shape) in [
        vec![2, 3, 5, 7],
        vec![1, 1, 1, 1],
        vec![1, 2, 1, 6],
        vec![3, 2, 4, 1],
        vec![2, 8, 48, 50],
    ]
    .into_iter()
    .enumerate()
    {
        let x = values(1800 + k as u64, numel(&shape), 1.0);
        let xt = up(&x, &shape);
        let what = format!("{shape:?}");
        let big = [shape[0], shape[1], 2 * shape[2], 2 * shape[3]];
        let g = values(1900 + k as u64, numel(&big), 1.0);
        let gt = up(&g, &big);
        close(
            &cres::upsample_nearest2x(&x, &shape),
            &gpu(resample::upsample_nearest2x(&xt)),
            0.0,
            0.0,
            &format!("nearest {what}"),
        );
        let want = gpu(resample::upsample_nearest2x_backward(&gt));
        close(
            &cres::upsample_nearest2x_backward(&g, &big),
            &want,
            RTOL,
            1e-6,
            &format!("nearest' {what}"),
        );
        close(
            &cres::upsample_bilinear2x(&x, &shape),
            &gpu(resample::upsample_bilinear2x(&xt)),
            RTOL,
            1e-6,
            &format!("bilinear {what}"),
        );
        let want = gpu(resample::upsample_bilinear2x_backward(&gt, &shape));
        close(
            &cres::upsample_bilinear2x_backward(&g, &shape),
            &want,
            RTOL,
            1e-6,
            &format!("bilinear' {what}"),
        );
    }
}

#[test]
fn upsampling_golden_values() {
    // Bilinear ×2 of the row [0, 4] (align_corners = False): output column d
    // samples s = max(0, (d + ½)/2 − ½) = 0, ¼, ¾, 5/4 → clamped to 1, so
    // the values 0, 1, 3, 4; both output rows sample the single input row.
    let y = cres::upsample_bilinear2x(&[0.0, 4.0], &[1, 1, 1, 2]);
    assert_eq!(y, [0.0, 1.0, 3.0, 4.0, 0.0, 1.0, 3.0, 4.0]);
    // Its backward with a gradient of ones: input 0 feeds output columns
    // 0, 1, 2 with weights ¼ + ¾ (both taps clamp to it), ¾, ¼, i.e. 2 per
    // output row, and both output rows read the one input row: 4. Input 1
    // feeds columns 1, 2, 3 with ¼, ¾, ¾ + ¼: also 4.
    let dx = cres::upsample_bilinear2x_backward(&[1.0; 8], &[1, 1, 1, 2]);
    assert_eq!(dx, [4.0, 4.0]);
    // Nearest: each pixel becomes a 2×2 block; the backward sums the block.
    assert_eq!(
        cres::upsample_nearest2x(&[1.0, 2.0], &[1, 1, 1, 2]),
        [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]
    );
    let g = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    assert_eq!(
        cres::upsample_nearest2x_backward(&g, &[1, 1, 2, 4]),
        [1.0 + 2.0 + 5.0 + 6.0, 3.0 + 4.0 + 7.0 + 8.0]
    );
}
