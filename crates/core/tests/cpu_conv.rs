//! The CPU backend's GEMM and convolution kernels against plain f64
//! references: a nested-loop conv2d, finite differences of
//! `L = Σ G ⊙ conv2d(x, w) + bias` for the three gradients (central
//! differences are exact for a function linear in the perturbed argument, so
//! only rounding separates them from the true gradient), and a triple-loop
//! matrix product.

use spikeir_core::cpu::conv::{
    conv2d, conv2d_backward_bias, conv2d_backward_input, conv2d_backward_weight,
};
use spikeir_core::cpu::gemm::matmul;

/// A small deterministic generator (xorshift64*), uniform in [-1, 1).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        (bits as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as f64 + 1.0) / 2.0 * n as f64) as usize % n
    }
}

/// One convolution to test.
#[derive(Clone, Copy, Debug)]
struct Case {
    x: [usize; 4],
    cout: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
}

impl Case {
    fn w_shape(&self) -> [usize; 4] {
        [self.cout, self.x[1] / self.groups, self.k[0], self.k[1]]
    }
    fn out_shape(&self) -> [usize; 4] {
        let o = |d: usize| {
            (self.x[2 + d] + 2 * self.padding[d] - self.dilation[d] * (self.k[d] - 1) - 1)
                / self.stride[d]
                + 1
        };
        [self.x[0], self.cout, o(0), o(1)]
    }
}

#[allow(clippy::too_many_arguments)]
fn case(
    x: [usize; 4],
    cout: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
    bias: bool,
) -> Case {
    Case {
        x,
        cout,
        k,
        stride,
        padding,
        dilation,
        groups,
        bias,
    }
}

