//! Layout kernels against plain f64 CPU references: concat/split, permute,
//! pixel shuffle/unshuffle, broadcast_to and sum_to_shape. Every backward is
//! checked against central finite differences of L = Σ G ⊙ op(x) computed on
//! the CPU reference.

mod common;

use common::{assert_close, data, device, f64s, fd_grad, numel, upload, Rng};
use spikeir_core::ops::layout::{
    broadcast_to, concat, inverse_permutation, permute, pixel_shuffle, pixel_unshuffle, split,
    sum_to_shape,
};
use spikeir_core::{Error, Tensor};

fn unravel(shape: &[usize], mut flat: usize) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = flat % shape[d];
        flat /= shape[d];
    }
    idx
}

fn ravel(shape: &[usize], idx: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &s)| acc * s + i)
}

// ---------- CPU references ----------

/// Concatenation of `parts` along `axis`: walks the output multi-index and
/// finds the part whose slab along `axis` holds it.
fn concat_ref(parts: &[(Vec<f64>, Vec<usize>)], axis: usize) -> (Vec<usize>, Vec<f64>) {
    let mut out_shape = parts[0].1.clone();
    out_shape[axis] = parts.iter().map(|p| p.1[axis]).sum();
    let out = (0..numel(&out_shape))
        .map(|flat| {
            let mut idx = unravel(&out_shape, flat);
            let mut k = 0;
            while idx[axis] >= parts[k].1[axis] {
                idx[axis] -= parts[k].1[axis];
                k += 1;
            }
            parts[k].0[ravel(&parts[k].1, &idx)]
        })
        .collect();
    (out_shape, out)
}

fn split_ref(
    x: &[f64],
    shape: &[usize],
    axis: usize,
    sizes: &[usize],
) -> Vec<(Vec<usize>, Vec<f64>)> {
    let mut offset = 0;
    sizes
        .iter()
        .map(|&size| {
            let mut ps = shape.to_vec();
            ps[axis] = size;
            let vals = (0..numel(&ps))
                .map(|flat| {
                    let mut idx = unravel(&ps, flat);
                    idx[axis] += offset;
                    x[ravel(shape, &idx)]
                })
                .collect();
            offset += size;
            (ps, vals)
        })
        .collect()
}

/// out[i_0, …] with i_d indexing input dimension dims[d].
fn permute_ref(x: &[f64], shape: &[usize], dims: &[usize]) -> (Vec<usize>, Vec<f64>) {
    let out_shape: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
    let out = (0..numel(&out_shape))
        .map(|flat| {
            let oi = unravel(&out_shape, flat);
            let mut ii = vec![0; shape.len()];
            for d in 0..dims.len() {
                ii[dims[d]] = oi[d];
            }
            x[ravel(shape, &ii)]
        })
        .collect();
    (out_shape, out)
}

/// PyTorch pixel_shuffle: out[n, c, h·r + i, w·r + j] = x[n, c·r² + i·r + j, h, w].
fn pixel_shuffle_ref(x: &[f64], s: &[usize], r: usize) -> Vec<f64> {
    let (n, c, h, w) = (s[0], s[1] / (r * r), s[2], s[3]);
    let mut out = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    for i in 0..r {
                        for j in 0..r {
                            let src = ravel(s, &[b, ch * r * r + i * r + j, y, xx]);
                            let dst = ravel(&[n, c, h * r, w * r], &[b, ch, y * r + i, xx * r + j]);
                            out[dst] = x[src];
                        }
                    }
                }
            }
        }
    }
    out
}

