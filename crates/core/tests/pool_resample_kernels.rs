//! Pooling and ×2 resampling kernels against plain f64 CPU references, with
//! every backward checked against central finite differences of
//! L = Σ G ⊙ op(x) computed on the CPU reference.

mod common;

use common::{assert_close, data, f64s, fd_grad, numel, upload, Rng};
use spikeir_core::ops::pool::{
    adaptive_avg_pool_1x1, adaptive_avg_pool_1x1_backward, avg_pool2d, avg_pool2d_backward,
    max_pool2d, max_pool2d_backward,
};
use spikeir_core::ops::resample::{
    upsample_bilinear2x, upsample_bilinear2x_backward, upsample_nearest2x,
    upsample_nearest2x_backward,
};
use spikeir_core::Error;

/// Distinct values −1 − 0.01·k in shuffled order: no ties (so the argmax
/// cannot flip under a 1e-3 perturbation) and all below the zero a buggy
/// kernel might read from the padding.
fn tie_free(seed: u64, n: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n).map(|k| -1.0 - 0.01 * k as f32).collect();
    let mut rng = Rng(seed);
    for i in (1..n).rev() {
        v.swap(i, rng.below(i + 1));
    }
    v
}

// ---------- CPU references ----------

#[derive(Clone, Copy, Debug)]
struct Pool {
    k: [usize; 2],
    s: [usize; 2],
    p: [usize; 2],
}

impl Pool {
    fn out(&self, shape: &[usize]) -> Vec<usize> {
        let oh = (shape[2] + 2 * self.p[0] - self.k[0]) / self.s[0] + 1;
        let ow = (shape[3] + 2 * self.p[1] - self.k[1]) / self.s[1] + 1;
        vec![shape[0], shape[1], oh, ow]
    }

    /// The in-bounds taps (y, x) of window (oy, ox), row-major.
    fn taps(&self, shape: &[usize], oy: usize, ox: usize) -> Vec<(usize, usize)> {
        let mut t = Vec::new();
        for ky in 0..self.k[0] {
            for kx in 0..self.k[1] {
                let y = (oy * self.s[0] + ky) as i64 - self.p[0] as i64;
                let x = (ox * self.s[1] + kx) as i64 - self.p[1] as i64;
                if y >= 0 && x >= 0 && (y as usize) < shape[2] && (x as usize) < shape[3] {
                    t.push((y as usize, x as usize));
                }
            }
        }
        t
    }
}

/// PyTorch avg_pool2d, count_include_pad = True: sum of in-bounds taps / (kh·kw).
fn avg_pool_ref(x: &[f64], s: &[usize], pool: Pool) -> Vec<f64> {
    let o = pool.out(s);
    let mut out = Vec::new();
    for plane in 0..s[0] * s[1] {
        for oy in 0..o[2] {
            for ox in 0..o[3] {
                let sum: f64 = pool
                    .taps(s, oy, ox)
                    .iter()
                    .map(|&(y, xx)| x[(plane * s[2] + y) * s[3] + xx])
                    .sum();
                out.push(sum / (pool.k[0] * pool.k[1]) as f64);
            }
        }
    }
    out
}

/// Max over in-bounds taps and the plane index of the first maximum.
fn max_pool_ref(x: &[f64], s: &[usize], pool: Pool) -> (Vec<f64>, Vec<f64>) {
    let o = pool.out(s);
    let (mut vals, mut idx) = (Vec::new(), Vec::new());
    for plane in 0..s[0] * s[1] {
        for oy in 0..o[2] {
            for ox in 0..o[3] {
                let mut best = f64::NEG_INFINITY;
                let mut at = 0;
                for (y, xx) in pool.taps(s, oy, ox) {
                    let v = x[(plane * s[2] + y) * s[3] + xx];
                    if v > best {
                        best = v;
                        at = y * s[3] + xx;
                    }
                }
                vals.push(best);
                idx.push(at as f64);
            }
        }
    }
    (vals, idx)
}

fn global_avg_ref(x: &[f64], s: &[usize]) -> Vec<f64> {
    let hw = s[2] * s[3];
    (0..s[0] * s[1])
        .map(|p| x[p * hw..(p + 1) * hw].iter().sum::<f64>() / hw as f64)
        .collect()
}