/// Small shapes covering every path: dense, pointwise (1×1, stride 1, no
/// padding), strided and dilated, asymmetric, grouped, depthwise with and
/// without a channel multiplier, padding wider than the kernel's reach;
/// odd sizes throughout.
fn small_cases() -> Vec<Case> {
    vec![
        case([2, 3, 7, 9], 5, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([1, 4, 11, 6], 6, [3, 2], [2, 2], [0, 0], [1, 1], 1, false),
        case([3, 4, 10, 13], 4, [3, 3], [1, 1], [2, 2], [2, 2], 2, true),
        case([2, 6, 9, 8], 6, [3, 3], [1, 1], [1, 1], [1, 1], 6, true),
        case([2, 4, 9, 11], 8, [3, 3], [2, 2], [1, 1], [1, 1], 4, false),
        case([1, 3, 10, 9], 3, [5, 3], [1, 2], [2, 1], [2, 1], 3, true),
        case([2, 5, 6, 7], 3, [1, 1], [1, 1], [0, 0], [1, 1], 1, true),
        case([3, 4, 5, 7], 6, [1, 1], [1, 1], [0, 0], [1, 1], 2, false),
        case([2, 3, 9, 8], 4, [1, 1], [2, 2], [1, 1], [1, 1], 1, true),
        case([2, 3, 9, 10], 5, [2, 3], [2, 1], [0, 2], [1, 2], 1, true),
        case([1, 2, 5, 5], 3, [5, 5], [1, 1], [0, 0], [1, 1], 1, false),
        case([5, 2, 4, 3], 2, [3, 3], [1, 1], [2, 2], [1, 1], 1, true),
        case([2, 3, 6, 7], 4, [1, 3], [1, 1], [1, 1], [1, 1], 1, false),
        case([2, 4, 7, 6], 4, [3, 3], [1, 1], [3, 0], [1, 1], 2, true),
        // Planes smaller than the kernel's reach ("same" padding on 1×1, 1×2 and 2×2 images,
        // dilated): taps that read nothing of the plane at all.
        case([1, 2, 1, 1], 3, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([2, 1, 1, 2], 2, [3, 3], [1, 1], [1, 1], [1, 1], 1, false),
        case([1, 2, 2, 2], 2, [3, 3], [1, 1], [3, 3], [3, 3], 1, true),
        // The narrow kernels' shapes (≤ 16 output channels, stride 1, one group): rows of one,
        // two and three 16-pixel blocks with a ragged last block, each accumulator width
        // (≤ 4, ≤ 8, ≤ 16 channels), kernels 3×3, 1×1 and 5×2, dilated; and 17 and 24
        // output channels just past them, on the GEMM path.
        case([2, 8, 5, 37], 8, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([3, 16, 6, 17], 16, [3, 3], [1, 1], [1, 1], [1, 1], 1, false),
        case([2, 5, 4, 33], 12, [3, 3], [1, 1], [1, 1], [2, 2], 1, true),
        case([2, 8, 7, 16], 1, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([1, 6, 9, 20], 3, [1, 1], [1, 1], [0, 0], [1, 1], 1, true),
        case([2, 3, 8, 21], 7, [5, 2], [1, 1], [2, 1], [1, 1], 1, false),
        case([2, 4, 6, 19], 17, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([1, 8, 5, 18], 24, [3, 3], [1, 1], [1, 1], [1, 1], 1, false),
    ]
}

/// `conv2d(x, w) + bias` in f64 by its definition.
fn conv_ref(c: &Case, x: &[f64], w: &[f64], bias: Option<&[f64]>) -> Vec<f64> {
    let [n, cin, h, wi] = c.x;
    let [_, cout, ho, wo] = c.out_shape();
    let (cin_g, cout_g) = (cin / c.groups, cout / c.groups);
    let [kh, kw] = c.k;
    let mut y = vec![0.0; n * cout * ho * wo];
    for b in 0..n {
        for o in 0..cout {
            let grp = o / cout_g;
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut s = bias.map_or(0.0, |bias| bias[o]);
                    for ci in 0..cin_g {
                        for i in 0..kh {
                            for j in 0..kw {
                                let ih = (oh * c.stride[0] + i * c.dilation[0]) as isize
                                    - c.padding[0] as isize;
                                let iw = (ow * c.stride[1] + j * c.dilation[1]) as isize
                                    - c.padding[1] as isize;
                                if ih < 0 || iw < 0 || ih >= h as isize || iw >= wi as isize {
                                    continue;
                                }
                                let xc = grp * cin_g + ci;
                                let xv = x[((b * cin + xc) * h + ih as usize) * wi + iw as usize];
                                let wv = w[((o * cin_g + ci) * kh + i) * kw + j];
                                s += xv * wv;
                            }
                        }
                    }
                    y[((b * cout + o) * ho + oh) * wo + ow] = s;
                }
            }
        }
    }
    y
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&a| a as f64).collect()
}

/// `max |got − want| ≤ tol · max |want|` (a norm-wise relative error, which
/// a near-zero entry cannot blow up).
fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-30);
    let (mut worst, mut at) = (0.0f64, 0);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = (g as f64 - w).abs();
        if e > worst {
            (worst, at) = (e, i);
        }
    }
    assert!(
        worst <= tol * scale,
        "{what}: max error {worst:e} at {at} (got {}, want {}), scale {scale:e}",
        got[at],
        want[at]
    );
}

/// The inputs of one case and the kernel's results for them.
struct Run {
    x: Vec<f32>,
    w: Vec<f32>,
    b: Option<Vec<f32>>,
    g: Vec<f32>,
}

fn inputs(c: &Case, seed: u64) -> Run {
    let mut rng = Rng::new(seed);
    let out: usize = c.out_shape().iter().product();
    Run {
        x: rng.vec(c.x.iter().product()),
        w: rng.vec(c.w_shape().iter().product()),
        b: c.bias.then(|| rng.vec(c.cout)),
        g: rng.vec(out),
    }
}

fn forward(c: &Case, r: &Run) -> Vec<f32> {
    conv2d(
        &r.x,
        c.x,
        &r.w,
        c.w_shape(),
        r.b.as_deref(),
        c.stride,
        c.padding,
        c.dilation,
        c.groups,
    )
}

