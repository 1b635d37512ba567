//! Wide 3×3 convolutions (stride 1, padding 1) by Winograd's minimal
//! filtering F(4×4, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
//! Neural Networks", CVPR 2016). The output is computed in 4×4 tiles, each
//! from the 6×6 input tile `d` around it, as
//!
//! ```text
//! Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
//!
//!      ⎡4  0 -5  0  1  0⎤        ⎡ 1/4     0     0 ⎤
//!      ⎢0 -4 -4  1  1  0⎥        ⎢-1/6  -1/6  -1/6 ⎥        ⎡1  1  1  1  1  0⎤
//! Bᵀ = ⎢0  4 -4 -1  1  0⎥    G = ⎢-1/6   1/6  -1/6 ⎥   Aᵀ = ⎢0  1 -1  2 -2  0⎥
//!      ⎢0 -2 -1  2  1  0⎥        ⎢1/24  1/12   1/6 ⎥        ⎢0  1  1  4  4  0⎥
//!      ⎢0  2 -1 -2  1  0⎥        ⎢1/24 -1/12   1/6 ⎥        ⎣0  1 -1  8 -8  1⎦
//!      ⎣0  4  0 -5  0  1⎦        ⎣  0     0     1  ⎦
//! ```
//!
//! For each of the 36 transformed positions ξ the sum over input channels is
//! one matrix product, `M_ξ = U_ξ · V_ξ` with `U_ξ` `[C_out, C_in]` (the
//! transformed weights) and `V_ξ` `[C_in, tiles]` (the transformed input):
//! 36 multiply-adds per tile of 16 outputs and channel pair where the direct
//! sum needs 144, 4× fewer (F(2×2, 3×3), which this replaced, saves 2.25×).
//! The price is rounding: the transforms scale by up to 8 and 1/24, so the
//! error grows to about 1e-6 of the output's scale with 64 channels, ten
//! times the direct sum's but well inside the kernel tests' 1e-5; the weight
//! transform runs in f64.
//!
//! The DnCNN teacher's 64 → 64 layers are the main use: its forward pass,
//! which H-KD runs every step and which has no backward pass, is most of a
//! distillation step's GEMM time. A student's 32-channel layers take it too
//! (forward only), and so do its 32 → 16 layers on large planes; narrower
//! ones keep their direct kernels, where the transforms would cost more
//! than the multiply-adds they save.
//!
//! Results do not depend on the thread count: each output value is computed
//! whole by one task, in a fixed order.

use gemm::Parallelism;

use super::conv::{avx2_dispatch, for_each_task, ConvGeometry, SendPtr};
use super::gemm::{gemm_strided, MatPtr};

/// Outputs per tile side (m of F(m×m, 3×3)).
const M: usize = 4;
/// Input tile side, m + 2.
const SIDE: usize = M + 2;
/// Transformed positions ξ per tile.
const POINTS: usize = SIDE * SIDE;

/// Fewest input and output channels worth the transforms. Best of 10 on one
/// thread of a 2-core EPYC (`cargo test --release -p spikeir-core --test
/// cpu_conv winograd_timing -- --ignored --nocapture`): 32 → 32 over 32
/// images of 32² 7.0 ms against 10.8 ms by im2col + GEMM, over 32 images of
/// 16² 2.5 against 2.7 ms. (F(2×2, 3×3) had needed 64 channels to gain.)
/// Narrower layers go to the direct narrow kernels, except [`MIN_OUT_WIDE`].
const MIN_CHANNELS: usize = 32;

/// Fewest output channels worth the transforms on planes of at least
/// [`WIDE_PLANE`] pixels, from at least [`MIN_CHANNELS`] inputs: there the
/// transformed input, shared by every output, is paid for by 16 outputs.
/// Best of 15, 2 threads, same EPYC: 32 → 16 over 32 images of 64² 5.4 ms
/// against 9.5 ms by the narrow kernels, of 32² 1.7 against 2.0 ms, but of
/// 16² 1.2 against 0.66 ms (those stay narrow).
const MIN_OUT_WIDE: usize = 16;
const WIDE_PLANE: usize = 32 * 32;

/// Floats of transformed input plus products per task (`36 · (C_in +
/// C_out) · tiles`), so both stay in a core's L2 between the transforms
/// and the 36 products; 2¹⁷ to 2²⁰ timed within 5 % of each other on the
/// 64-channel layers.
const TILE_BUDGET: usize = 1 << 18;