fn nearest_ref(x: &[f64], s: &[usize]) -> Vec<f64> {
    let (h, w) = (s[2], s[3]);
    let mut out = Vec::new();
    for plane in 0..s[0] * s[1] {
        for oy in 0..2 * h {
            for ox in 0..2 * w {
                out.push(x[(plane * h + oy / 2) * w + ox / 2]);
            }
        }
    }
    out
}

/// PyTorch's source index for align_corners = False at scale 2:
/// s = max(0, (d + 0.5)·(1/2) − 0.5), taps floor(s) and floor(s) + 1 (clamped
/// to the last row), weights 1 − λ and λ with λ = s − floor(s).
fn linear_taps(d: usize, size: usize) -> [(usize, f64); 2] {
    let src = ((d as f64 + 0.5) * 0.5 - 0.5).max(0.0);
    let i0 = src.floor() as usize;
    let l = src - i0 as f64;
    [(i0, 1.0 - l), ((i0 + 1).min(size - 1), l)]
}

fn bilinear_ref(x: &[f64], s: &[usize]) -> Vec<f64> {
    let (h, w) = (s[2], s[3]);
    let mut out = Vec::new();
    for plane in 0..s[0] * s[1] {
        for oy in 0..2 * h {
            for ox in 0..2 * w {
                let mut v = 0.0;
                for (y, wy) in linear_taps(oy, h) {
                    for (xx, wx) in linear_taps(ox, w) {
                        v += wy * wx * x[(plane * h + y) * w + xx];
                    }
                }
                out.push(v);
            }
        }
    }
    out
}

// ---------- pooling ----------

const POOLS: [Pool; 7] = [
    Pool {
        k: [2, 2],
        s: [2, 2],
        p: [0, 0],
    },
    Pool {
        k: [3, 3],
        s: [1, 1],
        p: [1, 1],
    },
    Pool {
        k: [3, 3],
        s: [2, 2],
        p: [1, 1],
    },
    Pool {
        k: [3, 2],
        s: [2, 1],
        p: [1, 0],
    },
    Pool {
        k: [1, 1],
        s: [1, 1],
        p: [0, 0],
    },
    Pool {
        k: [2, 3],
        s: [3, 2],
        p: [1, 1],
    },
    Pool {
        k: [4, 4],
        s: [4, 4],
        p: [2, 2],
    },
];

/// Random NCHW shapes with batch > 1 and odd sizes that fit `pool`.
fn pool_shapes(seed: u64, pool: Pool) -> Vec<Vec<usize>> {
    let mut rng = Rng(seed);
    let mut v: Vec<Vec<usize>> = (0..2)
        .map(|_| {
            vec![
                rng.size(2, 3),
                rng.size(1, 4),
                rng.size(pool.k[0], 13),
                rng.size(pool.k[1], 13),
            ]
        })
        .collect();
    v.push(vec![2, 5, 33, 37]);
    v
}

#[test]
fn avg_pool2d_golden_counts_padding_as_zeros() {
    // x = 1..9 in a 3×3 image, kernel 3, stride 1, padding 1. The corner
    // window holds 1, 2, 4, 5 and five padded zeros: (1+2+4+5)/9 = 4/3; the
    // top-middle window holds 1..6: 21/9 = 7/3; the centre holds all: 45/9 = 5.
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let y = avg_pool2d(&upload(&x, &[1, 1, 3, 3]), [3, 3], [1, 1], [1, 1]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 3, 3]);
    let got = y.to_vec().unwrap();
    assert_close(
        &got[..3],
        &[4.0 / 3.0, 7.0 / 3.0, 16.0 / 9.0],
        1e-6,
        0.0,
        "top row",
    );
    assert_close(&got[4..5], &[5.0], 1e-6, 0.0, "centre");
}

#[test]
fn avg_pool2d_matches_cpu() {
    for (i, pool) in POOLS.iter().enumerate() {
        for s in pool_shapes(i as u64, *pool) {
            let x = data(i as u64 * 7 + s[2] as u64, numel(&s));
            let y = avg_pool2d(&upload(&x, &s), pool.k, pool.s, pool.p).unwrap();
            assert_eq!(y.shape(), &pool.out(&s)[..], "{pool:?} on {s:?}");
            let want = avg_pool_ref(&f64s(&x), &s, *pool);
            assert_close(
                &y.to_vec().unwrap(),
                &want,
                1e-5,
                1e-6,
                &format!("avg_pool2d {pool:?} on {s:?}"),
            );
        }
    }
}