/// PyTorch pixel_unshuffle: out[n, c·r² + i·r + j, h, w] = x[n, c, h·r + i, w·r + j].
fn pixel_unshuffle_ref(x: &[f64], s: &[usize], r: usize) -> Vec<f64> {
    let (n, c, h, w) = (s[0], s[1], s[2] / r, s[3] / r);
    let mut out = vec![0.0; x.len()];
    for b in 0..n {
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    for i in 0..r {
                        for j in 0..r {
                            let src = ravel(s, &[b, ch, y * r + i, xx * r + j]);
                            let dst =
                                ravel(&[n, c * r * r, h, w], &[b, ch * r * r + i * r + j, y, xx]);
                            out[dst] = x[src];
                        }
                    }
                }
            }
        }
    }
    out
}

/// `shape` right-aligned to `rank` dimensions with leading 1s.
fn aligned(shape: &[usize], rank: usize) -> Vec<usize> {
    let mut v = vec![1; rank - shape.len()];
    v.extend_from_slice(shape);
    v
}

/// NumPy broadcast of x (shape `s`) to `to`: size-1 dimensions repeat.
fn broadcast_ref(x: &[f64], s: &[usize], to: &[usize]) -> Vec<f64> {
    let a = aligned(s, to.len());
    (0..numel(to))
        .map(|flat| {
            let idx = unravel(to, flat);
            let src: Vec<usize> = idx
                .iter()
                .zip(&a)
                .map(|(&i, &d)| if d == 1 { 0 } else { i })
                .collect();
            x[ravel(&a, &src)]
        })
        .collect()
}

/// Sums x (shape `s`) into `to` by adding each element to the output cell it
/// would be broadcast from.
fn sum_to_ref(x: &[f64], s: &[usize], to: &[usize]) -> Vec<f64> {
    let a = aligned(to, s.len());
    let mut out = vec![0.0; numel(to)];
    for (flat, &v) in x.iter().enumerate() {
        let idx = unravel(s, flat);
        let dst: Vec<usize> = idx
            .iter()
            .zip(&a)
            .map(|(&i, &d)| if d == 1 { 0 } else { i })
            .collect();
        out[ravel(&a, &dst)] += v;
    }
    out
}

// ---------- tests ----------

#[test]
fn concat_matches_cpu_on_every_axis() {
    let mut rng = Rng(11);
    for case in 0..12 {
        let rank = [4, 4, 5, 3, 2][case % 5];
        let base: Vec<usize> = (0..rank)
            .map(|d| {
                if d == 0 {
                    rng.size(2, 3)
                } else {
                    rng.size(1, 9)
                }
            })
            .collect();
        let axis = case % rank;
        let count = 1 + rng.below(3);
        let mut parts = Vec::new();
        for k in 0..count {
            let mut s = base.clone();
            s[axis] = rng.size(1, 7);
            let v = data((case * 10 + k) as u64, numel(&s));
            parts.push((v, s));
        }
        let tensors: Vec<Tensor> = parts.iter().map(|(v, s)| upload(v, s)).collect();
        let refs: Vec<&Tensor> = tensors.iter().collect();
        let got = concat(&refs, axis).unwrap();
        let ref_parts: Vec<(Vec<f64>, Vec<usize>)> =
            parts.iter().map(|(v, s)| (f64s(v), s.clone())).collect();
        let (want_shape, want) = concat_ref(&ref_parts, axis);
        assert_eq!(got.shape(), &want_shape[..]);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            0.0,
            0.0,
            &format!("concat case {case} axis {axis}"),
        );
    }
    // Channels axis with sizes whose products are not multiples of 256.
    let a = data(1, 3 * 5 * 17 * 19);
    let b = data(2, 3 * 2 * 17 * 19);
    let got = concat(
        &[&upload(&a, &[3, 5, 17, 19]), &upload(&b, &[3, 2, 17, 19])],
        1,
    )
    .unwrap();
    let (_, want) = concat_ref(
        &[
            (f64s(&a), vec![3, 5, 17, 19]),
            (f64s(&b), vec![3, 2, 17, 19]),
        ],
        1,
    );
    assert_close(&got.to_vec().unwrap(), &want, 0.0, 0.0, "concat channels");
}