/// Whether [`forward`] takes this convolution (`SPIKEIR_CPU_KERNELS=gemm`
/// turns it off, to compare).
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    same_3x3(g)
        && g.cin >= MIN_CHANNELS
        && (g.cout >= MIN_CHANNELS || (g.cout >= MIN_OUT_WIDE && g.h * g.w >= WIDE_PLANE))
}

/// A 3×3, stride-1, padding-1 convolution in one group, the shape the
/// transforms compute (unless `SPIKEIR_CPU_KERNELS=gemm` turned them off).
fn same_3x3(g: &ConvGeometry) -> bool {
    g.groups == 1
        && g.kh == 3
        && g.kw == 3
        && g.stride == [1, 1]
        && g.padding == [1, 1]
        && g.dilation == [1, 1]
        && !super::conv_narrow::gemm_only()
}

/// `G v` for one column `v` of a 3×3 kernel: six values.
#[inline(always)]
fn g6(a: f64, b: f64, d: f64) -> [f64; SIDE] {
    [
        a / 4.0,
        -(a + b + d) / 6.0,
        -(a - b + d) / 6.0,
        a / 24.0 + b / 12.0 + d / 6.0,
        a / 24.0 - b / 12.0 + d / 6.0,
        d,
    ]
}

/// `Bᵀ d` for one column of six input values.
#[inline(always)]
fn bt6(d: [f32; SIDE]) -> [f32; SIDE] {
    let [d0, d1, d2, d3, d4, d5] = d;
    let (e, f) = (d4 - d2, d3 - d1);
    [
        4.0 * (d0 - d2) + (d4 - d2),
        (d3 + d4) - 4.0 * (d1 + d2),
        4.0 * (d1 - d2) + (d4 - d3),
        e + 2.0 * f,
        e - 2.0 * f,
        4.0 * (d1 - d3) + (d5 - d3),
    ]
}

/// `Aᵀ m` for one column of six products.
#[inline(always)]
fn at6(m: [f32; SIDE]) -> [f32; M] {
    let [m0, m1, m2, m3, m4, m5] = m;
    let (p, q) = (m1 + m2, m1 - m2);
    let (r, s) = (m3 + m4, m3 - m4);
    [m0 + p + r, q + 2.0 * s, p + 4.0 * r, q + 8.0 * s + m5]
}

/// `A y` for one column of four output-gradient values: A = (Aᵀ)ᵀ, 6 × 4.
#[inline(always)]
fn a6(y: [f32; M]) -> [f32; SIDE] {
    let [y0, y1, y2, y3] = y;
    let (e, o) = (y0 + y2, y1 + y3);
    let (e4, o8) = (y0 + 4.0 * y2, 2.0 * y1 + 8.0 * y3);
    [y0, e + o, e - o, e4 + o8, e4 - o8, y3]
}

/// `Gᵀ p` for one column of six values: three, in f64.
#[inline(always)]
fn gt3(p: [f64; SIDE]) -> [f64; 3] {
    let [p0, p1, p2, p3, p4, p5] = p;
    [
        p0 / 4.0 - (p1 + p2) / 6.0 + (p3 + p4) / 24.0,
        (p2 - p1) / 6.0 + (p3 - p4) / 12.0,
        (p3 + p4 - p1 - p2) / 6.0 + p5,
    ]
}

/// `U_ξ = (G g Gᵀ)_ξ` for every output and input channel pair, laid out
/// `[36, C_out, C_in]`; in f64, so the 1/6 and 1/24 round once.
fn transform_weights(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let (cout, cin) = (g.cout, g.cin);
    let mut u = crate::cpu::buffers::scratch(POINTS * cout * cin);
    for o in 0..cout {
        for c in 0..cin {
            let k = &w[(o * cin + c) * 9..][..9];
            let k = |i: usize| k[i] as f64;
            // G g: 6 rows × 3 columns.
            let cols = [
                g6(k(0), k(3), k(6)),
                g6(k(1), k(4), k(7)),
                g6(k(2), k(5), k(8)),
            ];
            // (G g) Gᵀ: 6 × 6.
            for r in 0..SIDE {
                let v = g6(cols[0][r], cols[1][r], cols[2][r]);
                for (s, &vs) in v.iter().enumerate() {
                    u[((SIDE * r + s) * cout + o) * cin + c] = vs as f32;
                }
            }
        }
    }
    u
}

