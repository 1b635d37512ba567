//! Foundation kernels against CPU references: round trips, fill, unary and
//! broadcasting binary ops, matmul (both kernel families), and size limits.

mod common;

use common::{assert_close, data, device, device_with};
use spikeir_core::ops::{self, BinaryOp, UnaryOp};
use spikeir_core::{Error, KernelVariant, Tensor};

#[test]
fn round_trip_preserves_every_value() {
    let dev = device();
    for shape in [
        vec![1],
        vec![7],
        vec![3, 5],
        vec![2, 3, 4, 5],
        vec![2, 1, 3, 17, 19],
        vec![],
    ] {
        let n: usize = shape.iter().product();
        let values = data(n as u64, n);
        let t = Tensor::from_slice(&dev, &values, &shape).unwrap();
        assert_eq!(t.shape(), &shape[..]);
        assert_eq!(t.to_vec().unwrap(), values, "shape {shape:?}");
    }
}

#[test]
fn from_slice_rejects_a_length_that_does_not_match_the_shape() {
    let dev = device();
    let e = Tensor::from_slice(&dev, &[1.0, 2.0, 3.0], &[2, 2]).unwrap_err();
    assert!(matches!(e, Error::Shape(_)), "{e}");
    assert!(
        e.to_string().contains("[2, 2]") && e.to_string().contains('3'),
        "{e}"
    );
    let e = Tensor::zeros(&dev, &[1, 1, 1, 1, 1, 1]).unwrap_err();
    assert!(e.to_string().contains("at most 5"), "{e}");
}

#[test]
fn fill_zeros_ones_cover_sizes_that_are_not_workgroup_multiples() {
    let dev = device();
    for n in [1usize, 255, 256, 257, 1000, 65_537] {
        assert_eq!(
            Tensor::full(&dev, &[n], 2.5).unwrap().to_vec().unwrap(),
            vec![2.5; n]
        );
        assert_eq!(
            Tensor::zeros(&dev, &[n]).unwrap().to_vec().unwrap(),
            vec![0.0; n]
        );
        assert_eq!(
            Tensor::ones(&dev, &[n]).unwrap().to_vec().unwrap(),
            vec![1.0; n]
        );
    }
}

#[test]
fn seeded_random_tensors_are_reproducible() {
    let dev = device();
    let a = Tensor::randn(&dev, &[4, 33], 42, 0.0, 1.0)
        .unwrap()
        .to_vec()
        .unwrap();
    let b = Tensor::randn(&dev, &[4, 33], 42, 0.0, 1.0)
        .unwrap()
        .to_vec()
        .unwrap();
    let c = Tensor::randn(&dev, &[4, 33], 43, 0.0, 1.0)
        .unwrap()
        .to_vec()
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a, c);
    let u = Tensor::rand(&dev, &[1000], 1, 2.0, 3.0)
        .unwrap()
        .to_vec()
        .unwrap();
    assert!(u.iter().all(|&v| (2.0..3.0).contains(&v)));
}

#[test]
fn unary_ops_match_the_cpu() {
    let dev = device();
    let n = 1031;
    let x: Vec<f32> = data(5, n);
    let pos: Vec<f32> = x.iter().map(|v| v.abs() + 0.1).collect();
    let t = Tensor::from_slice(&dev, &x, &[n]).unwrap();
    let tp = Tensor::from_slice(&dev, &pos, &[n]).unwrap();
    type Reference = Box<dyn Fn(f64) -> f64>;
    let cases: Vec<(UnaryOp, &Tensor, &[f32], Reference)> = vec![
        (UnaryOp::Neg, &t, &x, Box::new(|v| -v)),
        (UnaryOp::Abs, &t, &x, Box::new(|v: f64| v.abs())),
        (UnaryOp::Exp, &t, &x, Box::new(|v: f64| v.exp())),
        (UnaryOp::Log, &tp, &pos, Box::new(|v: f64| v.ln())),
        (UnaryOp::Sqrt, &tp, &pos, Box::new(|v: f64| v.sqrt())),
        (UnaryOp::AddScalar(1.5), &t, &x, Box::new(|v| v + 1.5)),
        (UnaryOp::SubScalar(1.5), &t, &x, Box::new(|v| v - 1.5)),
        (UnaryOp::RsubScalar(1.5), &t, &x, Box::new(|v| 1.5 - v)),
        (UnaryOp::MulScalar(-3.0), &t, &x, Box::new(|v| -3.0 * v)),
        (UnaryOp::DivScalar(4.0), &t, &x, Box::new(|v| v / 4.0)),
        (UnaryOp::RdivScalar(2.0), &tp, &pos, Box::new(|v| 2.0 / v)),
        (UnaryOp::PowScalar(2.0), &t, &x, Box::new(|v: f64| v * v)),
        (
            UnaryOp::PowScalar(3.0),
            &t,
            &x,
            Box::new(|v: f64| v * v * v),
        ),
        (
            UnaryOp::PowScalar(0.5),
            &tp,
            &pos,
            Box::new(|v: f64| v.sqrt()),
        ),
    ];
    for (op, input, host, f) in cases {
        let want: Vec<f64> = host.iter().map(|&v| f(v as f64)).collect();
        let got = ops::unary(input, op).unwrap().to_vec().unwrap();
        assert_close(&got, &want, 1e-5, 1e-6, &format!("{op:?}"));
    }
}