fn backward(c: &Case, r: &Run) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let os = c.out_shape();
    let dx = conv2d_backward_input(
        &r.g,
        os,
        &r.w,
        c.w_shape(),
        c.x,
        c.stride,
        c.padding,
        c.dilation,
        c.groups,
    );
    let dw = conv2d_backward_weight(
        &r.g,
        os,
        &r.x,
        c.x,
        c.w_shape(),
        c.stride,
        c.padding,
        c.dilation,
        c.groups,
    );
    let db = conv2d_backward_bias(&r.g, os);
    (dx, dw, db)
}

/// `L = Σ G ⊙ (conv2d(x, w) + bias)` in f64.
fn loss(c: &Case, g: &[f64], x: &[f64], w: &[f64], b: &[f64]) -> f64 {
    let y = conv_ref(c, x, w, Some(b));
    y.iter().zip(g).map(|(a, b)| a * b).sum()
}

/// Central differences of `L` along the coordinates `which` of `v` (the
/// argument `arg` picks: 0 = x, 1 = w, 2 = bias).
fn finite_diff(c: &Case, r: &Run, arg: usize, which: &[usize]) -> Vec<f64> {
    const EPS: f64 = 1e-3;
    let g = to64(&r.g);
    let mut v = [
        to64(&r.x),
        to64(&r.w),
        r.b.as_deref().map_or(vec![0.0; c.cout], to64),
    ];
    which
        .iter()
        .map(|&i| {
            let orig = v[arg][i];
            v[arg][i] = orig + EPS;
            let up = loss(c, &g, &v[0], &v[1], &v[2]);
            v[arg][i] = orig - EPS;
            let down = loss(c, &g, &v[0], &v[1], &v[2]);
            v[arg][i] = orig;
            (up - down) / (2.0 * EPS)
        })
        .collect()
}

fn check_forward(c: &Case, seed: u64) {
    let r = inputs(c, seed);
    let got = forward(c, &r);
    let want = conv_ref(
        c,
        &to64(&r.x),
        &to64(&r.w),
        r.b.as_deref().map(to64).as_deref(),
    );
    assert_close(&got, &want, 1e-5, &format!("forward {c:?}"));
}

/// Checks the three gradients, computed in rayon pools of each of
/// `threads` sizes, on every coordinate (`sample == None`) or on `sample`
/// random coordinates of each argument.
fn check_backward(c: &Case, seed: u64, sample: Option<usize>, threads: &[usize]) {
    let r = inputs(c, seed);
    let grads: Vec<_> = threads
        .iter()
        .map(|&t| with_threads(t, || backward(c, &r)))
        .collect();
    let mut rng = Rng::new(seed ^ 0xABCD);
    for (arg, name) in [(0, "dx"), (1, "dw"), (2, "db")] {
        let pick = |g: &(Vec<f32>, Vec<f32>, Vec<f32>)| [&g.0, &g.1, &g.2][arg].clone();
        let len = pick(&grads[0]).len();
        let which: Vec<usize> = match sample {
            None => (0..len).collect(),
            Some(k) => (0..k).map(|_| rng.below(len)).collect(),
        };
        let want = finite_diff(c, &r, arg, &which);
        for (g, t) in grads.iter().zip(threads) {
            let got: Vec<f32> = which.iter().map(|&i| pick(g)[i]).collect();
            assert_close(&got, &want, 1e-4, &format!("{name} {c:?}, {t} threads"));
        }
    }
}

/// Runs `f` inside a rayon pool of `threads` threads, so both scheduling
/// strategies (whole tasks per thread, or one task at a time with threaded
/// GEMMs) and uneven splits are exercised whatever the machine.
fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn conv2d_forward_matches_reference() {
    for (i, c) in small_cases().iter().enumerate() {
        for threads in [1, 3] {
            with_threads(threads, || check_forward(c, 100 + i as u64));
        }
        check_forward(c, 200 + i as u64);
    }
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    for (i, c) in small_cases().iter().enumerate() {
        check_backward(c, 300 + i as u64, None, &[1, 3]);
    }
}

