//! Wide 3×3 convolutions (stride 1, padding 1) by Winograd's minimal
//! filtering F(2×2, 3×3) (Lavin & Gray, "Fast Algorithms for Convolutional
//! Neural Networks", CVPR 2016). The output is computed in 2×2 tiles, each
//! from the 4×4 input tile `d` around it, as
//!
//! ```text
//! Y = Aᵀ [ Σ_c (G g_c Gᵀ) ⊙ (Bᵀ d_c B) ] A
//!
//!      ⎡1  0 -1  0⎤        ⎡ 1    0    0 ⎤
//! Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥    Aᵀ = ⎡1  1  1  0⎤
//!      ⎢0 -1  1  0⎥        ⎢1/2 -1/2  1/2⎥         ⎣0  1 -1 -1⎦
//!      ⎣0  1  0 -1⎦        ⎣ 0    0    1 ⎦
//! ```
//!
//! For each of the 16 transformed positions ξ the sum over input channels is
//! one matrix product, `M_ξ = U_ξ · V_ξ` with `U_ξ` `[C_out, C_in]` (the
//! transformed weights) and `V_ξ` `[C_in, tiles]` (the transformed input):
//! 16 multiply-adds per tile and channel pair where the direct sum needs 36,
//! 2.25× fewer. The transforms only add, subtract and halve, so the rounding
//! stays close to the direct sum's (the tests hold it to the same tolerance).
//!
//! The DnCNN teacher's 64 → 64 layers are the use: its forward pass, which
//! H-KD runs every step and which has no backward pass, is most of a
//! distillation step's GEMM time. Narrow layers (a spiking student's 8–32
//! channels) keep their direct kernels, where the transforms would cost
//! more than the multiply-adds they save.
//!
//! Results do not depend on the thread count: each output value is computed
//! whole by one task, in a fixed order.

use gemm::Parallelism;

use super::conv::{for_each_task, ConvGeometry, SendPtr};
use super::gemm::{gemm_strided, MatPtr};

/// Fewest input and output channels worth the transforms. Measured with
/// `cargo test --release -p spikeir-core --test cpu_conv winograd_timing --
/// --ignored --nocapture` on one thread of a 2-core EPYC: 64 → 64 over 8
/// images of 64² took 24–28 ms against 39–41 ms by im2col + GEMM, 64 → 64
/// over one 512² image 241 ms against 366–447 ms; 32 → 32 over 32 images of
/// 32² took 13–15 ms against 12–13 ms (no gain: the transforms cost as much
/// as the products save).
const MIN_CHANNELS: usize = 64;

/// Floats of transformed input plus products per task (`16 · (C_in +
/// C_out) · tiles`): 512 KiB, a core's L2 on the machine above, so both
/// stay there between the transforms and the 16 products (2¹⁸ and 2¹⁹
/// floats were 10–40 % slower on the 64-channel layers).
const TILE_BUDGET: usize = 1 << 17;

/// Whether [`forward`] takes this convolution (`SPIKEIR_CPU_KERNELS=gemm`
/// turns it off, to compare).
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    g.groups == 1
        && g.kh == 3
        && g.kw == 3
        && g.stride == [1, 1]
        && g.padding == [1, 1]
        && g.dilation == [1, 1]
        && g.cin >= MIN_CHANNELS
        && g.cout >= MIN_CHANNELS
        && !super::conv_narrow::gemm_only()
}

/// `U_ξ = (G g Gᵀ)_ξ` for every output and input channel pair, laid out
/// `[16, C_out, C_in]`.
fn transform_weights(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let (cout, cin) = (g.cout, g.cin);
    let mut u = crate::cpu::buffers::scratch(16 * cout * cin);
    for o in 0..cout {
        for c in 0..cin {
            let k = &w[(o * cin + c) * 9..][..9];
            // G g: 4 rows × 3 columns.
            let mut gg = [[0f32; 3]; 4];
            for j in 0..3 {
                let (a, b, d) = (k[j], k[3 + j], k[6 + j]);
                gg[0][j] = a;
                gg[1][j] = 0.5 * (a + b + d);
                gg[2][j] = 0.5 * (a - b + d);
                gg[3][j] = d;
            }
            // (G g) Gᵀ: 4 × 4.
            for (r, row) in gg.iter().enumerate() {
                let [a, b, d] = *row;
                let v = [a, 0.5 * (a + b + d), 0.5 * (a - b + d), d];
                for (s, &vs) in v.iter().enumerate() {
                    u[((4 * r + s) * cout + o) * cin + c] = vs;
                }
            }
        }
    }
    u
}

/// Copies input row `row` (or zeros, outside the image) into `padded`
/// (`2·tiles_x + 2` floats) one column to the right, zero around it: tile
/// `tx` then reads `padded[2·tx..2·tx + 4]`.
fn pad_row(row: Option<&[f32]>, padded: &mut [f32]) {
    padded.fill(0.0);
    if let Some(row) = row {
        padded[1..=row.len()].copy_from_slice(row);
    }
}

/// The column half of the input transform, `(s B)` for one row `s` of `Bᵀ d`
/// over every tile of a tile row: `out[k][tx]` from `s[2·tx..2·tx + 4]`.
#[inline(always)]
fn columns_in(s: &[f32], out: [&mut [f32]; 4]) {
    let [o0, o1, o2, o3] = out;
    let lo = s.chunks_exact(2);
    let hi = s[2..].chunks_exact(2);
    for ((((a, b), v0), (v1, v2)), v3) in lo
        .zip(hi)
        .zip(o0.iter_mut())
        .zip(o1.iter_mut().zip(o2.iter_mut()))
        .zip(o3.iter_mut())
    {
        let (d0, d1, d2, d3) = (a[0], a[1], b[0], b[1]);
        *v0 = d0 - d2;
        *v1 = d1 + d2;
        *v2 = d2 - d1;
        *v3 = d1 - d3;
    }
}