/// The row half of the input transform, `Bᵀ d` over six whole rows.
#[inline(always)]
fn rows_in(d: [&[f32]; SIDE], s: [&mut [f32]; SIDE]) {
    let n = d[0].len();
    let d = d.map(|r| &r[..n]);
    let [s0, s1, s2, s3, s4, s5] = s.map(|r| &mut r[..n]);
    for j in 0..n {
        let t = bt6([d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j]]);
        (s0[j], s1[j], s2[j], s3[j], s4[j], s5[j]) = (t[0], t[1], t[2], t[3], t[4], t[5]);
    }
}

/// The column half of the input transform, `(s B)` for one row `s` of `Bᵀ d`
/// over every tile of a tile row: `out[k][tx]` from `s[4·tx..4·tx + 6]`.
#[inline(always)]
fn columns_in(s: &[f32], out: [&mut [f32]; SIDE]) {
    let n = out[0].len();
    let [o0, o1, o2, o3, o4, o5] = out.map(|r| &mut r[..n]);
    let (lo, hi) = (&s[..4 * n], &s[4..4 * n + 4]);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2() {
        // SAFETY: the CPU has AVX2; `s` holds 4·n + 4 floats.
        done = unsafe {
            x86::columns_in(
                &s[..4 * n + 4],
                [&mut *o0, &mut *o1, &mut *o2, &mut *o3, &mut *o4, &mut *o5],
            )
        };
    }
    for tx in done..n {
        let (a, b) = (&lo[4 * tx..][..4], &hi[4 * tx..][..2]);
        let t = bt6([a[0], a[1], a[2], a[3], b[0], b[1]]);
        (o0[tx], o1[tx], o2[tx], o3[tx], o4[tx], o5[tx]) = (t[0], t[1], t[2], t[3], t[4], t[5]);
    }
}

/// The row half of the output transform, `Aᵀ M` for transformed column `s`
/// over a tile row: `sums[k][tx]` (`k` < 4) from the six products `m[r][tx]`.
#[inline(always)]
fn rows_out(m: [&[f32]; SIDE], sums: [&mut [f32]; M]) {
    let n = m[0].len();
    let m = m.map(|r| &r[..n]);
    let [a0, a1, a2, a3] = sums.map(|r| &mut r[..n]);
    for tx in 0..n {
        let a = at6([m[0][tx], m[1][tx], m[2][tx], m[3][tx], m[4][tx], m[5][tx]]);
        (a0[tx], a1[tx], a2[tx], a3[tx]) = (a[0], a[1], a[2], a[3]);
    }
}

/// The column half of the output transform, `(Aᵀ M) A` for one output row
/// of a tile row: `out[4·tx..4·tx + 4]` from `sums[s][tx]`, plus the bias.
#[inline(always)]
fn columns_out(sums: [&[f32]; SIDE], bias: f32, out: &mut [f32]) {
    let n = sums[0].len();
    let q = sums.map(|r| &r[..n]);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if super::has_avx2() {
        // SAFETY: the CPU has AVX2; `out` holds 4·n floats.
        done = unsafe { x86::columns_out(q, bias, &mut out[..4 * n]) };
    }
    for (tx, dst) in out[..4 * n].chunks_exact_mut(4).enumerate().skip(done) {
        let a = at6([q[0][tx], q[1][tx], q[2][tx], q[3][tx], q[4][tx], q[5][tx]]);
        for (d, v) in dst.iter_mut().zip(a) {
            *d = v + bias;
        }
    }
}