#[test]
fn avg_pool2d_backward_matches_finite_differences() {
    for (i, pool) in POOLS.iter().enumerate() {
        let s = [2, 2, 7 + i % 2, 6 + i % 3];
        let x = f64s(&data(i as u64, numel(&s)));
        let o = pool.out(&s);
        let g = data(100 + i as u64, numel(&o));
        let want = fd_grad(&x, &f64s(&g), &|v| avg_pool_ref(v, &s, *pool));
        let got = avg_pool2d_backward(&upload(&g, &o), &s, pool.k, pool.s, pool.p).unwrap();
        assert_eq!(got.shape(), &s);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("avg_pool2d backward {pool:?}"),
        );
    }
}

#[test]
fn max_pool2d_matches_cpu_values_and_indices() {
    for (i, pool) in POOLS.iter().enumerate() {
        for s in pool_shapes(50 + i as u64, *pool) {
            let x = tie_free(i as u64, numel(&s));
            let (y, idx) = max_pool2d(&upload(&x, &s), pool.k, pool.s, pool.p).unwrap();
            assert_eq!(y.shape(), &pool.out(&s)[..]);
            assert_eq!(idx.shape(), &pool.out(&s)[..]);
            let (want, want_idx) = max_pool_ref(&f64s(&x), &s, *pool);
            let what = format!("max_pool2d {pool:?} on {s:?}");
            assert_close(&y.to_vec().unwrap(), &want, 0.0, 0.0, &what);
            assert_close(
                &idx.to_vec().unwrap(),
                &want_idx,
                0.0,
                0.0,
                &format!("{what} indices"),
            );
        }
    }
    // Ties: the first maximum in row-major window order wins, as in PyTorch.
    let (y, idx) = max_pool2d(
        &upload(&[1.0, 3.0, 3.0, 3.0], &[1, 1, 2, 2]),
        [2, 2],
        [2, 2],
        [0, 0],
    )
    .unwrap();
    assert_eq!(
        (y.to_vec().unwrap(), idx.to_vec().unwrap()),
        (vec![3.0], vec![1.0])
    );
}

#[test]
fn max_pool2d_backward_matches_finite_differences() {
    for (i, pool) in POOLS.iter().enumerate() {
        let s = [2, 2, 7 + i % 2, 6 + i % 3];
        let x = tie_free(10 + i as u64, numel(&s));
        let o = pool.out(&s);
        let g = data(200 + i as u64, numel(&o));
        let want = fd_grad(&f64s(&x), &f64s(&g), &|v| max_pool_ref(v, &s, *pool).0);
        let (_, idx) = max_pool2d(&upload(&x, &s), pool.k, pool.s, pool.p).unwrap();
        let got = max_pool2d_backward(&upload(&g, &o), &idx, &s, pool.k, pool.s, pool.p).unwrap();
        assert_eq!(got.shape(), &s);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("max_pool2d backward {pool:?}"),
        );
    }
}

#[test]
fn adaptive_avg_pool_1x1_matches_cpu() {
    // Planes from 1 value (no reduction) through 64 (one invocation per
    // plane) and 81 (one workgroup per plane) to 16 899 (two passes).
    for (i, s) in [
        [2, 3, 5, 7],
        [3, 4, 1, 1],
        [1, 2, 8, 8],
        [2, 5, 9, 9],
        [2, 3, 129, 131],
        [3, 1, 3, 301],
    ]
    .iter()
    .enumerate()
    {
        let x = data(i as u64, numel(s));
        let y = adaptive_avg_pool_1x1(&upload(&x, s)).unwrap();
        assert_eq!(y.shape(), &[s[0], s[1], 1, 1]);
        let want = global_avg_ref(&f64s(&x), s);
        assert_close(
            &y.to_vec().unwrap(),
            &want,
            1e-5,
            1e-6,
            &format!("adaptive_avg_pool_1x1 {s:?}"),
        );
    }
}