#[test]
fn split_matches_cpu_and_undoes_concat() {
    let mut rng = Rng(23);
    for case in 0..10 {
        let rank = [4, 5, 3][case % 3];
        let mut shape: Vec<usize> = (0..rank)
            .map(|d| {
                if d == 0 {
                    rng.size(2, 3)
                } else {
                    rng.size(1, 8)
                }
            })
            .collect();
        let axis = case % rank;
        let sizes: Vec<usize> = (0..1 + rng.below(3)).map(|_| rng.size(1, 5)).collect();
        shape[axis] = sizes.iter().sum();
        let x = data(case as u64 + 100, numel(&shape));
        let xt = upload(&x, &shape);
        let pieces = split(&xt, axis, &sizes).unwrap();
        let want = split_ref(&f64s(&x), &shape, axis, &sizes);
        assert_eq!(pieces.len(), want.len());
        for (k, (p, (ws, wv))) in pieces.iter().zip(&want).enumerate() {
            assert_eq!(p.shape(), &ws[..], "case {case} piece {k}");
            assert_close(
                &p.to_vec().unwrap(),
                wv,
                0.0,
                0.0,
                &format!("split case {case} piece {k}"),
            );
        }
        let refs: Vec<&Tensor> = pieces.iter().collect();
        assert_eq!(
            concat(&refs, axis).unwrap().to_vec().unwrap(),
            x,
            "concat(split(x)) case {case}"
        );
    }
}

#[test]
fn concat_backward_is_split_by_finite_differences() {
    // L = Σ G ⊙ concat(x_0, x_1, x_2) along channels; dL/dx_k = split(G)_k.
    for (axis, shapes) in [
        (
            1,
            vec![vec![2, 3, 4, 5], vec![2, 1, 4, 5], vec![2, 2, 4, 5]],
        ),
        (3, vec![vec![2, 3, 3, 2], vec![2, 3, 3, 5]]),
        (0, vec![vec![1, 2, 3], vec![2, 2, 3]]),
    ] {
        let xs: Vec<Vec<f32>> = shapes
            .iter()
            .enumerate()
            .map(|(k, s)| data(40 + k as u64, numel(s)))
            .collect();
        let flat: Vec<f64> = xs.iter().flat_map(|v| f64s(v)).collect();
        let f = |v: &[f64]| {
            let mut at = 0;
            let parts: Vec<(Vec<f64>, Vec<usize>)> = shapes
                .iter()
                .map(|s| {
                    let p = v[at..at + numel(s)].to_vec();
                    at += numel(s);
                    (p, s.clone())
                })
                .collect();
            concat_ref(&parts, axis).1
        };
        let mut gshape = shapes[0].clone();
        gshape[axis] = shapes.iter().map(|s| s[axis]).sum();
        let g = data(77, numel(&gshape));
        let want = fd_grad(&flat, &f64s(&g), &f);
        let sizes: Vec<usize> = shapes.iter().map(|s| s[axis]).collect();
        let got: Vec<f32> = split(&upload(&g, &gshape), axis, &sizes)
            .unwrap()
            .iter()
            .flat_map(|t| t.to_vec().unwrap())
            .collect();
        assert_close(
            &got,
            &want,
            1e-4,
            1e-5,
            &format!("concat backward axis {axis}"),
        );
    }
}