/// The column halves of the transforms eight tiles at a time. A tile row
/// lies in memory tile after tile (`s[4·tx + i]`), so eight tiles' values
/// of one column `i` are every fourth float: 4 × 8 transposes (unpack and
/// shuffle) turn them into vectors over the tiles, where the scalar loops
/// ran one tile at a time.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::SIDE;
    use std::arch::x86_64::*;

    /// Columns 0–3 of eight tiles from the 32 floats at `p`, each vector
    /// over the tiles in order.
    #[inline(always)]
    unsafe fn columns4(p: *const f32) -> [__m256; 4] {
        let (l0, l1) = (_mm256_loadu_ps(p), _mm256_loadu_ps(p.add(8)));
        let (l2, l3) = (_mm256_loadu_ps(p.add(16)), _mm256_loadu_ps(p.add(24)));
        // t: tiles (0, 2 | 1, 3) and (4, 6 | 5, 7), columns (0, 1) and (2, 3).
        let (t0, t1) = (_mm256_unpacklo_ps(l0, l1), _mm256_unpackhi_ps(l0, l1));
        let (t2, t3) = (_mm256_unpacklo_ps(l2, l3), _mm256_unpackhi_ps(l2, l3));
        // Tiles in the order 0 2 4 6 1 3 5 7; the permutation restores 0 … 7.
        let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
        [
            _mm256_shuffle_ps::<0x44>(t0, t2),
            _mm256_shuffle_ps::<0xEE>(t0, t2),
            _mm256_shuffle_ps::<0x44>(t1, t3),
            _mm256_shuffle_ps::<0xEE>(t1, t3),
        ]
        .map(|v| _mm256_permutevar8x32_ps(v, order))
    }

    /// [`super::columns_in`] for the first multiple of 8 tiles of `out`'s
    /// rows; returns how many it did. `s` holds `4·n + 4` floats.
    #[target_feature(enable = "avx,avx2")]
    pub(super) unsafe fn columns_in(s: &[f32], mut out: [&mut [f32]; SIDE]) -> usize {
        let n = out[0].len();
        let blocks = n / 8;
        assert!(s.len() >= 4 * n + 4 && out.iter().all(|o| o.len() >= n));
        let (four, two) = (_mm256_set1_ps(4.0), _mm256_set1_ps(2.0));
        for blk in 0..blocks {
            let p = s.as_ptr().add(32 * blk);
            let [d0, d1, d2, d3] = columns4(p);
            // Columns 4 and 5 of a tile are columns 0 and 1 of the next.
            let [d4, d5, _, _] = columns4(p.add(4));
            // Bᵀ d, as `bt6`.
            let (e, f) = (_mm256_sub_ps(d4, d2), _mm256_sub_ps(d3, d1));
            let r = [
                _mm256_add_ps(_mm256_mul_ps(four, _mm256_sub_ps(d0, d2)), e),
                _mm256_sub_ps(
                    _mm256_add_ps(d3, d4),
                    _mm256_mul_ps(four, _mm256_add_ps(d1, d2)),
                ),
                _mm256_add_ps(
                    _mm256_mul_ps(four, _mm256_sub_ps(d1, d2)),
                    _mm256_sub_ps(d4, d3),
                ),
                _mm256_add_ps(e, _mm256_mul_ps(two, f)),
                _mm256_sub_ps(e, _mm256_mul_ps(two, f)),
                _mm256_add_ps(
                    _mm256_mul_ps(four, _mm256_sub_ps(d1, d3)),
                    _mm256_sub_ps(d5, d3),
                ),
            ];
            for (o, v) in out.iter_mut().zip(r) {
                _mm256_storeu_ps(o.as_mut_ptr().add(8 * blk), v);
            }
        }
        8 * blocks
    }

    /// [`super::columns_out`] for the first multiple of 8 tiles; returns how
    /// many it did. `out` holds `4·n` floats.
    #[target_feature(enable = "avx,avx2")]
    pub(super) unsafe fn columns_out(q: [&[f32]; SIDE], bias: f32, out: &mut [f32]) -> usize {
        let n = q[0].len();
        let blocks = n / 8;
        assert!(out.len() >= 4 * n && q.iter().all(|r| r.len() >= n));
        let (two, four, eight, b) = (
            _mm256_set1_ps(2.0),
            _mm256_set1_ps(4.0),
            _mm256_set1_ps(8.0),
            _mm256_set1_ps(bias),
        );
        for blk in 0..blocks {
            let [m0, m1, m2, m3, m4, m5] = q.map(|r| _mm256_loadu_ps(r.as_ptr().add(8 * blk)));
            // Aᵀ m, as `at6`, plus the bias: a[k] is output column k of eight tiles.
            let (p, qd) = (_mm256_add_ps(m1, m2), _mm256_sub_ps(m1, m2));
            let (r, sd) = (_mm256_add_ps(m3, m4), _mm256_sub_ps(m3, m4));
            let a0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(m0, p), r), b);
            let a1 = _mm256_add_ps(_mm256_add_ps(qd, _mm256_mul_ps(two, sd)), b);
            let a2 = _mm256_add_ps(_mm256_add_ps(p, _mm256_mul_ps(four, r)), b);
            let a3 = _mm256_add_ps(
                _mm256_add_ps(_mm256_add_ps(qd, _mm256_mul_ps(eight, sd)), m5),
                b,
            );
            // Back to tile after tile: a 4 × 8 transpose.
            let (t0, t1) = (_mm256_unpacklo_ps(a0, a1), _mm256_unpackhi_ps(a0, a1));
            let (t2, t3) = (_mm256_unpacklo_ps(a2, a3), _mm256_unpackhi_ps(a2, a3));
            // u: tiles (0 | 4), (1 | 5), (2 | 6), (3 | 7), four columns each.
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let dst = out.as_mut_ptr().add(32 * blk);
            _mm256_storeu_ps(dst, _mm256_permute2f128_ps::<0x20>(u0, u1));
            _mm256_storeu_ps(dst.add(8), _mm256_permute2f128_ps::<0x20>(u2, u3));
            _mm256_storeu_ps(dst.add(16), _mm256_permute2f128_ps::<0x31>(u0, u1));
            _mm256_storeu_ps(dst.add(24), _mm256_permute2f128_ps::<0x31>(u2, u3));
        }
        8 * blocks
    }
}