/// Images large enough that one image's pixels are split into several
/// ranges, with boundaries in the middle of output rows (for the kernels'
/// 2¹⁸-float im2col budget: ranges of 7.8 rows for the 3×3 convs over 64
/// channels of 47×49, 7.4 for the strided one, 12.2 for the 1×1 over 300
/// channels).
fn large_cases() -> Vec<Case> {
    vec![
        case([2, 64, 47, 49], 4, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([1, 64, 47, 49], 8, [3, 3], [1, 1], [1, 1], [1, 1], 1, false),
        case([2, 64, 73, 53], 6, [3, 3], [2, 1], [1, 2], [1, 2], 2, true),
        case([2, 300, 61, 67], 4, [1, 1], [1, 1], [0, 0], [1, 1], 1, true),
    ]
}

#[test]
fn conv2d_large_images_in_pixel_ranges() {
    for (i, c) in large_cases().iter().enumerate() {
        for threads in [1, 3] {
            with_threads(threads, || check_forward(c, 400 + i as u64));
        }
        check_backward(c, 500 + i as u64, Some(5), &[1, 3]);
    }
}

#[test]
fn conv2d_results_do_not_depend_on_thread_count() {
    let c = case([4, 16, 20, 23], 16, [3, 3], [1, 1], [1, 1], [1, 1], 1, true);
    let r = inputs(&c, 7);
    let one = with_threads(1, || (forward(&c, &r), backward(&c, &r)));
    let two = with_threads(2, || (forward(&c, &r), backward(&c, &r)));
    assert_eq!(one.0, two.0, "forward");
    assert_eq!((one.1).0, (two.1).0, "input gradient");
    // The weight gradient's sum is split by thread count (deterministically
    // for a given count), so it agrees only to rounding across counts.
    let again = with_threads(2, || backward(&c, &r));
    assert_eq!((two.1).1, again.1, "weight gradient, same thread count");
    let want = to64(&(one.1).1);
    assert_close(
        &(two.1).1,
        &want,
        1e-5,
        "weight gradient across thread counts",
    );
}

/// Wide stride-1 3×3 convolutions (≥ 32 input and output channels, or 16
/// outputs on planes of 32² or more) run by
/// Winograd's F(4×4, 3×3): odd and even sizes (ragged last tiles), images
/// smaller than a tile, rows wider than a task's tile budget, images split
/// over several tasks with a ragged last one, with and without bias; held to
/// the same tolerance as the direct kernels, and bit-identical across thread
/// counts. 31 channels, just below, take the GEMM path.
#[test]
fn winograd_convolutions_match_reference() {
    let cases = [
        case([2, 64, 7, 9], 64, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([1, 70, 1, 1], 65, [3, 3], [1, 1], [1, 1], [1, 1], 1, false),
        case([1, 65, 2, 3], 64, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([3, 64, 10, 5], 80, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case(
            [1, 64, 5, 300],
            64,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case([2, 64, 47, 49], 64, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case(
            [1, 64, 53, 50],
            64,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case([2, 32, 9, 11], 32, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case([1, 31, 6, 7], 32, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        // 32 → 16 on a plane of at least 32² pixels takes Winograd too
        // (ragged last tiles both ways); on a smaller one the narrow kernels.
        case([2, 32, 33, 34], 16, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case(
            [1, 32, 20, 20],
            16,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
    ];
    for (i, c) in cases.iter().enumerate() {
        for threads in [1, 3] {
            with_threads(threads, || check_forward(c, 600 + i as u64));
        }
        let r = inputs(c, 700 + i as u64);
        let one = with_threads(1, || forward(c, &r));
        let two = with_threads(2, || forward(c, &r));
        assert_eq!(one, two, "forward across thread counts {c:?}");
    }
}

/// The weight gradient of a 3×3 stride-1 convolution in f64 by its
/// definition: `dw[o, c, i, j] = Σ g[n, o, oh, ow] · x[n, c, oh + i − 1, ow + j − 1]`.
fn weight_grad_ref(c: &Case, g: &[f64], x: &[f64]) -> Vec<f64> {
    let [n, cin, h, wd] = c.x;
    let cout = c.cout;
    let mut dw = vec![0f64; cout * cin * 9];
    for b in 0..n {
        for o in 0..cout {
            let gp = &g[(b * cout + o) * h * wd..][..h * wd];
            for ci in 0..cin {
                let xp = &x[(b * cin + ci) * h * wd..][..h * wd];
                for i in 0..3 {
                    for j in 0..3 {
                        let mut s = 0f64;
                        for oh in 0..h {
                            let Some(ih) = (oh + i).checked_sub(1).filter(|&v| v < h) else {
                                continue;
                            };
                            for ow in 0..wd {
                                if let Some(iw) = (ow + j).checked_sub(1).filter(|&v| v < wd) {
                                    s += gp[oh * wd + ow] * xp[ih * wd + iw];
                                }
                            }
                        }
                        dw[((o * cin + ci) * 3 + i) * 3 + j] += s;
                    }
                }
            }
        }
    }
    dw
}

/// The weight gradient of 3×3 convolutions of 16 or more channels on planes
/// of 64² or more, by the Winograd transforms run the other way: against
/// the f64 definition to the direct kernels' tolerance, ragged last tiles
/// both ways, several tasks per image, 16 to 48 channels, and bit-identical
/// across thread counts. (A mutated transform fails it.)
#[test]
fn winograd_weight_gradients_match_reference() {
    let cases = [
        case(
            [1, 32, 65, 66],
            32,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case(
            [2, 32, 64, 64],
            16,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case(
            [1, 40, 70, 61],
            48,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case(
            [2, 16, 64, 67],
            16,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
    ];
    for (i, c) in cases.iter().enumerate() {
        let r = inputs(c, 900 + i as u64);
        let want = weight_grad_ref(c, &to64(&r.g), &to64(&r.x));
        let dw = |t: usize| with_threads(t, || backward(c, &r).1);
        let one = dw(1);
        assert_close(&one, &want, 1e-5, &format!("weight gradient {c:?}"));
        assert_eq!(one, dw(2), "weight gradient across thread counts {c:?}");
        assert_eq!(one, dw(3), "weight gradient across thread counts {c:?}");
    }
}

/// The DnCNN teacher's 64 → 64 layer and narrower wide layers, forward only
/// (batch 8 of 64², as in distillation), best of `REPS` wall times in ms:
/// `cargo test --release -p spikeir-core --test cpu_conv winograd_timing -- --ignored --nocapture`,
/// and again with `SPIKEIR_CPU_KERNELS=gemm` for im2col + GEMM.
#[test]
#[ignore]
fn winograd_timing() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    for c in [
        case([8, 64, 64, 64], 64, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case(
            [32, 32, 16, 16],
            32,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case(
            [32, 32, 32, 32],
            32,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case(
            [1, 64, 512, 512],
            64,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            true,
        ),
    ] {
        let r = inputs(&c, 3);
        let ms = (0..reps)
            .map(|_| {
                let t = std::time::Instant::now();
                std::hint::black_box(forward(&c, &r));
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min);
        println!("{:?} -> {} k3: forward {ms:7.2} ms", c.x, c.cout);
    }
}

/// `c[i] = a[i] · b[i]` in f64 by the triple loop.
#[allow(clippy::too_many_arguments)]
fn matmul_ref(
    a: &[f32],
    b: &[f32],
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    sa: bool,
    sb: bool,
) -> Vec<f64> {
    let mut c = vec![0.0f64; batch * m * n];
    for bi in 0..batch {
        let ao = if sa { 0 } else { bi * m * k };
        let bo = if sb { 0 } else { bi * k * n };
        for i in 0..m {
            for j in 0..n {
                let mut s = 0.0;
                for t in 0..k {
                    s += a[ao + i * k + t] as f64 * b[bo + t * n + j] as f64;
                }
                c[(bi * m + i) * n + j] = s;
            }
        }
    }
    c
}

#[test]
fn matmul_matches_reference() {
    let mut rng = Rng::new(11);
    // (batch, m, k, n, a shared, b shared); the largest is above the size
    // at which each product is threaded on its own.
    let shapes = [
        (1, 1, 1, 1, false, false),
        (3, 5, 7, 11, false, false),
        (4, 13, 9, 6, true, false),
        (5, 6, 17, 3, false, true),
        (2, 7, 3, 5, true, true),
        (1, 33, 65, 31, false, false),
        (7, 1, 129, 1, false, false),
        (2, 257, 131, 129, false, false),
        (3, 130, 250, 140, true, false),
        (2, 4, 0, 3, false, false),
    ];
    for (batch, m, k, n, sa, sb) in shapes {
        let a = rng.vec(if sa { m * k } else { batch * m * k });
        let b = rng.vec(if sb { k * n } else { batch * k * n });
        let want = matmul_ref(&a, &b, batch, m, k, n, sa, sb);
        let what = format!("matmul {:?}", (batch, m, k, n, sa, sb));
        let got = matmul(&a, &b, batch, m, k, n, sa, sb);
        if k == 0 {
            assert_eq!(got, vec![0.0; batch * m * n], "{what}");
            continue;
        }
        // Entries are sums of k products of magnitude ≤ 1: error ~ k·2⁻²⁴.
        assert_close(&got, &want, 1e-5, &what);
        let got1 = with_threads(1, || matmul(&a, &b, batch, m, k, n, sa, sb));
        assert_close(&got1, &want, 1e-5, &format!("{what}, one thread"));
    }
}

/// CPU time consumed so far by all threads of this process, in seconds
/// (Linux's per-thread schedstat; 0 elsewhere). On a machine shared with
/// other work, wall time mixes in their load; CPU time does not.
fn cpu_seconds() -> f64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        * 1e-9
}

/// Throughput of the 3×3, 64→64 convolution on `[8, 64, 128, 128]`:
/// `cargo test --release -p spikeir-core --test cpu_conv -- --ignored --nocapture`.
/// Prints the best wall time of `REPS` runs of each pass and, from the CPU
/// time of the same run, the rate the threads sustained while they ran.
#[test]
#[ignore]
fn conv2d_timing() {
    use std::time::Instant;
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let threads = rayon::current_num_threads() as f64;
    let c = case(
        [8, 64, 128, 128],
        64,
        [3, 3],
        [1, 1],
        [1, 1],
        [1, 1],
        1,
        true,
    );
    let r = inputs(&c, 1);
    let os = c.out_shape();
    let flop = 2.0 * (os.iter().product::<usize>() * 64 * 9) as f64;
    // (best wall seconds, best CPU seconds per thread)
    let best = |f: &dyn Fn()| {
        (0..reps)
            .map(|_| {
                let (t, cpu) = (Instant::now(), cpu_seconds());
                f();
                (t.elapsed().as_secs_f64(), (cpu_seconds() - cpu) / threads)
            })
            .fold((f64::INFINITY, f64::INFINITY), |a, b| {
                (a.0.min(b.0), a.1.min(b.1))
            })
    };
    let (ws, xs) = (c.w_shape(), c.x);
    let (s, p, d) = (c.stride, c.padding, c.dilation);
    let tf = best(&|| {
        std::hint::black_box(forward(&c, &r));
    });
    let ti = best(&|| {
        std::hint::black_box(conv2d_backward_input(&r.g, os, &r.w, ws, xs, s, p, d, 1));
    });
    let tw = best(&|| {
        std::hint::black_box(conv2d_backward_weight(&r.g, os, &r.x, xs, ws, s, p, d, 1));
    });
    let tb = best(&|| {
        std::hint::black_box(conv2d_backward_bias(&r.g, os));
    });
    println!("threads {threads}; GFLOP/s from wall time / from CPU time per thread");
    let show = |name: &str, t: (f64, f64), passes: f64| {
        let rate = |s: f64| passes * flop / s / 1e9;
        println!(
            "{name:12} {:7.1} ms {:6.1} / {:6.1} GFLOP/s",
            t.0 * 1e3,
            rate(t.0),
            rate(t.1)
        );
    };
    show("forward", tf, 1.0);
    show("input grad", ti, 1.0);
    show("weight grad", tw, 1.0);
    show("bias grad", tb, 0.0);
    show("fwd+bwd", (tf.0 + ti.0 + tw.0, tf.1 + ti.1 + tw.1), 3.0);
    let dc = case(
        [8, 64, 128, 128],
        64,
        [3, 3],
        [1, 1],
        [1, 1],
        [1, 1],
        64,
        true,
    );
    let dr = inputs(&dc, 2);
    let dflop = flop / 64.0;
    let tf = best(&|| {
        std::hint::black_box(forward(&dc, &dr));
    });
    let ti = best(&|| {
        std::hint::black_box(conv2d_backward_input(
            &dr.g,
            os,
            &dr.w,
            dc.w_shape(),
            xs,
            s,
            p,
            d,
            64,
        ));
    });
    let tw = best(&|| {
        std::hint::black_box(conv2d_backward_weight(
            &dr.g,
            os,
            &dr.x,
            xs,
            dc.w_shape(),
            s,
            p,
            d,
            64,
        ));
    });
    let show = |name: &str, t: (f64, f64)| {
        let rate = |s: f64| dflop / s / 1e9;
        println!(
            "{name:12} {:7.1} ms {:6.1} / {:6.1} GFLOP/s",
            t.0 * 1e3,
            rate(t.0),
            rate(t.1)
        );
    };
    show("dw forward", tf);
    show("dw input grad", ti);
    show("dw weight grad", tw);
}

/// The student's narrow convolutions (batch 8 × T = 4 images), forward, input
/// and weight gradients, best of `REPS` wall times in ms:
/// `cargo test --release -p spikeir-core --test cpu_conv narrow_timing -- --ignored --nocapture`,
/// and again with `SPIKEIR_CPU_KERNELS=gemm` for the im2col + GEMM path.
#[test]
#[ignore]
fn narrow_timing() {
    let reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let best = |f: &dyn Fn()| {
        (0..reps)
            .map(|_| {
                let t = std::time::Instant::now();
                f();
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min)
    };
    let mut total = [0.0; 3];
    for c in [
        case([32, 8, 64, 64], 8, [3, 3], [1, 1], [1, 1], [1, 1], 1, false),
        case(
            [32, 16, 64, 64],
            16,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case(
            [32, 16, 64, 64],
            8,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case(
            [32, 16, 32, 32],
            16,
            [3, 3],
            [1, 1],
            [1, 1],
            [1, 1],
            1,
            false,
        ),
        case([32, 8, 64, 64], 1, [3, 3], [1, 1], [1, 1], [1, 1], 1, true),
        case(
            [32, 32, 32, 32],
            16,
            [1, 1],
            [1, 1],
            [0, 0],
            [1, 1],
            1,
            false,
        ),
    ] {
        let r = inputs(&c, 3);
        let os = c.out_shape();
        let (ws, xs, s, p, d) = (c.w_shape(), c.x, c.stride, c.padding, c.dilation);
        let t = [
            best(&|| {
                std::hint::black_box(forward(&c, &r));
            }),
            best(&|| {
                std::hint::black_box(conv2d_backward_input(&r.g, os, &r.w, ws, xs, s, p, d, 1));
            }),
            best(&|| {
                std::hint::black_box(conv2d_backward_weight(&r.g, os, &r.x, xs, ws, s, p, d, 1));
            }),
        ];
        (0..3).for_each(|i| total[i] += t[i]);
        println!(
            "{:?} -> {} k{:?}: forward {:6.2} ms, input grad {:6.2} ms, weight grad {:6.2} ms",
            c.x, c.cout, c.k, t[0], t[1], t[2]
        );
    }
    println!(
        "total: forward {:6.2} ms, input grad {:6.2} ms, weight grad {:6.2} ms",
        total[0], total[1], total[2]
    );
}