#[test]
fn split_backward_is_concat_by_finite_differences() {
    // L = Σ_k Σ G_k ⊙ split(x)_k; dL/dx = concat(G_0, G_1, …).
    let shape = [3, 6, 3, 5];
    let sizes = [2, 1, 3];
    let axis = 1;
    let x = data(5, numel(&shape));
    let pieces_shape: Vec<Vec<usize>> = sizes.iter().map(|&s| vec![3, s, 3, 5]).collect();
    let gs: Vec<Vec<f32>> = pieces_shape
        .iter()
        .enumerate()
        .map(|(k, s)| data(60 + k as u64, numel(s)))
        .collect();
    let g_flat: Vec<f64> = gs.iter().flat_map(|v| f64s(v)).collect();
    let f = |v: &[f64]| -> Vec<f64> {
        split_ref(v, &shape, axis, &sizes)
            .into_iter()
            .flat_map(|p| p.1)
            .collect()
    };
    let want = fd_grad(&f64s(&x), &g_flat, &f);
    let gt: Vec<Tensor> = gs
        .iter()
        .zip(&pieces_shape)
        .map(|(v, s)| upload(v, s))
        .collect();
    let refs: Vec<&Tensor> = gt.iter().collect();
    let got = concat(&refs, axis).unwrap();
    assert_close(&got.to_vec().unwrap(), &want, 1e-4, 1e-5, "split backward");
}

/// All permutations of 0..n (Heap's algorithm).
fn permutations(n: usize) -> Vec<Vec<usize>> {
    fn go(k: usize, a: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k {
            go(k - 1, a, out);
            if k.is_multiple_of(2) {
                a.swap(i, k - 1);
            } else {
                a.swap(0, k - 1);
            }
        }
    }
    let mut out = Vec::new();
    go(n, &mut (0..n).collect(), &mut out);
    out
}

#[test]
fn permute_matches_cpu_for_every_permutation() {
    for (shape, seed) in [
        (vec![2, 3, 5, 7], 1u64),
        (vec![3, 1, 4, 2, 5], 2),
        (vec![7, 11, 13], 3),
        (vec![300], 4),
    ] {
        let x = data(seed, numel(&shape));
        let xt = upload(&x, &shape);
        let perms = permutations(shape.len());
        assert_eq!(perms.len(), (1..=shape.len()).product::<usize>());
        for dims in perms {
            let got = permute(&xt, &dims).unwrap();
            let (ws, want) = permute_ref(&f64s(&x), &shape, &dims);
            assert_eq!(got.shape(), &ws[..]);
            assert_close(
                &got.to_vec().unwrap(),
                &want,
                0.0,
                0.0,
                &format!("permute {shape:?} by {dims:?}"),
            );
        }
    }
    // An NCHW → NHWC transpose of a size that is not a multiple of 256.
    let shape = [2, 19, 23, 29];
    let x = data(9, numel(&shape));
    let got = permute(&upload(&x, &shape), &[0, 2, 3, 1]).unwrap();
    let (_, want) = permute_ref(&f64s(&x), &shape, &[0, 2, 3, 1]);
    assert_close(&got.to_vec().unwrap(), &want, 0.0, 0.0, "NCHW → NHWC");
}

#[test]
fn inverse_permutation_undoes_the_permutation() {
    for dims in permutations(5) {
        let inv = inverse_permutation(&dims);
        for i in 0..5 {
            assert_eq!(inv[dims[i]], i, "{dims:?} → {inv:?}");
        }
    }
    let shape = [2, 3, 4, 5];
    let x = data(3, numel(&shape));
    let t = permute(&upload(&x, &shape), &[2, 0, 3, 1]).unwrap();
    let back = permute(&t, &inverse_permutation(&[2, 0, 3, 1])).unwrap();
    assert_eq!(back.shape(), &shape);
    assert_eq!(back.to_vec().unwrap(), x);
}

#[test]
fn permute_backward_is_inverse_permute_by_finite_differences() {
    let shape = [2, 3, 4, 5];
    let x = f64s(&data(8, numel(&shape)));
    for dims in [vec![0, 2, 3, 1], vec![3, 1, 0, 2], vec![1, 0, 2, 3]] {
        let (out_shape, _) = permute_ref(&x, &shape, &dims);
        let g = data(30, numel(&out_shape));
        let want = fd_grad(&x, &f64s(&g), &|v| permute_ref(v, &shape, &dims).1);
        let got = permute(&upload(&g, &out_shape), &inverse_permutation(&dims)).unwrap();
        assert_eq!(got.shape(), &shape);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("permute backward {dims:?}"),
        );
    }
}