/// Six disjoint rows of `len` floats, `stride` apart, from the start of `v`.
fn six_rows(v: &mut [f32], stride: usize, len: usize) -> [&mut [f32]; SIDE] {
    let (r0, v) = v.split_at_mut(stride);
    let (r1, v) = v.split_at_mut(stride);
    let (r2, v) = v.split_at_mut(stride);
    let (r3, v) = v.split_at_mut(stride);
    let (r4, r5) = v.split_at_mut(stride);
    [r0, r1, r2, r3, r4, r5].map(|r| &mut r[..len])
}

/// A task's tile rows `ty0..ty1` of one image: where they lie and what
/// their transforms read and write.
struct TileRows {
    /// Input channels, output channels, image height and width.
    cin: usize,
    cout: usize,
    h: usize,
    wd: usize,
    tiles_x: usize,
    ty0: usize,
    ty1: usize,
    /// Tiles of the task, `(ty1 - ty0) · tiles_x`.
    nt: usize,
}

/// How a convolution's tiles are cut into tasks: up to `rows` tile rows of
/// one image each, so that a task's transformed input and products stay
/// near [`TILE_BUDGET`] floats.
struct Tasks {
    tiles_y: usize,
    tiles_x: usize,
    rows: usize,
    per_image: usize,
    count: usize,
    /// Floats of scratch a task needs (transformed input and products).
    scratch_len: usize,
}

impl Tasks {
    fn new(g: &ConvGeometry) -> Tasks {
        let (tiles_y, tiles_x) = (g.h.div_ceil(M), g.w.div_ceil(M));
        let rows = (TILE_BUDGET / (POINTS * (g.cin + g.cout) * tiles_x)).clamp(1, tiles_y);
        let per_image = tiles_y.div_ceil(rows);
        Tasks {
            tiles_y,
            tiles_x,
            rows,
            per_image,
            count: g.n * per_image,
            scratch_len: POINTS * (g.cin + g.cout) * rows * tiles_x,
        }
    }

    /// The image of task `t` and its tile rows.
    fn task(&self, g: &ConvGeometry, t: usize) -> (usize, TileRows) {
        let ty0 = (t % self.per_image) * self.rows;
        let ty1 = (ty0 + self.rows).min(self.tiles_y);
        let r = TileRows {
            cin: g.cin,
            cout: g.cout,
            h: g.h,
            wd: g.w,
            tiles_x: self.tiles_x,
            ty0,
            ty1,
            nt: (ty1 - ty0) * self.tiles_x,
        };
        (t / self.per_image, r)
    }
}

avx2_dispatch! {
    /// `V_ξ[c, t] = (Bᵀ d B)_ξ` of a task's tiles from its image `x_img`
    /// (`[C_in, H, W]`) into `v` (`[36, C_in, tiles]`).
    fn transform_input => transform_input_kernel(r: &TileRows, x_img: &[f32], v: &mut [f32])
}

