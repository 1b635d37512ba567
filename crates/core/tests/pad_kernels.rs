//! Reflect padding against a plain f64 reference: the forward on many
//! shapes (paddings from 0 to side − 1, asymmetric, several planes), the
//! backward against central finite differences of L = Σ G ⊙ pad(x) and as
//! the adjoint of the forward, through the autograd tape, and its errors.

mod common;

use common::{assert_close, data, device, f64s, fd_grad, numel, upload, Rng};
use spikeir_core::functional as f;
use spikeir_core::ops::pad::{pad2d_reflect, pad2d_reflect_backward};
use spikeir_core::{autograd, Error, Tensor};

/// PyTorch's `reflect` index for position `o` of a padded axis: walk from
/// the edge sample back into the image, the edge itself not repeated.
fn mirror(o: i64, before: i64, size: i64) -> usize {
    let mut i = o - before;
    if i < 0 {
        i = -i;
    }
    if i >= size {
        i = 2 * (size - 1) - i;
    }
    assert!(
        (0..size).contains(&i),
        "padding too large for the reference"
    );
    i as usize
}

/// Reflect padding of `x` (NCHW `s`) by [top, bottom, left, right].
fn pad_ref(x: &[f64], s: &[usize], pad: [usize; 4]) -> Vec<f64> {
    let (n, c, h, w) = (s[0], s[1], s[2], s[3]);
    let (oh, ow) = (h + pad[0] + pad[1], w + pad[2] + pad[3]);
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in 0..n * c {
        for oy in 0..oh {
            let iy = mirror(oy as i64, pad[0] as i64, h as i64);
            for ox in 0..ow {
                let ix = mirror(ox as i64, pad[2] as i64, w as i64);
                out.push(x[(plane * h + iy) * w + ix]);
            }
        }
    }
    out
}

fn padded(s: &[usize], pad: [usize; 4]) -> Vec<usize> {
    vec![s[0], s[1], s[2] + pad[0] + pad[1], s[3] + pad[2] + pad[3]]
}

#[test]
fn pad_reflect_golden_follows_pytorch() {
    // F.pad(torch.tensor([[[[1., 2., 3.]]]]), (2, 2, 0, 0), 'reflect')
    // is [3, 2, 1, 2, 3, 2, 1]: the edge samples 1 and 3 are not repeated.
    let y = pad2d_reflect(&upload(&[1.0, 2.0, 3.0], &[1, 1, 1, 3]), [0, 0, 2, 2]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 1, 7]);
    assert_eq!(y.to_vec().unwrap(), vec![3.0, 2.0, 1.0, 2.0, 3.0, 2.0, 1.0]);
    // A 2×3 image padded by one all round: rows mirror too.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let y = pad2d_reflect(&upload(&x, &[1, 1, 2, 3]), [1, 1, 1, 1]).unwrap();
    assert_eq!(y.shape(), &[1, 1, 4, 5]);
    #[rustfmt::skip]
    let want = vec![
        5.0, 4.0, 5.0, 6.0, 5.0,
        2.0, 1.0, 2.0, 3.0, 2.0,
        5.0, 4.0, 5.0, 6.0, 5.0,
        2.0, 1.0, 2.0, 3.0, 2.0,
    ];
    assert_eq!(y.to_vec().unwrap(), want);
}

#[test]
fn pad_reflect_matches_the_reference() {
    let mut rng = Rng(31);
    let mut cases: Vec<(Vec<usize>, [usize; 4])> = vec![
        // No padding, the largest padding each side allows, a dilated 7×7
        // conv's padding 9 on a 12 × 10 map, one-pixel sides.
        (vec![2, 3, 5, 6], [0, 0, 0, 0]),
        (vec![1, 2, 5, 6], [4, 4, 5, 5]),
        (vec![1, 4, 12, 10], [9, 9, 9, 9]),
        (vec![3, 1, 1, 4], [0, 0, 3, 1]),
        (vec![1, 2, 4, 1], [3, 2, 0, 0]),
        // Several thousand outputs, so both backends thread or tile.
        (vec![2, 24, 33, 37], [2, 2, 2, 2]),
    ];
    for _ in 0..10 {
        let (h, w) = (rng.size(1, 9), rng.size(1, 9));
        let pad = [rng.below(h), rng.below(h), rng.below(w), rng.below(w)];
        cases.push((vec![rng.size(1, 3), rng.size(1, 4), h, w], pad));
    }
    for (k, (s, pad)) in cases.iter().enumerate() {
        let x = data(k as u64 + 1, numel(s));
        let y = pad2d_reflect(&upload(&x, s), *pad).unwrap();
        assert_eq!(y.shape(), &padded(s, *pad)[..], "case {k}");
        let want = pad_ref(&f64s(&x), s, *pad);
        assert_close(
            &y.to_vec().unwrap(),
            &want,
            0.0,
            0.0,
            &format!("pad {s:?} by {pad:?}"),
        );
    }
}