/// The forward convolution (no bias when `bias` is `None`) into `y`
/// (`[N, C_out, H, W]`, every value written).
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (cin, cout, h, wd) = (g.cin, g.cout, g.h, g.w);
    let (tiles_y, tiles_x) = (h.div_ceil(2), wd.div_ceil(2));
    let rows_per_task = (TILE_BUDGET / (16 * (cin + cout) * tiles_x)).clamp(1, tiles_y);
    let per_image = tiles_y.div_ceil(rows_per_task);
    let tasks = g.n * per_image;
    let u = transform_weights(g, w);
    let yp = SendPtr(y.as_mut_ptr());
    let scratch_len = 16 * (cin + cout) * rows_per_task * tiles_x;

    let task = |scratch: &mut Vec<f32>, t: usize, par: Parallelism| {
        let (b, ty0) = (t / per_image, (t % per_image) * rows_per_task);
        let ty1 = (ty0 + rows_per_task).min(tiles_y);
        let nt = (ty1 - ty0) * tiles_x;
        let (v, m) = scratch[..16 * (cin + cout) * nt].split_at_mut(16 * cin * nt);
        let x_img = &x[b * cin * h * wd..][..cin * h * wd];

        // V_ξ[c, t] = (Bᵀ d B)_ξ: rows first (Bᵀ, on whole padded rows),
        // then columns (B).
        let wp = 2 * tiles_x + 2;
        let mut rows = vec![0f32; 8 * wp];
        let (d, sr) = rows.split_at_mut(4 * wp);
        for c in 0..cin {
            let plane = &x_img[c * h * wd..][..h * wd];
            for ty in ty0..ty1 {
                for (k, padded) in d.chunks_exact_mut(wp).enumerate() {
                    let ih = (2 * ty + k).checked_sub(1).filter(|&ih| ih < h);
                    pad_row(ih.map(|ih| &plane[ih * wd..][..wd]), padded);
                }
                let (d0, d1, d2, d3) = (&d[..wp], &d[wp..2 * wp], &d[2 * wp..3 * wp], &d[3 * wp..]);
                let (s0, rest) = sr.split_at_mut(wp);
                let (s1, rest) = rest.split_at_mut(wp);
                let (s2, s3) = rest.split_at_mut(wp);
                for j in 0..wp {
                    s0[j] = d0[j] - d2[j];
                    s1[j] = d1[j] + d2[j];
                    s2[j] = d2[j] - d1[j];
                    s3[j] = d1[j] - d3[j];
                }
                let t0 = (ty - ty0) * tiles_x;
                for (r, s_r) in sr.chunks_exact(wp).enumerate() {
                    let base = (4 * r * cin + c) * nt + t0;
                    let stride = cin * nt;
                    let (v0, rest) = v[base..].split_at_mut(stride);
                    let (v1, rest) = rest.split_at_mut(stride);
                    let (v2, v3) = rest.split_at_mut(stride);
                    columns_in(
                        s_r,
                        [
                            &mut v0[..tiles_x],
                            &mut v1[..tiles_x],
                            &mut v2[..tiles_x],
                            &mut v3[..tiles_x],
                        ],
                    );
                }
            }
        }

        // M_ξ = U_ξ · V_ξ.
        for xi in 0..16 {
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

        // Y = Aᵀ M A per tile: rows first (Aᵀ, on whole tile rows), then
        // columns (A), interleaving each tile's two output columns.
        let mut sums = vec![0f32; 8 * tiles_x];
        let mut out = vec![0f32; 4 * tiles_x];
        for o in 0..cout {
            let bo = bias.map_or(0.0, |bias| bias[o]);
            for ty in ty0..ty1 {
                let t0 = (ty - ty0) * tiles_x;
                let row = |r: usize, s: usize| &m[((4 * r + s) * cout + o) * nt + t0..][..tiles_x];
                for s in 0..4 {
                    let (m0, m1, m2, m3) = (row(0, s), row(1, s), row(2, s), row(3, s));
                    let (top, bottom) =
                        sums[2 * s * tiles_x..][..2 * tiles_x].split_at_mut(tiles_x);
                    for tx in 0..tiles_x {
                        top[tx] = m0[tx] + m1[tx] + m2[tx];
                        bottom[tx] = m1[tx] - m2[tx] - m3[tx];
                    }
                }
                let col = |s: usize, k: usize| &sums[(2 * s + k) * tiles_x..][..tiles_x];
                for (k, dst) in out.chunks_exact_mut(2 * tiles_x).enumerate() {
                    let (a0, a1, a2, a3) = (col(0, k), col(1, k), col(2, k), col(3, k));
                    for ((((pair, &a0), &a1), &a2), &a3) in
                        dst.chunks_exact_mut(2).zip(a0).zip(a1).zip(a2).zip(a3)
                    {
                        pair[0] = a0 + a1 + a2 + bo;
                        pair[1] = a1 - a2 - a3 + bo;
                    }
                }
                for (k, src) in out.chunks_exact(2 * tiles_x).enumerate() {
                    let oh = 2 * ty + k;
                    if oh < h {
                        // SAFETY: row `oh` of channel `o` of image `b` lies in
                        // this task's tile rows, written by no other task.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(
                                yp.at(((b * cout + o) * h + oh) * wd),
                                wd,
                            )
                        };
                        dst.copy_from_slice(&src[..wd]);
                    }
                }
            }
        }
    };

    for_each_task(tasks, scratch_len, task);
    crate::cpu::buffers::recycle(u);
}