#[test]
fn pixel_shuffle_golden_follows_pytorch_channel_order() {
    // r = 2, one output channel: input channel c·4 + i·2 + j lands at row
    // offset i and column offset j, so channels (0, 1, 2, 3) of a 1×1 image
    // become [[0, 1], [2, 3]]. With a 1×2 image (values 10·ch + w) the two
    // 2×2 blocks sit side by side: row 0 = [0, 10, 1, 11], row 1 = [20, 30, 21, 31].
    let x = [0.0, 1.0, 10.0, 11.0, 20.0, 21.0, 30.0, 31.0];
    let y = pixel_shuffle(&upload(&x, &[1, 4, 1, 2]), 2).unwrap();
    assert_eq!(y.shape(), &[1, 1, 2, 4]);
    assert_eq!(
        y.to_vec().unwrap(),
        vec![0.0, 10.0, 1.0, 11.0, 20.0, 30.0, 21.0, 31.0]
    );
    let back = pixel_unshuffle(&y, 2).unwrap();
    assert_eq!(back.shape(), &[1, 4, 1, 2]);
    assert_eq!(back.to_vec().unwrap(), x.to_vec());
}

#[test]
fn pixel_shuffle_and_unshuffle_match_cpu() {
    let mut rng = Rng(5);
    for case in 0..6 {
        let r = [2, 3, 1, 4][case % 4];
        let (n, c, h, w) = (
            rng.size(2, 3),
            rng.size(1, 3),
            rng.size(1, 9),
            rng.size(1, 11),
        );
        let s = [n, c * r * r, h, w];
        let x = data(case as u64, numel(&s));
        let y = pixel_shuffle(&upload(&x, &s), r).unwrap();
        assert_eq!(y.shape(), &[n, c, h * r, w * r]);
        let want = pixel_shuffle_ref(&f64s(&x), &s, r);
        assert_close(
            &y.to_vec().unwrap(),
            &want,
            0.0,
            0.0,
            &format!("pixel_shuffle {s:?} r {r}"),
        );

        let us = [n, c, h * r, w * r];
        let z = pixel_unshuffle(&upload(&x, &us), r).unwrap();
        assert_eq!(z.shape(), &[n, c * r * r, h, w]);
        let want = pixel_unshuffle_ref(&f64s(&x), &us, r);
        assert_close(
            &z.to_vec().unwrap(),
            &want,
            0.0,
            0.0,
            &format!("pixel_unshuffle {us:?} r {r}"),
        );
    }
}

#[test]
fn pixel_shuffle_backward_is_unshuffle_by_finite_differences() {
    let r = 2;
    let s = [2, 3 * r * r, 3, 5];
    let out = [2, 3, 3 * r, 5 * r];
    let x = f64s(&data(12, numel(&s)));
    let g = data(13, numel(&out));
    let want = fd_grad(&x, &f64s(&g), &|v| pixel_shuffle_ref(v, &s, r));
    let got = pixel_unshuffle(&upload(&g, &out), r).unwrap();
    assert_close(
        &got.to_vec().unwrap(),
        &want,
        1e-4,
        1e-5,
        "pixel_shuffle backward",
    );

    // And the other way: L = Σ G ⊙ unshuffle(x), dL/dx = shuffle(G).
    let x = f64s(&data(14, numel(&out)));
    let g = data(15, numel(&s));
    let want = fd_grad(&x, &f64s(&g), &|v| pixel_unshuffle_ref(v, &out, r));
    let got = pixel_shuffle(&upload(&g, &s), r).unwrap();
    assert_close(
        &got.to_vec().unwrap(),
        &want,
        1e-4,
        1e-5,
        "pixel_unshuffle backward",
    );
}

