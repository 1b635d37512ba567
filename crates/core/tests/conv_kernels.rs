//! conv2d forward and backward kernels (both kernel families) against a plain
//! f64 reference convolution: the forward directly, the three gradients
//! against central finite differences of the reference loss
//! L = Σ G ⊙ conv(x, w, b) for a random G (exact up to rounding, since L is
//! linear in x, w and b).

mod common;

use std::sync::Arc;

use common::{assert_close, data, device_with};
use spikeir_core::ops::conv::{
    conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
    conv2d_output_shape, Conv2dArgs,
};
use spikeir_core::{Device, Error, KernelVariant, Tensor};

const VARIANTS: [KernelVariant; 2] = [KernelVariant::Register, KernelVariant::Tiled];

/// One convolution: input [n, cin, h, w], weight [cout, cin/groups, kh, kw].
#[derive(Debug, Clone, Copy)]
struct Case {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    k: [usize; 2],
    args: Conv2dArgs,
    bias: bool,
}

impl Case {
    fn x_shape(&self) -> [usize; 4] {
        [self.n, self.cin, self.h, self.w]
    }
    fn w_shape(&self) -> [usize; 4] {
        [self.cout, self.cin / self.args.groups, self.k[0], self.k[1]]
    }
}

fn args(
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Conv2dArgs {
    Conv2dArgs {
        stride,
        padding,
        dilation,
        groups,
    }
}

fn case(
    n: usize,
    cin: usize,
    hw: [usize; 2],
    cout: usize,
    k: [usize; 2],
    args: Conv2dArgs,
    bias: bool,
) -> Case {
    Case {
        n,
        cin,
        h: hw[0],
        w: hw[1],
        cout,
        k,
        args,
        bias,
    }
}

/// Output size by the textbook formula, written out again here.
fn out_size(len: usize, k: usize, s: usize, p: usize, d: usize) -> usize {
    (len + 2 * p - d * (k - 1) - 1) / s + 1
}

/// The reference: y[n, o, i, j] = b[o] + Σ_{c, ky, kx} x[n, g·cig + c, i·s + ky·d − p, j·s + kx·d − p] · w[o, c, ky, kx].
fn conv_ref(
    x: &[f64],
    xs: [usize; 4],
    w: &[f64],
    ws: [usize; 4],
    b: Option<&[f64]>,
    a: &Conv2dArgs,
) -> (Vec<f64>, [usize; 4]) {
    let [n, cin, h, wd] = xs;
    let [cout, cig, kh, kw] = ws;
    let cog = cout / a.groups;
    let ho = out_size(h, kh, a.stride[0], a.padding[0], a.dilation[0]);
    let wo = out_size(wd, kw, a.stride[1], a.padding[1], a.dilation[1]);
    let mut y = vec![0.0; n * cout * ho * wo];
    for ni in 0..n {
        for o in 0..cout {
            let g = o / cog;
            for i in 0..ho {
                for j in 0..wo {
                    let mut s = b.map_or(0.0, |b| b[o]);
                    for c in 0..cig {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (i * a.stride[0] + ky * a.dilation[0]) as isize
                                    - a.padding[0] as isize;
                                let ix = (j * a.stride[1] + kx * a.dilation[1]) as isize
                                    - a.padding[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x[((ni * cin + g * cig + c) * h + iy as usize) * wd
                                    + ix as usize];
                                s += xv * w[((o * cig + c) * kh + ky) * kw + kx];
                            }
                        }
                    }
                    y[((ni * cout + o) * ho + i) * wo + j] = s;
                }
            }
        }
    }
    (y, [n, cout, ho, wo])
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// Host data of a case: x, w, bias (if any) and a random grad_out G.
struct Inputs {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    g: Vec<f32>,
}

fn inputs(c: &Case, seed: u64) -> Inputs {
    let ys = conv2d_output_shape(&c.x_shape(), &c.w_shape(), &c.args).unwrap();
    Inputs {
        x: data(seed, c.x_shape().iter().product()),
        w: data(seed + 1, c.w_shape().iter().product()),
        b: c.bias.then(|| data(seed + 2, c.cout)),
        g: data(seed + 3, ys.iter().product()),
    }
}

fn upload(dev: &Arc<Device>, v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(dev, v, shape).unwrap()
}

/// Absolute tolerance for sums of `terms` products of values in [−1, 1].
fn atol(terms: usize) -> f64 {
    1e-5 * (terms as f64).sqrt().max(1.0)
}

fn check_forward(dev: &Arc<Device>, c: &Case, seed: u64) {
    let inp = inputs(c, seed);
    let x = upload(dev, &inp.x, &c.x_shape());
    let w = upload(dev, &inp.w, &c.w_shape());
    let b = inp.b.as_ref().map(|b| upload(dev, b, &[c.cout]));
    let y = conv2d(&x, &w, b.as_ref(), &c.args).unwrap();
    let (want, ys) = conv_ref(
        &f64s(&inp.x),
        c.x_shape(),
        &f64s(&inp.w),
        c.w_shape(),
        inp.b.as_deref().map(f64s).as_deref(),
        &c.args,
    );
    assert_eq!(y.shape(), &ys[..], "{c:?}");
    let terms = c.cin / c.args.groups * c.k[0] * c.k[1];
    let what = format!("{:?} forward {c:?}", dev.info().kernel_variant);
    assert_close(&y.to_vec().unwrap(), &want, 1e-4, atol(terms), &what);
}

#[test]
fn hand_derived_golden_values() {
    // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], w = [[1, 2], [3, 4]], b = 0.5, no padding:
    //   y[i, j] = x[i, j] + 2 x[i, j+1] + 3 x[i+1, j] + 4 x[i+1, j+1] + 0.5
    //   y = [[1+4+12+20, 2+6+15+24], [4+10+21+32, 5+12+24+36]] + 0.5 = [[37.5, 47.5], [67.5, 77.5]].
    // With G = 1 everywhere, L = Σ y:
    //   dL/dx[r, c] = Σ of w[r − i, c − j] over the outputs (i, j) that see x[r, c]:
    //     corners see one tap, edges two, the centre all four:
    //     [[1, 1+2, 2], [1+3, 1+2+3+4, 2+4], [3, 3+4, 4]] = [[1, 3, 2], [4, 10, 6], [3, 7, 4]];
    //   dL/dw[ky, kx] = Σ of the 2×2 block of x at (ky, kx):
    //     [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]] = [[12, 16], [24, 28]];
    //   dL/db = number of outputs = 4.
    for variant in VARIANTS {
        let dev = device_with(variant);
        let x = upload(&dev, &[1., 2., 3., 4., 5., 6., 7., 8., 9.], &[1, 1, 3, 3]);
        let w = upload(&dev, &[1., 2., 3., 4.], &[1, 1, 2, 2]);
        let b = upload(&dev, &[0.5], &[1]);
        let a = Conv2dArgs::default();
        let y = conv2d(&x, &w, Some(&b), &a).unwrap();
        assert_eq!(y.shape(), &[1, 1, 2, 2]);
        assert_eq!(
            y.to_vec().unwrap(),
            vec![37.5, 47.5, 67.5, 77.5],
            "{variant:?}"
        );
        let g = Tensor::ones(&dev, &[1, 1, 2, 2]).unwrap();
        let dx = conv2d_backward_input(&g, &w, &[1, 1, 3, 3], &a).unwrap();
        assert_eq!(
            dx.to_vec().unwrap(),
            vec![1., 3., 2., 4., 10., 6., 3., 7., 4.],
            "{variant:?}"
        );
        let dw = conv2d_backward_weight(&g, &x, &[1, 1, 2, 2], &a).unwrap();
        assert_eq!(dw.shape(), &[1, 1, 2, 2]);
        assert_eq!(
            dw.to_vec().unwrap(),
            vec![12., 16., 24., 28.],
            "{variant:?}"
        );
        assert_eq!(
            conv2d_backward_bias(&g).unwrap().to_vec().unwrap(),
            vec![4.0],
            "{variant:?}"
        );
    }
}

/// Shapes covering every argument: odd sizes, stride, dilation, padding 0–2,
/// asymmetric kernels and arguments, groups, depthwise (with 5 groups, and
/// with 8, which the kernels fold into groups of four), channel counts off
/// every tile (register tiles of 4/16/32 channels, tiled 64), with and
/// without bias.
#[rustfmt::skip]
fn forward_cases() -> Vec<Case> {
    let d = Conv2dArgs::default();
    vec![
        case(1, 1, [5, 5], 1, [3, 3], d, false),
        case(2, 3, [9, 7], 5, [3, 3], args([1, 1], [1, 1], [1, 1], 1), true),
        case(2, 4, [11, 10], 6, [3, 3], args([2, 2], [1, 1], [1, 1], 1), true),
        case(1, 5, [12, 9], 7, [3, 3], args([1, 1], [2, 2], [2, 2], 1), false),
        case(2, 6, [8, 8], 4, [3, 3], args([1, 1], [1, 1], [1, 1], 2), true),
        case(2, 5, [9, 9], 5, [3, 3], args([1, 1], [1, 1], [1, 1], 5), true),
        case(2, 8, [9, 10], 8, [3, 3], args([1, 1], [1, 1], [1, 1], 8), true),
        case(1, 3, [7, 6], 6, [3, 3], args([2, 1], [1, 0], [1, 1], 3), false),
        case(2, 3, [6, 13], 4, [1, 5], args([1, 2], [0, 2], [2, 1], 1), true),
        case(3, 17, [6, 5], 33, [1, 1], d, true),
        case(1, 9, [10, 11], 40, [3, 3], args([1, 1], [1, 1], [1, 1], 1), true),
        case(2, 8, [13, 12], 12, [5, 5], args([3, 3], [2, 2], [1, 1], 2), false),
        case(2, 64, [20, 23], 64, [3, 3], args([1, 1], [1, 1], [1, 1], 1), true),
        // Many workgroups: 6300 pixels take 99 tiled workgroups and 7 register ones.
        case(1, 2, [70, 90], 3, [3, 3], args([1, 1], [1, 1], [1, 1], 1), true),
    ]
}

#[test]
fn forward_matches_the_reference_for_both_kernel_families() {
    for variant in VARIANTS {
        let dev = device_with(variant);
        for (i, c) in forward_cases().iter().enumerate() {
            check_forward(&dev, c, 10 * i as u64);
        }
    }
}

/// L = Σ G ⊙ conv(x, w, b) in f64.
fn loss(inp: &Inputs, x: &[f64], w: &[f64], b: Option<&[f64]>, c: &Case) -> f64 {
    let (y, _) = conv_ref(x, c.x_shape(), w, c.w_shape(), b, &c.args);
    y.iter().zip(&inp.g).map(|(y, &g)| y * g as f64).sum()
}

/// Elements to check by finite differences: all of a small tensor, an even
/// spread of about 400 of a large one (each costs two reference convolutions).
fn probes(len: usize) -> Vec<usize> {
    (0..len)
        .step_by(len.div_ceil(400))
        .chain([len - 1])
        .collect()
}

/// Central differences of `f` at `v` for the elements `at`.
fn finite_differences(v: &[f64], at: &[usize], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    let eps = 1e-3;
    let mut p = v.to_vec();
    at.iter()
        .map(|&i| {
            p[i] = v[i] + eps;
            let up = f(&p);
            p[i] = v[i] - eps;
            let down = f(&p);
            p[i] = v[i];
            (up - down) / (2.0 * eps)
        })
        .collect()
}

fn picked(v: &[f32], at: &[usize]) -> Vec<f32> {
    at.iter().map(|&i| v[i]).collect()
}

fn check_backward(dev: &Arc<Device>, c: &Case, seed: u64) {
    let inp = inputs(c, seed);
    let (x, w) = (f64s(&inp.x), f64s(&inp.w));
    let b = inp.b.as_deref().map(f64s);
    let ys = conv2d_output_shape(&c.x_shape(), &c.w_shape(), &c.args).unwrap();
    let g = upload(dev, &inp.g, &ys);
    let what = |grad: &str| format!("{:?} {grad} {c:?}", dev.info().kernel_variant);

    let at = probes(x.len());
    let want_dx = finite_differences(&x, &at, |x| loss(&inp, x, &w, b.as_deref(), c));
    let dx = conv2d_backward_input(
        &g,
        &upload(dev, &inp.w, &c.w_shape()),
        &c.x_shape(),
        &c.args,
    )
    .unwrap();
    assert_eq!(dx.shape(), &c.x_shape());
    let taps = c.k[0] * c.k[1];
    let got = picked(&dx.to_vec().unwrap(), &at);
    assert_close(
        &got,
        &want_dx,
        1e-4,
        atol(c.cout / c.args.groups * taps),
        &what("input gradient"),
    );

    let at = probes(w.len());
    let want_dw = finite_differences(&w, &at, |w| loss(&inp, &x, w, b.as_deref(), c));
    let dw = conv2d_backward_weight(
        &g,
        &upload(dev, &inp.x, &c.x_shape()),
        &c.w_shape(),
        &c.args,
    )
    .unwrap();
    assert_eq!(dw.shape(), &c.w_shape());
    let got = picked(&dw.to_vec().unwrap(), &at);
    assert_close(
        &got,
        &want_dw,
        1e-4,
        atol(ys[0] * ys[2] * ys[3]),
        &what("weight gradient"),
    );

    if let Some(b) = &b {
        let want_db = finite_differences(b, &(0..b.len()).collect::<Vec<_>>(), |b| {
            loss(&inp, &x, &w, Some(b), c)
        });
        let db = conv2d_backward_bias(&g).unwrap();
        assert_eq!(db.shape(), &[c.cout]);
        assert_close(
            &db.to_vec().unwrap(),
            &want_db,
            1e-4,
            atol(ys[0] * ys[2] * ys[3]),
            &what("bias gradient"),
        );
    }
}

/// Backward shapes: padding, stride (incl. one that skips input pixels and
/// ones that leave the last rows unread), dilation, asymmetric arguments,
/// groups, depthwise (folded with 4 groups, plain with 3), and channel counts that select each register tile of
/// the input gradient (4/16/32 input channels) and weight gradient (4/16 on
/// either side).
#[rustfmt::skip]
fn backward_cases() -> Vec<Case> {
    vec![
        case(2, 3, [7, 6], 5, [3, 3], args([1, 1], [1, 1], [1, 1], 1), true),
        case(2, 4, [9, 8], 6, [3, 3], args([2, 2], [1, 1], [1, 1], 1), true),
        case(1, 3, [8, 9], 4, [1, 1], args([2, 3], [0, 0], [1, 1], 1), false),
        case(1, 3, [10, 9], 5, [3, 3], args([1, 1], [2, 2], [2, 2], 1), true),
        case(2, 3, [6, 11], 4, [2, 5], args([2, 1], [1, 2], [1, 2], 1), false),
        case(2, 6, [7, 7], 4, [3, 3], args([1, 1], [1, 1], [1, 1], 2), true),
        case(2, 4, [8, 7], 4, [3, 3], args([2, 1], [1, 1], [1, 1], 4), true),
        case(1, 3, [7, 6], 3, [3, 3], args([1, 1], [1, 1], [1, 1], 3), true),
        case(1, 8, [11, 10], 6, [5, 3], args([3, 2], [2, 0], [1, 1], 2), false),
        case(1, 20, [4, 3], 36, [3, 3], args([1, 1], [1, 1], [1, 1], 1), true),
        case(1, 9, [5, 6], 2, [3, 3], args([1, 1], [1, 1], [1, 1], 1), true),
    ]
}

#[test]
fn gradients_match_finite_differences_for_both_kernel_families() {
    for variant in VARIANTS {
        let dev = device_with(variant);
        for (i, c) in backward_cases().iter().enumerate() {
            check_backward(&dev, c, 100 + 10 * i as u64);
        }
    }
}

#[test]
fn weight_gradient_reduces_over_many_pixels() {
    // 2·61·67 output pixels reduce into 3·2·3·3 weights: many partial sums.
    for variant in VARIANTS {
        let dev = device_with(variant);
        let c = case(
            2,
            2,
            [61, 67],
            3,
            [3, 3],
            args([1, 1], [1, 1], [1, 1], 1),
            true,
        );
        let inp = inputs(&c, 7);
        let ys = conv2d_output_shape(&c.x_shape(), &c.w_shape(), &c.args).unwrap();
        let g = upload(&dev, &inp.g, &ys);
        let dw = conv2d_backward_weight(
            &g,
            &upload(&dev, &inp.x, &c.x_shape()),
            &c.w_shape(),
            &c.args,
        )
        .unwrap();
        // dL/dw[o, c, ky, kx] = Σ_{n,i,j} G[n, o, i, j] · x[n, c, i + ky − 1, j + kx − 1].
        let [n, cin, h, w] = c.x_shape();
        let mut want = vec![0.0; c.w_shape().iter().product()];
        for o in 0..c.cout {
            for ci in 0..cin {
                for ky in 0..3 {
                    for kx in 0..3 {
                        let mut s = 0.0;
                        for ni in 0..n {
                            for i in 0..h {
                                for j in 0..w {
                                    let (iy, ix) = (i + ky, j + kx);
                                    if iy >= 1 && ix >= 1 && iy - 1 < h && ix - 1 < w {
                                        s += inp.g[((ni * c.cout + o) * h + i) * w + j] as f64
                                            * inp.x[((ni * cin + ci) * h + iy - 1) * w + ix - 1]
                                                as f64;
                                    }
                                }
                            }
                        }
                        want[((o * cin + ci) * 3 + ky) * 3 + kx] = s;
                    }
                }
            }
        }
        assert_close(
            &dw.to_vec().unwrap(),
            &want,
            1e-4,
            atol(n * h * w),
            &format!("{variant:?}"),
        );
        let db = conv2d_backward_bias(&g).unwrap().to_vec().unwrap();
        let want_db: Vec<f64> = (0..c.cout)
            .map(|o| {
                (0..n)
                    .flat_map(|ni| (0..h * w).map(move |k| (ni, k)))
                    .map(|(ni, k)| inp.g[(ni * c.cout + o) * h * w + k] as f64)
                    .sum()
            })
            .collect();
        assert_close(
            &db,
            &want_db,
            1e-4,
            atol(n * h * w),
            &format!("{variant:?} bias"),
        );
    }
}

#[test]
fn grids_wider_than_one_dimension_wrap() {
    // A depthwise 1×1 convolution with 65 601 groups (odd, so not folded into
    // groups of four) gives every kernel (forward, input and weight gradient)
    // one workgroup per group, more than the 65 535 of one grid dimension. Per channel c: y = w·x + b, dx = w·g, dw = x·g, db = g.
    // The tiled kernels run 256 invocations per workgroup, 17 s for this on
    // lavapipe, so they are checked on GPUs only; both families share the grid
    // code.
    let c = 65_601;
    let x = data(1, c);
    let w = data(2, c);
    let b = data(3, c);
    let g = data(4, c);
    let a = args([1, 1], [0, 0], [1, 1], c);
    for variant in VARIANTS {
        let dev = device_with(variant);
        if variant == KernelVariant::Tiled && dev.info().device_type == "cpu" {
            continue;
        }
        let (tx, tw, tb, tg) = (
            upload(&dev, &x, &[1, c, 1, 1]),
            upload(&dev, &w, &[c, 1, 1, 1]),
            upload(&dev, &b, &[c]),
            upload(&dev, &g, &[1, c, 1, 1]),
        );
        let y = conv2d(&tx, &tw, Some(&tb), &a).unwrap().to_vec().unwrap();
        let dx = conv2d_backward_input(&tg, &tw, &[1, c, 1, 1], &a)
            .unwrap()
            .to_vec()
            .unwrap();
        let dw = conv2d_backward_weight(&tg, &tx, &[c, 1, 1, 1], &a)
            .unwrap()
            .to_vec()
            .unwrap();
        let db = conv2d_backward_bias(&tg).unwrap().to_vec().unwrap();
        let f = |u: &[f32], v: &[f32], add: Option<&[f32]>| -> Vec<f64> {
            (0..c)
                .map(|i| u[i] as f64 * v[i] as f64 + add.map_or(0.0, |a| a[i] as f64))
                .collect()
        };
        let what = format!("{variant:?}");
        assert_close(&y, &f(&w, &x, Some(&b)), 1e-6, 1e-6, &what);
        assert_close(&dx, &f(&w, &g, None), 1e-6, 1e-6, &what);
        assert_close(&dw, &f(&x, &g, None), 1e-6, 1e-6, &what);
        assert_close(&db, &f64s(&g), 0.0, 0.0, &what);
    }
}

#[test]
fn output_shape_follows_the_formula() {
    let a = args([2, 3], [1, 2], [2, 1], 2);
    assert_eq!(
        conv2d_output_shape(&[4, 6, 17, 20], &[8, 3, 3, 5], &a).unwrap(),
        vec![4, 8, 8, 7]
    );
    assert_eq!(
        conv2d_output_shape(&[1, 1, 3, 3], &[1, 1, 3, 3], &Conv2dArgs::default()).unwrap(),
        vec![1, 1, 1, 1]
    );
}

/// Asserts that `e` is the expected kind of error and names `what`.
fn assert_error(e: Error, shape_error: bool, what: &[&str]) {
    assert!(
        matches!(
            (&e, shape_error),
            (Error::Shape(_), true) | (Error::InvalidArgument(_), false)
        ),
        "{e}"
    );
    for w in what {
        assert!(e.to_string().contains(w), "'{e}' does not name {w}");
    }
}

#[test]
fn mismatched_shapes_are_errors_naming_conv2d_and_the_shapes() {
    let dev = device_with(KernelVariant::Register);
    let d = Conv2dArgs::default();
    let x = Tensor::zeros(&dev, &[1, 3, 5, 5]).unwrap();
    let zeros = |shape: &[usize]| Tensor::zeros(&dev, shape).unwrap();

    // 3 input channels, but the weight expects 2.
    let e = conv2d(&x, &zeros(&[4, 2, 3, 3]), None, &d).unwrap_err();
    assert_error(e, true, &["conv2d", "[1, 3, 5, 5]", "[4, 2, 3, 3]"]);
    // 3 groups do not divide 4 input channels.
    let a = args([1, 1], [0, 0], [1, 1], 3);
    let e = conv2d_output_shape(&[1, 4, 5, 5], &[6, 2, 3, 3], &a).unwrap_err();
    assert_error(
        e,
        false,
        &["conv2d", "groups", "[1, 4, 5, 5]", "[6, 2, 3, 3]"],
    );
    // A 5×5 kernel does not fit a 2×2 input padded by 1.
    let a = args([1, 1], [1, 1], [1, 1], 1);
    let e = conv2d_output_shape(&[1, 1, 2, 2], &[1, 1, 5, 5], &a).unwrap_err();
    assert_error(e, true, &["conv2d", "[1, 1, 2, 2]", "[1, 1, 5, 5]"]);
    // Nor does a 3×3 kernel dilated by 3 (7×7) fit a 5×5 input.
    let a = args([1, 1], [0, 0], [3, 3], 1);
    let e = conv2d_output_shape(&[1, 3, 5, 5], &[4, 3, 3, 3], &a).unwrap_err();
    assert_error(e, true, &["conv2d", "[1, 3, 5, 5]", "[4, 3, 3, 3]"]);

    let e = conv2d_output_shape(&[1, 3, 5], &[4, 3, 3, 3], &d).unwrap_err();
    assert_error(e, true, &["conv2d", "[1, 3, 5]"]);
    let a = args([0, 1], [0, 0], [1, 1], 1);
    let e = conv2d_output_shape(&[1, 3, 5, 5], &[4, 3, 3, 3], &a).unwrap_err();
    assert_error(e, false, &["conv2d", "stride"]);

    let w = zeros(&[4, 3, 3, 3]);
    let e = conv2d(&x, &w, Some(&zeros(&[3])), &d).unwrap_err();
    assert_error(e, true, &["conv2d", "bias [3]", "[4, 3, 3, 3]"]);
    // grad_out must be the output shape, [1, 4, 3, 3].
    let g = zeros(&[1, 4, 4, 4]);
    let e = conv2d_backward_input(&g, &w, &[1, 3, 5, 5], &d).unwrap_err();
    assert_error(
        e,
        true,
        &["conv2d_backward_input", "[1, 4, 4, 4]", "[1, 4, 3, 3]"],
    );
    let e = conv2d_backward_weight(&g, &x, &[4, 3, 3, 3], &d).unwrap_err();
    assert_error(
        e,
        true,
        &["conv2d_backward_weight", "[1, 4, 4, 4]", "[1, 4, 3, 3]"],
    );
    let e = conv2d_backward_bias(&zeros(&[4, 4])).unwrap_err();
    assert_error(e, true, &["conv2d_backward_bias", "[4, 4]"]);
}

fn seconds(f: impl Fn() -> Tensor) -> f64 {
    f().to_vec().unwrap();
    let t = std::time::Instant::now();
    f().to_vec().unwrap();
    t.elapsed().as_secs_f64()
}

/// Throughput on this adapter, [8, 64, 128, 128] 3×3 64 → 64 (batch 1 for
/// the tiled kernels; CONV_TIMING_BATCH overrides). Not a test: run with
/// `--ignored --nocapture`.
#[test]
#[ignore]
fn timing() {
    for variant in VARIANTS {
        let dev = device_with(variant);
        let n = match (variant, std::env::var("CONV_TIMING_BATCH")) {
            (_, Ok(v)) => v.parse().unwrap(),
            (KernelVariant::Tiled, _) => 1,
            (KernelVariant::Register, _) => 8,
        };
        let c = case(
            n,
            64,
            [128, 128],
            64,
            [3, 3],
            args([1, 1], [1, 1], [1, 1], 1),
            true,
        );
        let ys = conv2d_output_shape(&c.x_shape(), &c.w_shape(), &c.args).unwrap();
        let x = Tensor::randn(&dev, &c.x_shape(), 1, 0.0, 1.0).unwrap();
        let w = Tensor::randn(&dev, &c.w_shape(), 2, 0.0, 0.05).unwrap();
        let b = Tensor::zeros(&dev, &[c.cout]).unwrap();
        let g = Tensor::randn(&dev, &ys, 3, 0.0, 1.0).unwrap();
        let gflop = 2.0 * (ys.iter().product::<usize>() * c.cin * 9) as f64 / 1e9;
        let tf = seconds(|| conv2d(&x, &w, Some(&b), &c.args).unwrap());
        let tdx = seconds(|| conv2d_backward_input(&g, &w, &c.x_shape(), &c.args).unwrap());
        let tdw = seconds(|| conv2d_backward_weight(&g, &x, &c.w_shape(), &c.args).unwrap());
        println!(
            "{variant:?} {:?}: forward {tf:.3} s = {:.1} GFLOP/s, input gradient {tdx:.3} s = {:.1}, \
             weight gradient {tdw:.3} s = {:.1}; forward + both gradients {:.1} GFLOP/s",
            c.x_shape(),
            gflop / tf,
            gflop / tdx,
            gflop / tdw,
            3.0 * gflop / (tf + tdx + tdw)
        );
    }
}

/// The convolutions of the 17-layer DnCNN (1 → 64, 15 × 64 → 64, 64 → 1, all
/// 3×3 with padding 1) over 7 images of 256×256 and 5 of 512×512, one image
/// at a time, on the default device. Not a test: run with `--ignored --nocapture`.
#[test]
#[ignore]
fn dncnn_forward_timing() {
    let dev = common::device();
    let a = args([1, 1], [1, 1], [1, 1], 1);
    let layer = |cin: usize, cout: usize, seed: u64| {
        let w = Tensor::randn(
            &dev,
            &[cout, cin, 3, 3],
            seed,
            0.0,
            (2.0 / (9 * cin) as f32).sqrt(),
        );
        (w.unwrap(), Tensor::zeros(&dev, &[cout]).unwrap())
    };
    let mut layers = vec![layer(1, 64, 0)];
    layers.extend((1..16).map(|i| layer(64, 64, i)));
    layers.push(layer(64, 1, 16));
    let t = std::time::Instant::now();
    for (i, size) in [256; 7].into_iter().chain([512; 5]).enumerate() {
        let mut x = Tensor::rand(&dev, &[1, 1, size, size], 100 + i as u64, 0.0, 1.0).unwrap();
        for (w, b) in &layers {
            x = conv2d(&x, w, Some(b), &a).unwrap();
        }
        x.to_vec().unwrap();
    }
    println!(
        "DnCNN convolutions, 12 images on {}: {:.1} s",
        dev.info().adapter_name,
        t.elapsed().as_secs_f64()
    );
}