#[inline(always)]
fn transform_input_kernel(r: &TileRows, x_img: &[f32], v: &mut [f32]) {
    let (cin, h, wd, tiles_x, nt) = (r.cin, r.h, r.wd, r.tiles_x, r.nt);
    // Rows first (Bᵀ, on whole input rows), then columns (B). `sr` holds
    // the six transformed rows shifted one column right, so that tile `tx`
    // reads `sr[4·tx..4·tx + 6]`; the padding columns around the image stay
    // zero, as the transform of zeros is zero.
    let wp = M * tiles_x + 4;
    let mut sr = vec![0f32; SIDE * wp];
    let zeros = vec![0f32; wd];
    for c in 0..cin {
        let plane = &x_img[c * h * wd..][..h * wd];
        for ty in r.ty0..r.ty1 {
            // Input rows 4·ty − 1 … 4·ty + 4; outside the image, zeros.
            let din =
                std::array::from_fn(|k| match (M * ty + k).checked_sub(1).filter(|&ih| ih < h) {
                    Some(ih) => &plane[ih * wd..][..wd],
                    None => &zeros[..],
                });
            rows_in(din, six_rows(&mut sr[1..], wp, wd));
            let t0 = (ty - r.ty0) * tiles_x;
            for (k, s_k) in sr.chunks_exact(wp).enumerate() {
                let base = (SIDE * k * cin + c) * nt + t0;
                columns_in(s_k, six_rows(&mut v[base..], cin * nt, tiles_x));
            }
        }
    }
}

avx2_dispatch! {
    /// `Y = Aᵀ M A` (plus the bias) of a task's tiles from the products `m`
    /// (`[36, C_out, tiles]`) into image `b` of the output `yp`.
    fn transform_output => transform_output_kernel(r: &TileRows, m: &[f32], bias: Option<&[f32]>, yp: SendPtr, b: usize)
}

#[inline(always)]
fn transform_output_kernel(r: &TileRows, m: &[f32], bias: Option<&[f32]>, yp: SendPtr, b: usize) {
    let (cout, h, wd, tiles_x, nt) = (r.cout, r.h, r.wd, r.tiles_x, r.nt);
    // Rows first (Aᵀ, on whole tile rows), then columns (A), each tile's
    // four output columns side by side. `sums` holds (Aᵀ M) as [output row
    // k][column s][tile].
    let mut sums = vec![0f32; M * SIDE * tiles_x];
    let mut out = [0f32; M];
    for o in 0..cout {
        let bo = bias.map_or(0.0, |bias| bias[o]);
        for ty in r.ty0..r.ty1 {
            let t0 = (ty - r.ty0) * tiles_x;
            let row = |i: usize, s: usize| &m[((SIDE * i + s) * cout + o) * nt + t0..][..tiles_x];
            for s in 0..SIDE {
                let (k0, rest) = sums[s * tiles_x..].split_at_mut(SIDE * tiles_x);
                let (k1, rest) = rest.split_at_mut(SIDE * tiles_x);
                let (k2, k3) = rest.split_at_mut(SIDE * tiles_x);
                rows_out(
                    [
                        row(0, s),
                        row(1, s),
                        row(2, s),
                        row(3, s),
                        row(4, s),
                        row(5, s),
                    ],
                    [k0, k1, k2, k3].map(|k| &mut k[..tiles_x]),
                );
            }
            for k in 0..M {
                let oh = M * ty + k;
                if oh >= h {
                    break;
                }
                let mut qs = sums[k * SIDE * tiles_x..][..SIDE * tiles_x].chunks_exact(tiles_x);
                let q = [(); SIDE].map(|_| qs.next().unwrap_or_default());
                // SAFETY: row `oh` of channel `o` of image `b` lies in this
                // task's tile rows, written by no other task.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(yp.at(((b * cout + o) * h + oh) * wd), wd)
                };
                // Whole tiles straight into the output row; a last tile that
                // the image cuts through via `out`.
                let whole = wd / M;
                columns_out(q.map(|q| &q[..whole]), bo, &mut dst[..M * whole]);
                if whole < tiles_x {
                    columns_out(q.map(|q| &q[whole..]), bo, &mut out);
                    dst[M * whole..].copy_from_slice(&out[..wd - M * whole]);
                }
            }
        }
    }
}

/// The forward convolution (no bias when `bias` is `None`) into `y`
/// (`[N, C_out, H, W]`, every value written).
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (cin, cout, h, wd) = (g.cin, g.cout, g.h, g.w);
    let tasks = Tasks::new(g);
    let u = transform_weights(g, w);
    let yp = SendPtr(y.as_mut_ptr());

    let task = |scratch: &mut Vec<f32>, t: usize, par: Parallelism| {
        let (b, r) = tasks.task(g, t);
        let nt = r.nt;
        let (v, m) = scratch[..POINTS * (cin + cout) * nt].split_at_mut(POINTS * cin * nt);
        transform_input(&r, &x[b * cin * h * wd..][..cin * h * wd], v);

        // M_ξ = U_ξ · V_ξ.
        for xi in 0..POINTS {
            let lhs = MatPtr {
                ptr: u[xi * cout * cin..].as_ptr(),
                rs: cin as isize,
                cs: 1,
            };
            let rhs = MatPtr {
                ptr: v[xi * cin * nt..].as_ptr(),
                rs: nt as isize,
                cs: 1,
            };
            let dst = m[xi * cout * nt..].as_mut_ptr();
            // SAFETY: U_ξ is `cout × cin`, V_ξ `cin × nt` and M_ξ `cout × nt`,
            // all inside their buffers; M is this task's own scratch.
            unsafe { gemm_strided(cout, nt, cin, dst, nt as isize, 1, false, lhs, rhs, par) };
        }

        transform_output(&r, m, bias, yp, b);
    };

    for_each_task(tasks.count, tasks.scratch_len, task);
    crate::cpu::buffers::recycle(u);
}