/// Reference broadcasting in f64, written independently of the kernel:
/// walks the output multi-index and maps it into each operand.
fn broadcast_ref(
    a: &[f32],
    sa: &[usize],
    b: &[f32],
    sb: &[usize],
    f: fn(f64, f64) -> f64,
) -> (Vec<usize>, Vec<f64>) {
    let rank = sa.len().max(sb.len());
    let pad = |s: &[usize]| {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (pa, pb) = (pad(sa), pad(sb));
    let out: Vec<usize> = pa.iter().zip(&pb).map(|(&x, &y)| x.max(y)).collect();
    let total: usize = out.iter().product();
    let mut result = Vec::with_capacity(total);
    for flat in 0..total {
        let mut idx = vec![0; rank];
        let mut r = flat;
        for d in (0..rank).rev() {
            idx[d] = r % out[d];
            r /= out[d];
        }
        let offset = |p: &[usize]| {
            let mut o = 0;
            for d in 0..rank {
                o = o * p[d] + if p[d] == 1 { 0 } else { idx[d] };
            }
            o
        };
        result.push(f(a[offset(&pa)] as f64, b[offset(&pb)] as f64));
    }
    (out, result)
}

#[test]
fn binary_ops_broadcast_like_numpy() {
    let dev = device();
    let shapes: [(&[usize], &[usize]); 7] = [
        (&[5, 7], &[5, 7]),
        (&[2, 3, 4], &[4]),
        (&[2, 1, 4], &[3, 1]),
        (&[4, 1, 3, 5, 1], &[5, 6]),
        (&[1], &[3, 300]),
        (&[], &[9]),
        (&[2, 3, 17, 19], &[1, 3, 1, 1]),
    ];
    type Reference = fn(f64, f64) -> f64;
    let ops: [(BinaryOp, Reference); 4] = [
        (BinaryOp::Add, |x, y| x + y),
        (BinaryOp::Sub, |x, y| x - y),
        (BinaryOp::Mul, |x, y| x * y),
        (BinaryOp::Div, |x, y| x / y),
    ];
    for (i, (sa, sb)) in shapes.iter().enumerate() {
        let na: usize = sa.iter().product();
        let nb: usize = sb.iter().product();
        let va = data(i as u64, na);
        // Keep divisors away from zero.
        let vb: Vec<f32> = data(100 + i as u64, nb)
            .iter()
            .map(|v| v.signum() * (v.abs() + 0.5))
            .collect();
        let ta = Tensor::from_slice(&dev, &va, sa).unwrap();
        let tb = Tensor::from_slice(&dev, &vb, sb).unwrap();
        for (op, f) in ops {
            let (out_shape, want) = broadcast_ref(&va, sa, &vb, sb, f);
            let got = ops::binary(&ta, &tb, op).unwrap();
            assert_eq!(got.shape(), &out_shape[..], "{op:?} {sa:?} {sb:?}");
            assert_close(
                &got.to_vec().unwrap(),
                &want,
                1e-6,
                1e-6,
                &format!("{op:?} {sa:?} {sb:?}"),
            );
        }
    }
}

#[test]
fn elementwise_kernels_cover_more_workgroups_than_one_grid_row() {
    // 65535 workgroups × 256 invocations is one row of the grid; go past it.
    let dev = device();
    let n = 65_535 * 256 + 1000;
    let a = Tensor::full(&dev, &[n], 1.25).unwrap();
    let b = Tensor::from_slice(
        &dev,
        &(0..n).map(|i| (i % 1024) as f32).collect::<Vec<_>>(),
        &[n],
    )
    .unwrap();
    let c = ops::binary(&a, &b, BinaryOp::Add)
        .unwrap()
        .to_vec()
        .unwrap();
    for i in [0, 1, 65_535 * 256 - 1, 65_535 * 256, n - 1] {
        assert_eq!(c[i], 1.25 + (i % 1024) as f32, "element {i}");
    }
}

#[test]
fn broadcast_mismatch_is_a_shape_error_naming_both_shapes() {
    let dev = device();
    let a = Tensor::zeros(&dev, &[2, 3]).unwrap();
    let b = Tensor::zeros(&dev, &[4]).unwrap();
    let e = ops::binary(&a, &b, BinaryOp::Add).unwrap_err().to_string();
    assert!(
        e.contains("add") && e.contains("[2, 3]") && e.contains("[4]"),
        "{e}"
    );
}

fn matmul_ref(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    shared_b: bool,
) -> Vec<f64> {
    let mut c = vec![0.0f64; batch * m * n];
    for bi in 0..batch {
        let ob = if shared_b { 0 } else { bi * k * n };
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0f64;
                for p in 0..k {
                    s += a[bi * m * k + i * k + p] as f64 * b[ob + p * n + j] as f64;
                }
                c[bi * m * n + i * n + j] = s;
            }
        }
    }
    c
}