const BROADCAST_CASES: [(&[usize], &[usize]); 8] = [
    (&[1, 5, 1, 1], &[3, 5, 7, 9]),
    (&[5], &[2, 3, 4, 5]),
    (&[5, 1, 1], &[2, 5, 6, 7]),
    (&[2, 1, 4, 1], &[2, 3, 4, 5]),
    (&[], &[3, 17]),
    (&[1], &[257]),
    (&[3, 1, 2], &[4, 3, 5, 2]),
    (&[2, 3, 1, 4, 1], &[2, 3, 5, 4, 3]),
];

#[test]
fn broadcast_to_matches_cpu() {
    for (i, (from, to)) in BROADCAST_CASES.iter().enumerate() {
        let x = data(i as u64, numel(from));
        let got = broadcast_to(&upload(&x, from), to).unwrap();
        assert_eq!(got.shape(), *to);
        let want = broadcast_ref(&f64s(&x), from, to);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            0.0,
            0.0,
            &format!("broadcast {from:?} → {to:?}"),
        );
    }
}

#[test]
fn sum_to_shape_matches_cpu() {
    let dev = device();
    let mut cases: Vec<(Vec<usize>, Vec<usize>)> = BROADCAST_CASES
        .iter()
        .map(|(a, b)| (b.to_vec(), a.to_vec()))
        .collect();
    cases.extend([
        // Bias gradients of a conv: per channel over N·H·W (one and two passes).
        (vec![2, 8, 9, 11], vec![1, 8, 1, 1]),
        (vec![4, 64, 67, 65], vec![1, 64, 1, 1]),
        (vec![3, 16, 45, 47], vec![16, 1, 1]),
        // A linear layer's bias: [B, D] → [D].
        (vec![300, 7], vec![7]),
        (vec![700, 1100], vec![1100]),
        // Kept innermost dimensions (one invocation per output).
        (vec![5, 3, 33, 35], vec![1, 3, 33, 35]),
        (vec![6, 3, 17], vec![3, 17]),
        // Everything into one value, and nothing at all.
        (vec![3, 5, 301], vec![]),
        (vec![3, 5, 301], vec![1, 1, 1]),
        (vec![2, 3, 4], vec![2, 3, 4]),
        (vec![1, 1, 7], vec![7]),
        // Per plane (over the contiguous H·W), and over the middle of a 5-D tensor.
        (vec![3, 7, 31, 33], vec![3, 7, 1, 1]),
        (vec![2, 3, 70, 5, 4], vec![2, 1, 1, 5, 1]),
        // More than 65 535 workgroups: the parallel kernel's grid wraps rows.
        (vec![66_000, 70], vec![66_000, 1]),
    ]);
    for (i, (from, to)) in cases.iter().enumerate() {
        let x = data(200 + i as u64, numel(from));
        let got = sum_to_shape(&Tensor::from_slice(&dev, &x, from).unwrap(), to).unwrap();
        assert_eq!(got.shape(), &to[..]);
        let want = sum_to_ref(&f64s(&x), from, to);
        // f32 summation: the tolerance scales with the L1 mass of each sum.
        let per_output = numel(from) / numel(to).max(1);
        let got = got.to_vec().unwrap();
        for (k, (&g, &w)) in got.iter().zip(&want).enumerate() {
            let tol = 1e-6 * per_output as f64 + 1e-6;
            assert!(
                (g as f64 - w).abs() <= tol,
                "sum {from:?} → {to:?}: element {k}: got {g}, want {w}"
            );
        }
    }
}