#[test]
fn adaptive_avg_pool_1x1_backward_matches_finite_differences() {
    for s in [[2, 3, 4, 5], [3, 2, 1, 1], [2, 1, 9, 7]] {
        let x = f64s(&data(1, numel(&s)));
        let o = [s[0], s[1], 1, 1];
        let g = data(2, numel(&o));
        let want = fd_grad(&x, &f64s(&g), &|v| global_avg_ref(v, &s));
        let got = adaptive_avg_pool_1x1_backward(&upload(&g, &o), &s).unwrap();
        assert_eq!(got.shape(), &s);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("adaptive_avg_pool_1x1 backward {s:?}"),
        );
    }
}

// ---------- resampling ----------

fn resample_shapes() -> Vec<[usize; 4]> {
    let mut rng = Rng(99);
    let mut v: Vec<[usize; 4]> = (0..4)
        .map(|_| {
            [
                rng.size(2, 3),
                rng.size(1, 4),
                rng.size(1, 11),
                rng.size(1, 11),
            ]
        })
        .collect();
    v.extend([[1, 1, 1, 1], [2, 1, 1, 5], [2, 3, 17, 19], [2, 2, 2, 2]]);
    v
}

#[test]
fn upsample_nearest2x_matches_cpu() {
    for (i, s) in resample_shapes().iter().enumerate() {
        let x = data(i as u64, numel(s));
        let y = upsample_nearest2x(&upload(&x, s)).unwrap();
        assert_eq!(y.shape(), &[s[0], s[1], 2 * s[2], 2 * s[3]]);
        assert_close(
            &y.to_vec().unwrap(),
            &nearest_ref(&f64s(&x), s),
            0.0,
            0.0,
            &format!("nearest {s:?}"),
        );
    }
}

#[test]
fn upsample_nearest2x_backward_matches_finite_differences() {
    for s in [[2, 3, 4, 5], [2, 1, 1, 3], [1, 2, 3, 1]] {
        let x = f64s(&data(3, numel(&s)));
        let o = [s[0], s[1], 2 * s[2], 2 * s[3]];
        let g = data(4, numel(&o));
        let want = fd_grad(&x, &f64s(&g), &|v| nearest_ref(v, &s));
        let got = upsample_nearest2x_backward(&upload(&g, &o)).unwrap();
        assert_eq!(got.shape(), &s);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("nearest backward {s:?}"),
        );
    }
}

#[test]
fn upsample_bilinear2x_golden_matches_pytorch() {
    // align_corners = False, scale 2, 2×2 image [[1, 2], [3, 4]]. Along each
    // axis output index d samples s = max(0, (d + 0.5)/2 − 0.5):
    //   d = 0 → s = 0 (clamped from −0.25): 1·row 0
    //   d = 1 → s = 0.25: 0.75·row 0 + 0.25·row 1
    //   d = 2 → s = 0.75: 0.25·row 0 + 0.75·row 1
    //   d = 3 → s = 1.25 → row 1 and row min(2, 1) = 1: 1·row 1
    // So output row 0 (= input row 0 resampled) is [1, 1.25, 1.75, 2], row 3 is
    // [3, 3.25, 3.75, 4]; row 1 = 0.75·row 0 + 0.25·row 3 = [1.5, 1.75, 2.25, 2.5]
    // and row 2 = 0.25·row 0 + 0.75·row 3 = [2.5, 2.75, 3.25, 3.5]. The
    // corners reproduce the input corners 1, 2, 3, 4.
    let y = upsample_bilinear2x(&upload(&[1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2])).unwrap();
    assert_eq!(y.shape(), &[1, 1, 4, 4]);
    let want = [
        1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0,
    ];
    assert_eq!(y.to_vec().unwrap(), want.to_vec());
}

#[test]
fn upsample_bilinear2x_matches_cpu() {
    for (i, s) in resample_shapes().iter().enumerate() {
        let x = data(10 + i as u64, numel(s));
        let y = upsample_bilinear2x(&upload(&x, s)).unwrap();
        assert_eq!(y.shape(), &[s[0], s[1], 2 * s[2], 2 * s[3]]);
        assert_close(
            &y.to_vec().unwrap(),
            &bilinear_ref(&f64s(&x), s),
            1e-6,
            1e-6,
            &format!("bilinear {s:?}"),
        );
    }
}