#[test]
fn matmul_matches_the_cpu_for_both_kernel_families() {
    // Sizes off the tile grid, single rows/columns, and grids several tiles
    // wide in every dimension (M and N up to 3 tiles, batch 3).
    // (2, 64, 64, 64), (2, 9, 300, 200) and (1, 72, 36, 132) take the vec4 path
    // on CPU adapters (K and N multiples of 4), the others the scalar one.
    let cases = [
        (1, 1, 1, 1),
        (1, 3, 5, 7),
        (2, 64, 64, 64),
        (3, 130, 33, 150),
        (1, 200, 70, 9),
        (2, 9, 300, 200),
        (1, 72, 36, 132),
        (2, 5, 4, 4),
    ];
    for variant in [KernelVariant::Tiled, KernelVariant::Register] {
        let dev = device_with(variant);
        for (case, &(batch, m, k, n)) in cases.iter().enumerate() {
            let a = data(case as u64, batch * m * k);
            let b = data(50 + case as u64, batch * k * n);
            let ta = Tensor::from_slice(&dev, &a, &[batch, m, k]).unwrap();
            let tb = Tensor::from_slice(&dev, &b, &[batch, k, n]).unwrap();
            let c = ops::matmul(&ta, &tb).unwrap();
            assert_eq!(c.shape(), &[batch, m, n]);
            let want = matmul_ref(&a, &b, batch, m, k, n, false);
            assert_close(
                &c.to_vec().unwrap(),
                &want,
                1e-4,
                1e-4 * (k as f64).sqrt(),
                &format!("{variant:?} {batch}x{m}x{k}x{n}"),
            );
            // A 2-D right operand is shared by every batch entry.
            let b2 = Tensor::from_slice(&dev, &b[..k * n], &[k, n]).unwrap();
            let c2 = ops::matmul(&ta, &b2).unwrap();
            let want2 = matmul_ref(&a, &b, batch, m, k, n, true);
            assert_close(
                &c2.to_vec().unwrap(),
                &want2,
                1e-4,
                1e-4 * (k as f64).sqrt(),
                &format!("{variant:?} shared B"),
            );
        }
    }
}

#[test]
fn matmul_checks_its_shapes() {
    let dev = device();
    let a = Tensor::zeros(&dev, &[3, 4]).unwrap();
    let b = Tensor::zeros(&dev, &[5, 6]).unwrap();
    let e = ops::matmul(&a, &b).unwrap_err().to_string();
    assert!(
        e.contains("inner dimensions") && e.contains("[3, 4]") && e.contains("[5, 6]"),
        "{e}"
    );
    let v = Tensor::zeros(&dev, &[4]).unwrap();
    assert!(ops::matmul(&a, &v)
        .unwrap_err()
        .to_string()
        .contains("at least 2 dimensions"));
}

#[test]
fn a_tensor_over_the_binding_limit_is_refused_with_the_limit_in_the_message() {
    let dev = device();
    let limit = dev
        .info()
        .max_storage_binding_bytes
        .min(dev.info().max_buffer_bytes);
    let too_many = (limit / 4 + 1) as usize;
    let e = Tensor::zeros(&dev, &[too_many]).unwrap_err();
    assert!(matches!(e, Error::TooLarge(_)), "{e}");
    assert!(e.to_string().contains(&limit.to_string()), "{e}");
}

#[test]
fn memory_returns_to_the_pool_when_tensors_drop() {
    let dev = device_with(KernelVariant::Register);
    dev.synchronize().unwrap();
    let (before, buffers_before, _) = dev.memory();
    let t = Tensor::zeros(&dev, &[1000, 10]).unwrap();
    let (during, buffers_during, _) = dev.memory();
    assert!(during >= before + 40_000 && buffers_during == buffers_before + 1);
    drop(t);
    let (after, buffers_after, cached) = dev.memory();
    assert_eq!((after, buffers_after), (before, buffers_before));
    assert!(cached >= 40_000);
}