#[test]
fn broadcast_to_and_sum_to_shape_are_adjoint_by_finite_differences() {
    for (from, to) in [
        (&[1, 3, 1, 1][..], &[2, 3, 4, 5][..]),
        (&[3][..], &[2, 4, 3][..]),
        (&[2, 1, 4][..], &[3, 2, 5, 4][..]),
    ] {
        // L = Σ G ⊙ broadcast_to(x): dL/dx = sum_to_shape(G, shape of x).
        let x = f64s(&data(1, numel(from)));
        let g = data(2, numel(to));
        let want = fd_grad(&x, &f64s(&g), &|v| broadcast_ref(v, from, to));
        let got = sum_to_shape(&upload(&g, to), from).unwrap();
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("broadcast_to {from:?} → {to:?} backward"),
        );

        // L = Σ G ⊙ sum_to_shape(x): dL/dx = broadcast_to(G, shape of x).
        let x = f64s(&data(3, numel(to)));
        let g = data(4, numel(from));
        let want = fd_grad(&x, &f64s(&g), &|v| sum_to_ref(v, to, from));
        let got = broadcast_to(&upload(&g, from), to).unwrap();
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("sum_to_shape {to:?} → {from:?} backward"),
        );
    }
}

fn err_text(e: Error) -> String {
    e.to_string()
}

#[test]
fn layout_errors_name_the_op_and_shapes() {
    let a = upload(&data(1, 24), &[1, 2, 3, 4]);
    let b = upload(&data(2, 30), &[1, 2, 3, 5]);

    let e = concat(&[&a, &b], 1).unwrap_err();
    assert!(matches!(e, Error::Shape(_)));
    let m = err_text(e);
    assert!(
        m.contains("concat") && m.contains("[1, 2, 3, 5]") && m.contains("[1, 2, 3, 4]"),
        "{m}"
    );
    assert!(concat(&[&a, &b], 3).is_ok());
    let m = err_text(concat(&[&a], 4).unwrap_err());
    assert!(m.contains("concat") && m.contains("axis 4"), "{m}");
    assert!(matches!(concat(&[], 0), Err(Error::InvalidArgument(_))));

    let e = split(&a, 1, &[1, 2]).unwrap_err();
    assert!(matches!(e, Error::Shape(_)));
    let m = err_text(e);
    assert!(
        m.contains("split") && m.contains("[1, 2]") && m.contains("[1, 2, 3, 4]"),
        "{m}"
    );

    let m = err_text(permute(&a, &[0, 1, 1, 3]).unwrap_err());
    assert!(
        m.contains("permute") && m.contains("[0, 1, 1, 3]") && m.contains("[1, 2, 3, 4]"),
        "{m}"
    );
    assert!(permute(&a, &[0, 1, 2]).is_err());

    let m = err_text(pixel_shuffle(&a, 2).unwrap_err());
    assert!(
        m.contains("pixel_shuffle") && m.contains("[1, 2, 3, 4]"),
        "{m}"
    );
    let m = err_text(pixel_unshuffle(&a, 2).unwrap_err());
    assert!(
        m.contains("pixel_unshuffle") && m.contains("[1, 2, 3, 4]"),
        "{m}"
    );
    let m = err_text(pixel_shuffle(&upload(&[1.0; 4], &[4]), 2).unwrap_err());
    assert!(m.contains("pixel_shuffle") && m.contains("[4]"), "{m}");

    let e = broadcast_to(&a, &[1, 3, 3, 4]).unwrap_err();
    assert!(matches!(e, Error::Shape(_)));
    let m = err_text(e);
    assert!(
        m.contains("broadcast_to") && m.contains("[1, 2, 3, 4]") && m.contains("[1, 3, 3, 4]"),
        "{m}"
    );
    assert!(
        broadcast_to(&a, &[2, 3, 4]).is_err(),
        "fewer dimensions than the input"
    );

    let m = err_text(sum_to_shape(&a, &[2, 4]).unwrap_err());
    assert!(
        m.contains("sum_to_shape") && m.contains("[1, 2, 3, 4]") && m.contains("[2, 4]"),
        "{m}"
    );
    assert!(
        sum_to_shape(&a, &[1, 1, 2, 3, 4]).is_err(),
        "more dimensions than the input"
    );
}