avx2_dispatch! {
    /// `Z_ξ[o, t] = (A dY Aᵀ)_ξ` of a task's tiles from the output gradient
    /// of its image `dy_img` (`[C_out, H, W]`) into `z` (`[36, C_out, tiles]`).
    fn transform_grad => transform_grad_kernel(r: &TileRows, dy_img: &[f32], z: &mut [f32])
}

#[inline(always)]
fn transform_grad_kernel(r: &TileRows, dy_img: &[f32], z: &mut [f32]) {
    let (cout, h, wd, tiles_x, nt) = (r.cout, r.h, r.wd, r.tiles_x, r.nt);
    // Rows first (A on four whole rows of dY, six rows out), then columns
    // (A on each tile's four columns). Gradient rows and columns past the
    // image are zeros: the forward pass computed those outputs and dropped them.
    let wp = M * tiles_x;
    let mut sr = vec![0f32; SIDE * wp];
    let zeros = vec![0f32; wd];
    for o in 0..cout {
        let plane = &dy_img[o * h * wd..][..h * wd];
        for ty in r.ty0..r.ty1 {
            let d: [&[f32]; M] = std::array::from_fn(|k| match M * ty + k {
                oh if oh < h => &plane[oh * wd..][..wd],
                _ => &zeros[..],
            });
            let [s0, s1, s2, s3, s4, s5] = six_rows(&mut sr, wp, wd);
            for j in 0..wd {
                let t = a6([d[0][j], d[1][j], d[2][j], d[3][j]]);
                (s0[j], s1[j], s2[j], s3[j], s4[j], s5[j]) = (t[0], t[1], t[2], t[3], t[4], t[5]);
            }
            let t0 = (ty - r.ty0) * tiles_x;
            for (k, row) in sr.chunks_exact(wp).enumerate() {
                let [z0, z1, z2, z3, z4, z5] = six_rows(
                    &mut z[(SIDE * k * cout + o) * nt + t0..],
                    cout * nt,
                    tiles_x,
                );
                for (tx, q) in row.chunks_exact(M).enumerate() {
                    let t = a6([q[0], q[1], q[2], q[3]]);
                    (z0[tx], z1[tx], z2[tx], z3[tx], z4[tx], z5[tx]) =
                        (t[0], t[1], t[2], t[3], t[4], t[5]);
                }
            }
        }
    }
}

/// Partial sums of the weight gradient, each over a fixed share of the
/// tasks (not one per thread), added in order: results do not depend on the
/// thread count.
const GRAD_GROUPS: usize = 8;

/// Whether [`backward_weight`] takes this convolution: at least
/// [`GRAD_MIN_CHANNELS`] input and output channels on a plane of at least
/// [`GRAD_MIN_PLANE`] pixels. Best of 12, 2 threads, same EPYC, over 32
/// images of 64²: 32 → 32 11 against 17.5 ms by im2col + GEMM, 32 → 16 7.6
/// against 13 ms, 16 → 16 4.3–4.8 against 6.1–7.2 ms by the narrow kernels,
/// but 8 → 8 2.5 against 0.8–2.1 ms. Smaller planes lose or draw: of 32²,
/// 64 → 32 7.2 against 8.0 ms but 32 → 32 4.8 against 4.4; of 16², 64 → 64
/// 4.4 against 3.5 ms (a task's product then sums over only 16 tiles;
/// putting several images' tiles side by side, out of L2, was slower still).
pub(crate) fn applies_backward_weight(g: &ConvGeometry) -> bool {
    same_3x3(g)
        && g.cin >= GRAD_MIN_CHANNELS
        && g.cout >= GRAD_MIN_CHANNELS
        && g.h * g.w >= GRAD_MIN_PLANE
}

