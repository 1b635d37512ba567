//! Maximum over axes against a CPU reference, and its backward (PyTorch's
//! `amax` rule: each output's gradient split evenly among tied maxima)
//! against a hand-derived f64 reference, on the device under test and on the
//! native CPU backend.

mod common;

use std::sync::Arc;

use common::{assert_close, cpu_device, data, device};
use spikeir_core::functional as f;
use spikeir_core::ops::reduce::{max_axes, max_axes_backward};
use spikeir_core::{autograd, Device, Tensor};

#[test]
fn max_over_axes_matches_the_cpu() {
    let dev = device();
    // [T=3, B=2, C=5, H=4, W=7]; reduce C,H,W (attention's temporal gate),
    // T,H,W (channel gate), axis 1 alone, and a long single axis (tree path).
    let shape = [3usize, 2, 5, 4, 7];
    let n: usize = shape.iter().product();
    let x = data(9, n);
    let t = Tensor::from_slice(&dev, &x, &shape).unwrap();
    let idx = |i: [usize; 5]| (((i[0] * 2 + i[1]) * 5 + i[2]) * 4 + i[3]) * 7 + i[4];
    for axes in [vec![2usize, 3, 4], vec![0, 3, 4], vec![1]] {
        let got = max_axes(&t, &axes, true).unwrap();
        let gs: Vec<usize> = (0..5)
            .map(|d| if axes.contains(&d) { 1 } else { shape[d] })
            .collect();
        assert_eq!(got.shape(), &gs[..]);
        let g = got.to_vec().unwrap();
        let mut want = vec![f32::MIN; g.len()];
        for a in 0..3 {
            for b in 0..2 {
                for c in 0..5 {
                    for h in 0..4 {
                        for w in 0..7 {
                            let i = [a, b, c, h, w];
                            let o: Vec<usize> = (0..5)
                                .map(|d| if axes.contains(&d) { 0 } else { i[d] })
                                .collect();
                            let oi = (((o[0] * gs[1] + o[1]) * gs[2] + o[2]) * gs[3] + o[3])
                                * gs[4]
                                + o[4];
                            want[oi] = want[oi].max(x[idx(i)]);
                        }
                    }
                }
            }
        }
        assert_eq!(g, want, "axes {axes:?}");
    }
    let long = data(3, 100_000);
    let tl = Tensor::from_slice(&dev, &long, &[100_000]).unwrap();
    let m = max_axes(&tl, &[0], false).unwrap();
    assert_eq!(m.shape(), &[] as &[usize]);
    assert_eq!(
        m.to_vec().unwrap()[0],
        long.iter().cloned().fold(f32::MIN, f32::max)
    );
}

/// Row-major strides of `shape`.
fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// The output index (axes kept as size 1) of each input element.
fn output_index(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    let out_shape: Vec<usize> = (0..shape.len())
        .map(|d| if axes.contains(&d) { 1 } else { shape[d] })
        .collect();
    let (is, os) = (strides(shape), strides(&out_shape));
    let n: usize = shape.iter().product();
    (0..n)
        .map(|i| {
            (0..shape.len())
                .filter(|d| !axes.contains(d))
                .map(|d| (i / is[d]) % shape[d] * os[d])
                .sum()
        })
        .collect()
}

/// d/dx of Σ g ⊙ max(x) in f64, by definition of the amax rule: the k
/// elements equal to their output's maximum each get g[o] / k, all others 0.
fn max_backward_reference(x: &[f32], shape: &[usize], axes: &[usize], g: &[f32]) -> Vec<f64> {
    let o = output_index(shape, axes);
    let mut max = vec![f32::NEG_INFINITY; g.len()];
    for (i, &v) in x.iter().enumerate() {
        max[o[i]] = max[o[i]].max(v);
    }
    let mut ties = vec![0usize; g.len()];
    for (i, &v) in x.iter().enumerate() {
        ties[o[i]] += (v == max[o[i]]) as usize;
    }
    x.iter()
        .enumerate()
        .map(|(i, &v)| {
            if v == max[o[i]] {
                g[o[i]] as f64 / ties[o[i]] as f64
            } else {
                0.0
            }
        })
        .collect()
}

/// Values on a coarse grid (steps of 0.5 in [-1, 1]), so most maxima are tied.
fn tied(seed: u64, n: usize) -> Vec<f32> {
    data(seed, n)
        .iter()
        .map(|v| (v * 2.0).round() / 2.0)
        .collect()
}

fn max_backward_splits_ties(dev: &Arc<Device>) {
    // Hand-derived: rows [1, 3, 3] and [2, 2, 2], max over axis 1 with
    // gradients 6 and 9: the first row's two 3s get 3 each, the second
    // row's three 2s get 3 each.
    let x = Tensor::from_slice(dev, &[1.0, 3.0, 3.0, 2.0, 2.0, 2.0], &[2, 3]).unwrap();
    let m = max_axes(&x, &[1], true).unwrap();
    let g = Tensor::from_slice(dev, &[6.0, 9.0], &[2]).unwrap();
    let gx = max_axes_backward(&g, &x, &m, &[1]).unwrap();
    assert_eq!(gx.to_vec().unwrap(), [0.0, 3.0, 3.0, 3.0, 3.0, 3.0]);

    // The shapes of the forward test (attention's gates) and a long single
    // axis (the tree reduction on wgpu, split partial counts on the CPU),
    // through the tape, with and without keepdim.
    let cases: [(&[usize], &[usize]); 5] = [
        (&[3, 2, 5, 4, 7], &[2, 3, 4]),
        (&[3, 2, 5, 4, 7], &[0, 3, 4]),
        (&[3, 2, 5, 4, 7], &[1]),
        (&[2, 1, 6, 1, 3], &[0, 2, 4]),
        (&[60_000], &[0]),
    ];
    for (k, &(shape, axes)) in cases.iter().enumerate() {
        for keepdim in [true, false] {
            autograd::zero_grad();
            let n: usize = shape.iter().product();
            let xv = tied(11 + k as u64, n);
            let xp = autograd::param(&Tensor::from_slice(dev, &xv, shape).unwrap());
            let y = f::max_axes(&xp, axes, keepdim).unwrap();
            let gv: Vec<f32> = data(31 + k as u64, y.numel())
                .iter()
                .map(|v| v + 1.5)
                .collect();
            let seed = Tensor::from_slice(dev, &gv, y.shape()).unwrap();
            autograd::backward(&y, Some(&seed)).unwrap();
            let got = autograd::grad(&xp).unwrap().to_vec().unwrap();
            let want = max_backward_reference(&xv, shape, axes, &gv);
            assert!(
                want.iter().filter(|&&w| w != 0.0).count() > y.numel(),
                "{shape:?} over {axes:?}: the data must hold ties"
            );
            assert_close(
                &got,
                &want,
                1e-6,
                0.0,
                &format!("max backward {shape:?} over {axes:?} keepdim {keepdim}"),
            );
        }
    }
    autograd::zero_grad();

    // A gradient that does not match the maximum is an error naming both shapes.
    let bad = Tensor::from_slice(dev, &[1.0, 2.0, 3.0], &[3]).unwrap();
    let e = max_axes_backward(&bad, &x, &m, &[1])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("max_backward") && e.contains("[3]") && e.contains("[2, 1]"),
        "{e}"
    );
}

#[test]
fn max_backward_splits_the_gradient_among_ties() {
    max_backward_splits_ties(&device());
}

#[test]
fn max_backward_splits_the_gradient_among_ties_on_the_cpu_backend() {
    max_backward_splits_ties(&cpu_device());
}