#[test]
fn pad_reflect_backward_matches_finite_differences() {
    for (k, (s, pad)) in [
        (vec![2, 2, 4, 5], [1, 2, 3, 0]),
        (vec![1, 3, 5, 5], [4, 4, 4, 4]),
        (vec![1, 1, 3, 7], [2, 2, 6, 6]),
        (vec![2, 1, 1, 3], [0, 0, 2, 1]),
    ]
    .into_iter()
    .enumerate()
    {
        let x = f64s(&data(40 + k as u64, numel(&s)));
        let out = padded(&s, pad);
        let g = data(50 + k as u64, numel(&out));
        let want = fd_grad(&x, &f64s(&g), &|v| pad_ref(v, &s, pad));
        let got = pad2d_reflect_backward(&upload(&g, &out), &s, pad).unwrap();
        assert_eq!(got.shape(), &s[..]);
        assert_close(
            &got.to_vec().unwrap(),
            &want,
            1e-4,
            1e-5,
            &format!("pad {s:?} by {pad:?} backward"),
        );
    }
}

#[test]
fn pad_reflect_backward_is_the_adjoint_on_a_large_map() {
    // ⟨pad(x), g⟩ = ⟨x, padᵀ(g)⟩, on a map too large for finite differences
    // (the padding of a dilated 7×7 depthwise conv, 9, on every side).
    let s = [2, 5, 23, 29];
    let pad = [9, 9, 9, 9];
    let out = padded(&s, pad);
    let x = data(7, numel(&s));
    let g = data(8, numel(&out));
    let y = pad_ref(&f64s(&x), &s, pad);
    let lhs: f64 = y.iter().zip(&g).map(|(a, &b)| a * b as f64).sum();
    let dx = pad2d_reflect_backward(&upload(&g, &out), &s, pad)
        .unwrap()
        .to_vec()
        .unwrap();
    let rhs: f64 = dx.iter().zip(&x).map(|(&a, &b)| a as f64 * b as f64).sum();
    assert!(
        (lhs - rhs).abs() <= 1e-6 * numel(&out) as f64,
        "⟨pad(x), g⟩ = {lhs}, ⟨x, padᵀ(g)⟩ = {rhs}"
    );
    // Pixels no border mirrors (rows and columns 10–12 of the middle, and
    // the edge samples, which a reflection does not repeat) keep their
    // gradient unchanged.
    let (h, w) = (s[2], s[3]);
    let (oh, ow) = (out[2], out[3]);
    for (iy, ix) in [(10, 10), (12, 18), (11, 0), (0, w - 1), (h - 1, 11)] {
        let at = (h + iy) * w + ix; // second plane
        let from = (oh + iy + pad[0]) * ow + ix + pad[2];
        assert_eq!(dx[at], g[from], "interior pixel ({iy}, {ix})");
    }
}

#[test]
fn pad_reflect_records_its_gradient_on_the_tape() {
    let dev = device();
    let s = [1, 2, 4, 6];
    let pad = [3, 1, 2, 5];
    let out = padded(&s, pad);
    let x = data(3, numel(&s));
    let g = data(4, numel(&out));
    autograd::zero_grad();
    let p = autograd::param(&Tensor::from_slice(&dev, &x, &s).unwrap());
    let y = f::pad2d_reflect(&p, pad).unwrap();
    let seed = Tensor::from_slice(&dev, &g, &out).unwrap();
    autograd::backward(&y, Some(&seed)).unwrap();
    let got = autograd::grad(&p).unwrap().to_vec().unwrap();
    let want = fd_grad(&f64s(&x), &f64s(&g), &|v| pad_ref(v, &s, pad));
    assert_close(&got, &want, 1e-4, 1e-5, "pad through the tape");
    // Under no-grad nothing is recorded.
    let before = autograd::tape_len();
    let y = autograd::no_grad(|| f::pad2d_reflect(&p, pad)).unwrap();
    assert_eq!(y.shape(), &out[..]);
    assert_eq!(autograd::tape_len(), before);
}

#[test]
fn pad_reflect_errors_name_the_side_and_the_shape() {
    let x = upload(&data(1, 2 * 3 * 4 * 5), &[2, 3, 4, 5]);
    for (pad, side, size) in [
        ([4, 0, 0, 0], "top", "height 4"),
        ([0, 5, 0, 0], "bottom", "height 4"),
        ([0, 0, 5, 0], "left", "width 5"),
        ([0, 0, 0, 7], "right", "width 5"),
    ] {
        let e = pad2d_reflect(&x, pad).unwrap_err();
        assert!(matches!(e, Error::InvalidArgument(_)), "{e}");
        let m = e.to_string();
        assert!(
            m.contains("pad2d_reflect")
                && m.contains(side)
                && m.contains(size)
                && m.contains("[2, 3, 4, 5]"),
            "{m}"
        );
    }
    assert!(pad2d_reflect(&x, [3, 3, 4, 4]).is_ok());
    let m = pad2d_reflect(&upload(&[1.0; 6], &[2, 3]), [0, 0, 1, 1])
        .unwrap_err()
        .to_string();
    assert!(m.contains("NCHW") && m.contains("[2, 3]"), "{m}");
    let e = pad2d_reflect_backward(&x, &[2, 3, 4, 4], [0, 0, 1, 1]).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e}");
    assert!(e.to_string().contains("[2, 3, 4, 6]"), "{e}");
}