#[test]
fn upsample_bilinear2x_backward_matches_finite_differences() {
    // Sizes 1 and 2 exercise the clamped edge taps.
    for s in [
        [2, 3, 5, 4],
        [2, 2, 1, 3],
        [1, 1, 2, 2],
        [2, 1, 7, 1],
        [1, 2, 6, 9],
    ] {
        let x = f64s(&data(5, numel(&s)));
        let o = [s[0], s[1], 2 * s[2], 2 * s[3]];
        let g = data(6, numel(&o));
        let want = fd_grad(&x, &f64s(&g), &|v| bilinear_ref(v, &s));
        let got = upsample_bilinear2x_backward(&upload(&g, &o), &s).unwrap();
        assert_eq!(got.shape(), &s);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("bilinear backward {s:?}"),
        );
    }
}

#[test]
fn pool_and_resample_errors_name_the_op_and_shapes() {
    let x = upload(&data(1, 2 * 3 * 4 * 5), &[2, 3, 4, 5]);
    let flat = upload(&data(2, 12), &[3, 4]);
    let text = |e: Error| e.to_string();

    let m = text(avg_pool2d(&flat, [2, 2], [2, 2], [0, 0]).unwrap_err());
    assert!(m.contains("avg_pool2d") && m.contains("[3, 4]"), "{m}");
    let e = avg_pool2d(&x, [0, 2], [1, 1], [0, 0]).unwrap_err();
    assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
    let m = text(max_pool2d(&x, [2, 2], [1, 1], [2, 0]).unwrap_err());
    assert!(
        m.contains("max_pool2d") && m.contains("padding") && m.contains("[2, 3, 4, 5]"),
        "{m}"
    );
    let e = avg_pool2d(&x, [6, 2], [1, 1], [0, 0]).unwrap_err();
    assert!(
        matches!(e, Error::Shape(_)) && text(e.clone()).contains("[2, 3, 4, 5]"),
        "{e}"
    );

    let g = upload(&data(3, 2 * 3 * 2 * 3), &[2, 3, 2, 3]);
    let m = text(avg_pool2d_backward(&g, &[2, 3, 4, 5], [2, 2], [2, 2], [0, 0]).unwrap_err());
    assert!(
        m.contains("avg_pool2d_backward")
            && m.contains("[2, 3, 2, 3]")
            && m.contains("[2, 3, 2, 2]"),
        "{m}"
    );
    let (y, idx) = max_pool2d(&x, [2, 2], [2, 2], [0, 0]).unwrap();
    let m = text(max_pool2d_backward(&y, &g, &[2, 3, 4, 5], [2, 2], [2, 2], [0, 0]).unwrap_err());
    assert!(
        m.contains("max_pool2d_backward") && m.contains("indices") && m.contains("[2, 3, 2, 3]"),
        "{m}"
    );
    assert!(max_pool2d_backward(&y, &idx, &[2, 3, 4, 5], [2, 2], [2, 2], [0, 0]).is_ok());

    let m = text(adaptive_avg_pool_1x1(&flat).unwrap_err());
    assert!(
        m.contains("adaptive_avg_pool_1x1") && m.contains("[3, 4]"),
        "{m}"
    );
    let m = text(adaptive_avg_pool_1x1_backward(&g, &[2, 3, 4, 5]).unwrap_err());
    assert!(
        m.contains("adaptive_avg_pool_1x1_backward") && m.contains("[2, 3, 2, 3]"),
        "{m}"
    );

    let m = text(upsample_bilinear2x(&flat).unwrap_err());
    assert!(
        m.contains("upsample_bilinear2x") && m.contains("[3, 4]"),
        "{m}"
    );
    let m = text(upsample_nearest2x_backward(&x).unwrap_err());
    assert!(
        m.contains("upsample_nearest2x_backward") && m.contains("[2, 3, 4, 5]"),
        "{m}"
    );
    let g4 = upload(&data(4, 2 * 3 * 4 * 6), &[2, 3, 4, 6]);
    let m = text(upsample_bilinear2x_backward(&g4, &[2, 3, 2, 2]).unwrap_err());
    assert!(
        m.contains("upsample_bilinear2x_backward")
            && m.contains("[2, 3, 2, 2]")
            && m.contains("[2, 3, 4, 6]"),
        "{m}"
    );
}