/// Fewest input and output channels whose weight gradient goes by the transforms.
const GRAD_MIN_CHANNELS: usize = 16;
/// Smallest plane whose weight gradient goes by the transforms.
const GRAD_MIN_PLANE: usize = 64 * 64;

/// The weight gradient of [`forward`]'s convolution (`[C_out, C_in, 3, 3]`)
/// from the output gradient `dy` and the input `x`, by the same transforms
/// run the other way. With P = Z ⊙ V summed over every tile of every image,
/// Z = A dY Aᵀ (the 4 × 4 gradient tile, six by six) and V = Bᵀ d B (the
/// input tile, as in the forward pass): dW = Gᵀ P G. (Differentiate
/// Σ dY ⊙ Aᵀ[(G g Gᵀ) ⊙ V]A by g.) For each ξ the sum over tiles is one
/// matrix product, `P_ξ = Z_ξ · V_ξᵀ` (`[C_out, tiles] · [tiles, C_in]`):
/// 36 multiply-adds per tile and channel pair where im2col and GEMM take 144.
pub(crate) fn backward_weight(g: &ConvGeometry, dy: &[f32], x: &[f32]) -> Vec<f32> {
    use rayon::prelude::*;
    let (cin, cout, h, wd) = (g.cin, g.cout, g.h, g.w);
    let tasks = Tasks::new(g);
    let groups = GRAD_GROUPS.min(tasks.count);

    let group = |grp: usize| -> Vec<f32> {
        let mut p = crate::cpu::buffers::zeroed(POINTS * cout * cin);
        let mut scratch = crate::cpu::buffers::scratch(tasks.scratch_len);
        for t in grp * tasks.count / groups..(grp + 1) * tasks.count / groups {
            let (b, r) = tasks.task(g, t);
            let nt = r.nt;
            let (v, z) = scratch[..POINTS * (cin + cout) * nt].split_at_mut(POINTS * cin * nt);
            transform_input(&r, &x[b * cin * h * wd..][..cin * h * wd], v);
            transform_grad(&r, &dy[b * cout * h * wd..][..cout * h * wd], z);
            // P_ξ += Z_ξ · V_ξᵀ.
            for xi in 0..POINTS {
                let lhs = MatPtr {
                    ptr: z[xi * cout * nt..].as_ptr(),
                    rs: nt as isize,
                    cs: 1,
                };
                let rhs = MatPtr {
                    ptr: v[xi * cin * nt..].as_ptr(),
                    rs: 1,
                    cs: nt as isize,
                };
                let dst = p[xi * cout * cin..].as_mut_ptr();
                // SAFETY: Z_ξ is `cout × nt`, V_ξᵀ `nt × cin` (V_ξ read
                // column-major) and P_ξ `cout × cin`, all inside their
                // buffers; P is this group's own.
                unsafe {
                    gemm_strided(
                        cout,
                        cin,
                        nt,
                        dst,
                        cin as isize,
                        1,
                        true,
                        lhs,
                        rhs,
                        Parallelism::None,
                    )
                };
            }
        }
        crate::cpu::buffers::recycle(scratch);
        p
    };
    let parts: Vec<Vec<f32>> = if groups > 1 {
        (0..groups).into_par_iter().map(group).collect()
    } else {
        (0..groups).map(group).collect()
    };
    let mut parts = parts.into_iter();
    let mut p = parts
        .next()
        .unwrap_or_else(|| crate::cpu::buffers::zeroed(POINTS * cout * cin));
    for q in parts {
        for (a, b) in p.iter_mut().zip(&q) {
            *a += b;
        }
        crate::cpu::buffers::recycle(q);
    }

    // dW = Gᵀ P G per channel pair, in f64.
    let mut dw = crate::cpu::buffers::scratch(cout * cin * 9);
    for o in 0..cout {
        for c in 0..cin {
            let at = |k: usize, l: usize| p[((SIDE * k + l) * cout + o) * cin + c] as f64;
            // Gᵀ on the columns of P: q[l] holds rows 0..3 of column l.
            let q: [[f64; 3]; SIDE] =
                std::array::from_fn(|l| gt3(std::array::from_fn(|k| at(k, l))));
            for i in 0..3 {
                let row = gt3(std::array::from_fn(|l| q[l][i]));
                for (j, &v) in row.iter().enumerate() {
                    dw[(o * cin + c) * 9 + 3 * i + j] = v as f32;
                }
            }
        }
    }
    crate::cpu::buffers::recycle(p);
    dw
}
