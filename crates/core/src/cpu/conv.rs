//! 2-D convolution (PyTorch's `conv2d`: cross-correlation, NCHW, groups) and
//! its three gradients on the CPU.
//!
//! Dense and grouped convolutions are GEMMs over im2col matrices. For one
//! image, the column matrix `col` has a row per (input channel, kernel row,
//! kernel column) and a column per output pixel, so with `K_g = C_in/groups ·
//! KH · KW` and group `g` owning rows `g·K_g..(g+1)·K_g`:
//!
//! * forward:      `y_g = W_g · col_g`              (`[C_out/groups, P]`)
//! * weight grad:  `dW_g += dy_g · col_gᵀ`          summed over images
//! * input grad:   `dcol_g = W_gᵀ · dy_g`, then col2im scatter-adds `dcol`
//!   back onto the input pixels each entry was gathered from.
//!
//! The column matrix is built for a range of output pixels at a time so the
//! scratch stays near [`COL_BUDGET`] floats per worker whatever the image
//! size. A 1×1 convolution with stride 1 and no padding needs no im2col: the
//! image itself is the column matrix. Depthwise convolutions (one input
//! channel per group) would be GEMMs with one row, so they run as direct
//! loops over rows instead. Narrow stride-1 convolutions have direct
//! kernels of their own (`conv_narrow`), and the forward pass of wide
//! stride-1 3×3 ones runs by Winograd's F(4×4, 3×3) (`winograd`).
//!
//! Threads: when the (image, pixel range) tasks share out evenly enough over
//! the rayon threads, each thread runs whole tasks with single-threaded
//! GEMMs (no synchronisation inside a task); otherwise the tasks run one
//! after another with each GEMM, im2col and col2im split over the threads.

use std::sync::atomic::{AtomicUsize, Ordering};

use gemm::Parallelism;
use rayon::prelude::*;

use super::gemm::{gemm_strided, MatPtr};

/// Floats of im2col scratch per worker: 1 MiB, so that a column block
/// stays in a core's L2 while the GEMM reads it back, and blocks stay wide
/// (≈ 450 pixels for a 3×3 kernel over 64 channels) so that the per-call
/// costs of a GEMM (packing the weights, touching the output) stay small.
/// On a Xeon with 2 MiB of L2 per core, going down from 4 MiB (2²⁰ floats,
/// fastest on a Zen 4 with its 32 MiB L3) took a 16-channel 3×3 conv over
/// 32 images of 64² from 15.1 to 9.3 ms forward and 16.0 to 12.1 ms for the
/// weight gradient (its 2.4 MB block had spilled out of L2); layers whose
/// block fitted either way did not change.
const COL_BUDGET: usize = 1 << 18;

/// Narrowest pixel range worth a GEMM call of its own.
const MIN_COLS: usize = 64;

/// Sizes of one convolution, derived from the input and weight shapes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub n: usize,
    /// Input channels.
    pub cin: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Output channels.
    pub cout: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Stride `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Zero padding on each side `[vertical, horizontal]`.
    pub padding: [usize; 2],
    /// Spacing between kernel taps `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    /// Channel groups; `cin` and `cout` are multiples of it.
    pub groups: usize,
    /// Output height.
    pub hout: usize,
    /// Output width.
    pub wout: usize,
}

impl ConvGeometry {
    /// The geometry of a convolution of `x_shape = [N, C_in, H, W]` with
    /// weights `w_shape = [C_out, C_in/groups, KH, KW]`. The arguments must
    /// describe a valid convolution (a non-empty output).
    pub fn new(
        x_shape: [usize; 4],
        w_shape: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Self {
        let [n, cin, h, w] = x_shape;
        let [cout, _, kh, kw] = w_shape;
        // out = ⌊(in + 2·pad − dil·(k − 1) − 1) / stride⌋ + 1
        let out = |size: usize, k: usize, d: usize| {
            (size + 2 * padding[d] - dilation[d] * (k - 1) - 1) / stride[d] + 1
        };
        ConvGeometry {
            n,
            cin,
            h,
            w,
            cout,
            kh,
            kw,
            stride,
            padding,
            dilation,
            groups,
            hout: out(h, kh, 0),
            wout: out(w, kw, 1),
        }
    }

    /// `[N, C_out, H_out, W_out]`.
    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.cout, self.hout, self.wout]
    }

    fn cin_g(&self) -> usize {
        self.cin / self.groups
    }

    fn cout_g(&self) -> usize {
        self.cout / self.groups
    }

    /// Rows of one group's column matrix (the GEMM's inner dimension).
    fn k_g(&self) -> usize {
        self.cin_g() * self.kh * self.kw
    }

    /// Output pixels per image.
    fn pixels(&self) -> usize {
        self.hout * self.wout
    }

    /// Input pixels per channel.
    fn plane(&self) -> usize {
        self.h * self.w
    }

    /// A 1×1 kernel, stride 1, no padding: the input is its own column matrix.
    fn is_pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == [1, 1] && self.padding == [0, 0]
    }

    /// One input channel per group (weights `[C_out, 1, KH, KW]`).
    fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.cin_g() == 1
    }

    /// The input row under kernel row `i` for output row `oh`, if inside.
    #[inline]
    fn in_row(&self, oh: usize, i: usize) -> Option<usize> {
        let ih = (oh * self.stride[0] + i * self.dilation[0]).checked_sub(self.padding[0])?;
        (ih < self.h).then_some(ih)
    }

    /// Offset such that kernel column `j` of output column `ow` reads input
    /// column `ow·stride + off`.
    #[inline]
    fn col_offset(&self, j: usize) -> isize {
        (j * self.dilation[1]) as isize - self.padding[1] as isize
    }

    /// The output columns `lo..hi` within `ow0..ow1` whose kernel column `j`
    /// lands inside the input: `0 ≤ ow·s + off ≤ W − 1`.
    #[inline]
    fn valid_cols(&self, j: usize, ow0: usize, ow1: usize) -> (usize, usize) {
        let s = self.stride[1] as isize;
        let off = self.col_offset(j);
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let last = self.w as isize - 1 - off;
        let hi = if last < 0 { 0 } else { last / s + 1 };
        let lo = (lo as usize).clamp(ow0, ow1);
        let hi = (hi as usize).clamp(lo, ow1);
        (lo, hi)
    }

    /// Pixels per task: as many as the scratch budget allows for `rows`
    /// column-matrix rows, split evenly over the image.
    fn chunk_len(&self, rows: usize) -> usize {
        let p = self.pixels();
        let want = (COL_BUDGET / rows.max(1)).max(MIN_COLS);
        let chunks = p.div_ceil(want).max(1);
        p.div_ceil(chunks)
    }
}

/// A raw pointer that tasks on several threads may carry; each task writes
/// only its own disjoint part of the allocation.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: used only to hand disjoint regions of one buffer to tasks that run
// while the buffer is borrowed by the function that spawned them.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Pointer to element `i`.
    ///
    /// # Safety
    /// `i` must be within the allocation.
    pub(crate) unsafe fn at(self, i: usize) -> *mut f32 {
        self.0.add(i)
    }
}

/// The GEMM's parallelism for one task at a time: rayon's threads, or none
/// in a one-thread pool (the `gemm` crate's rayon path costs a single thread
/// about half its speed on the teacher's 64-channel layers).
pub(crate) fn threaded() -> Parallelism {
    if rayon::current_num_threads() > 1 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

/// Whether to spread `tasks` over threads whole, single-threaded GEMMs
/// inside (true), or to run them one at a time with threaded GEMMs. Whole
/// tasks need no synchronisation, but threads idle in the last round when
/// the tasks do not divide evenly: they are used when that round keeps at
/// least 80 % of the threads busy overall.
fn tasks_in_parallel(tasks: usize) -> bool {
    let threads = rayon::current_num_threads();
    let rounds = tasks.div_ceil(threads);
    threads > 1 && tasks >= threads && 5 * tasks >= 4 * rounds * threads
}

/// Runs `f(scratch, t)` for every `t` in `0..tasks` on up to one rayon job
/// per thread, each taking the next task from a shared counter (so uneven
/// tasks balance), with one `init()` scratch per job.
fn run_tasks(
    tasks: usize,
    init: impl Fn() -> Vec<f32> + Sync,
    f: impl Fn(&mut Vec<f32>, usize) + Sync,
) {
    let jobs = rayon::current_num_threads().min(tasks);
    let next = AtomicUsize::new(0);
    (0..jobs).into_par_iter().for_each(|_| {
        let mut scratch = init();
        loop {
            let t = next.fetch_add(1, Ordering::Relaxed);
            if t >= tasks {
                break;
            }
            f(&mut scratch, t);
        }
        crate::cpu::buffers::recycle(scratch);
    });
}

/// Runs `f(scratch, t, parallelism)` for every `t` in `0..tasks`, each with
/// a scratch of `scratch_len` floats: whole tasks spread over the threads
/// with single-threaded GEMMs inside when they share out evenly enough
/// ([`tasks_in_parallel`]), otherwise one after another with threaded GEMMs.
pub(crate) fn for_each_task(
    tasks: usize,
    scratch_len: usize,
    f: impl Fn(&mut Vec<f32>, usize, Parallelism) + Sync,
) {
    if tasks_in_parallel(tasks) {
        run_tasks(
            tasks,
            || crate::cpu::buffers::scratch(scratch_len),
            |s, t| f(s, t, Parallelism::None),
        );
    } else {
        let mut s = crate::cpu::buffers::scratch(scratch_len);
        for t in 0..tasks {
            f(&mut s, t, threaded());
        }
        crate::cpu::buffers::recycle(s);
    }
}

/// Defines `fn $name(args)` that runs `$kernel(args)` (an
/// `#[inline(always)]` function) from a copy compiled for AVX2 when the CPU
/// has it, so the kernel's loops use 8-lane vectors rather than the 4 lanes
/// of the x86-64 baseline. The arithmetic is the same (no fused
/// multiply-adds), so results do not depend on the CPU.
macro_rules! avx2_dispatch {
    ($(#[$doc:meta])* fn $name:ident => $kernel:ident($($arg:ident: $ty:ty),* $(,)?)) => {
        $crate::cpu::conv::avx2_dispatch! {
            $(#[$doc])* fn $name => $kernel($($arg: $ty),*) -> ()
        }
    };
    ($(#[$doc:meta])* fn $name:ident => $kernel:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx,avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    $kernel($($arg),*)
                }
                if $crate::cpu::has_avx2() {
                    // SAFETY: the CPU has the features `avx2` is compiled for.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $kernel($($arg),*)
        }
    };
}
pub(crate) use avx2_dispatch;

/// Fills `col` (`[C_in·KH·KW, len]`, rows ordered channel, kernel row,
/// kernel column) with the input values under every kernel tap for output
/// pixels `p0..p0 + len` of one image `x_img` (`[C_in, H, W]`); taps in the
/// padding read 0.
fn im2col(g: &ConvGeometry, x_img: &[f32], p0: usize, len: usize, col: &mut [f32], parallel: bool) {
    let taps = g.kh * g.kw;
    let per_channel = |(ci, rows): (usize, &mut [f32])| {
        let xp = &x_img[ci * g.plane()..][..g.plane()];
        for (t, row) in rows.chunks_exact_mut(len).enumerate() {
            gather_row(g, xp, t / g.kw, t % g.kw, p0, row);
        }
    };
    let col = &mut col[..g.cin * taps * len];
    if parallel {
        col.par_chunks_mut(taps * len)
            .enumerate()
            .for_each(per_channel);
    } else {
        col.chunks_mut(taps * len).enumerate().for_each(per_channel);
    }
}

/// One im2col row: tap `(i, j)` of input plane `xp` for output pixels
/// `p0..p0 + row.len()`, walked one output row segment at a time.
fn gather_row(g: &ConvGeometry, xp: &[f32], i: usize, j: usize, p0: usize, row: &mut [f32]) {
    if g.stride == [1, 1] && g.wout == g.w {
        return gather_row_shifted(g, xp, i, j, p0, row);
    }
    let off = g.col_offset(j);
    let mut q = 0;
    while q < row.len() {
        let (oh, ow0) = ((p0 + q) / g.wout, (p0 + q) % g.wout);
        let ow1 = (ow0 + row.len() - q).min(g.wout);
        let seg = &mut row[q..q + ow1 - ow0];
        q += ow1 - ow0;
        let Some(ih) = g.in_row(oh, i) else {
            seg.fill(0.0);
            continue;
        };
        let xr = &xp[ih * g.w..][..g.w];
        let (lo, hi) = g.valid_cols(j, ow0, ow1);
        seg[..lo - ow0].fill(0.0);
        seg[hi - ow0..].fill(0.0);
        let inside = &mut seg[lo - ow0..hi - ow0];
        if inside.is_empty() {
            continue;
        }
        if g.stride[1] == 1 {
            let start = (lo as isize + off) as usize;
            inside.copy_from_slice(&xr[start..start + inside.len()]);
        } else {
            let s = g.stride[1];
            for (k, v) in inside.iter_mut().enumerate() {
                *v = xr[(((lo + k) * s) as isize + off) as usize];
            }
        }
    }
}

/// [`gather_row`] for a stride-1 convolution whose output rows are as wide
/// as its input rows (as with "same" padding): output pixel p then reads
/// input pixel p + shift, one shift per tap, so the row is one copy from the
/// plane instead of one per output row. Where the tap lies in the padding the
/// copy took a value from a neighbouring input row (left or right of the
/// input) or from no row at all (above or below it): those entries are
/// zeroed afterwards. Per-row copies of a 64-pixel row were most of im2col's
/// time.
fn gather_row_shifted(
    g: &ConvGeometry,
    xp: &[f32],
    i: usize,
    j: usize,
    p0: usize,
    row: &mut [f32],
) {
    let w = g.w;
    // Input row oh + dr and column ow + dc for output pixel (oh, ow).
    let dr = (i * g.dilation[0]) as isize - g.padding[0] as isize;
    let dc = g.col_offset(j);
    let shift = dr * w as isize + dc;
    let (len, start, plane) = (row.len() as isize, p0 as isize, (g.h * w) as isize);
    // Output pixels whose source index p + shift lies inside the plane.
    let q_lo = (-shift - start).clamp(0, len) as usize;
    let q_hi = (plane - shift - start).clamp(q_lo as isize, len) as usize;
    row[..q_lo].fill(0.0);
    row[q_hi..].fill(0.0);
    // No pixel reads the plane when the tap lies wholly outside it (a plane smaller than the kernel).
    if q_hi > q_lo {
        let src = (start + q_lo as isize + shift) as usize;
        row[q_lo..q_hi].copy_from_slice(&xp[src..src + (q_hi - q_lo)]);
    }
    // A pixel whose input row lies outside the plane but whose column lies
    // inside reads before or after the plane, so the fills above zeroed it;
    // what is left are the columns left of `lo` and right of `hi` of every
    // output row, which read a neighbouring row's pixels. They are zeroed
    // by walking the rows' starts: a division per row segment (as in
    // `gather_row`) was most of this function's time.
    let (lo, hi) = g.valid_cols(j, 0, w);
    if (lo == 0 && hi == w) || row.is_empty() {
        return;
    }
    let n = row.len();
    let mut zero = |a: isize, b: isize| {
        let (a, b) = (
            a.clamp(0, n as isize) as usize,
            b.clamp(0, n as isize) as usize,
        );
        if a < b {
            row[a..b].fill(0.0);
        }
    };
    // `base` is the position in `row` of column 0 of each output row that
    // overlaps `p0..p0 + n` (negative for a row that starts before p0).
    let mut base = ((p0 / w) * w) as isize - start;
    while base < n as isize {
        zero(base, base + lo as isize);
        zero(base + hi as isize, base + w as isize);
        base += w as isize;
    }
}

/// The adjoint of [`im2col`]: adds every entry of `dcol` onto the input
/// pixel of `dx_img` it was gathered from (padding taps are dropped). Rows
/// of one channel only touch that channel's plane, so channels run in
/// parallel without races.
fn col2im(
    g: &ConvGeometry,
    dcol: &[f32],
    p0: usize,
    len: usize,
    dx_img: &mut [f32],
    parallel: bool,
) {
    let taps = g.kh * g.kw;
    let per_channel = |(dxp, rows): (&mut [f32], &[f32])| col2im_channel(g, rows, p0, len, dxp);
    let dx_img = &mut dx_img[..g.cin * g.plane()];
    let dcol = &dcol[..g.cin * taps * len];
    if parallel {
        dx_img
            .par_chunks_mut(g.plane())
            .zip(dcol.par_chunks(taps * len))
            .for_each(per_channel);
    } else {
        dx_img
            .chunks_mut(g.plane())
            .zip(dcol.chunks(taps * len))
            .for_each(per_channel);
    }
}

avx2_dispatch! {
    /// col2im for one input channel: `rows` are its `KH·KW` rows of `dcol`.
    fn col2im_channel => col2im_channel_kernel(
        g: &ConvGeometry, rows: &[f32], p0: usize, len: usize, dxp: &mut [f32],
    )
}

#[inline(always)]
fn col2im_channel_kernel(g: &ConvGeometry, rows: &[f32], p0: usize, len: usize, dxp: &mut [f32]) {
    for (t, row) in rows.chunks_exact(len).enumerate() {
        scatter_row(g, dxp, t / g.kw, t % g.kw, p0, row);
    }
}

/// The adjoint of [`gather_row`]: `dxp[pixel under tap (i, j)] += row[q]`.
#[inline(always)]
fn scatter_row(g: &ConvGeometry, dxp: &mut [f32], i: usize, j: usize, p0: usize, row: &[f32]) {
    let off = g.col_offset(j);
    let mut q = 0;
    while q < row.len() {
        let (oh, ow0) = ((p0 + q) / g.wout, (p0 + q) % g.wout);
        let ow1 = (ow0 + row.len() - q).min(g.wout);
        let seg = &row[q..q + ow1 - ow0];
        q += ow1 - ow0;
        let Some(ih) = g.in_row(oh, i) else { continue };
        let xr = &mut dxp[ih * g.w..][..g.w];
        let (lo, hi) = g.valid_cols(j, ow0, ow1);
        let inside = &seg[lo - ow0..hi - ow0];
        if inside.is_empty() {
            continue;
        }
        if g.stride[1] == 1 {
            let start = (lo as isize + off) as usize;
            add_to(&mut xr[start..start + inside.len()], inside);
        } else {
            let s = g.stride[1];
            for (k, &v) in inside.iter().enumerate() {
                xr[(((lo + k) * s) as isize + off) as usize] += v;
            }
        }
    }
}

/// `dst += src`.
#[inline(always)]
pub(crate) fn add_to(dst: &mut [f32], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += s;
    }
}

/// `dst += a · src`.
#[inline(always)]
fn axpy(a: f32, src: &[f32], dst: &mut [f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        *d += a * s;
    }
}

/// `Σ a[i]·b[i]` over 16 independent partial sums, so the loop vectorises
/// (a single running sum would fix the order and forbid it).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..16 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// `conv2d(x, w) + bias` for `x` `[N, C_in, H, W]` and `w`
/// `[C_out, C_in/groups, KH, KW]`: `y[n, o, oh, ow] = bias[o] +
/// Σ_{c, i, j} w[o, c, i, j] · x[n, g·C_in/groups + c, oh·s₀ + i·d₀ − p₀,
/// ow·s₁ + j·d₁ − p₁]` with `g` the group of `o` and zeros outside the
/// input. Returns `[N, C_out, H_out, W_out]`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f32],
    x_shape: [usize; 4],
    w: &[f32],
    w_shape: [usize; 4],
    bias: Option<&[f32]>,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Vec<f32> {
    let g = ConvGeometry::new(x_shape, w_shape, stride, padding, dilation, groups);
    // Both paths write every output.
    let mut y = crate::cpu::buffers::scratch(g.n * g.cout * g.pixels());
    if y.is_empty() {
        return y;
    }
    if g.is_depthwise() {
        depthwise_forward(&g, x, w, bias, &mut y);
    } else {
        gemm_forward(&g, x, w, bias, &mut y);
    }
    y
}

/// The dense and grouped forward pass: per task, an im2col block (or the
/// image itself for a pointwise conv) times each group's weights into `y`.
fn gemm_forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    // Winograd first: it takes some 16-output layers from the narrow kernels.
    if super::winograd::applies(g) {
        return super::winograd::forward(g, x, w, bias, y);
    }
    if super::conv_narrow::applies(g) {
        return super::conv_narrow::forward(g, x, w, bias, y);
    }
    let (p, hw, k_g, cout_g) = (g.pixels(), g.plane(), g.k_g(), g.cout_g());
    let pointwise = g.is_pointwise();
    let len = g.chunk_len(g.cin * g.kh * g.kw);
    let per_image = p.div_ceil(len);
    let tasks = g.n * per_image;
    let yp = SendPtr(y.as_mut_ptr());
    let task = |col: &mut Vec<f32>, t: usize, par: Parallelism| {
        let (b, p0) = (t / per_image, (t % per_image) * len);
        let plen = len.min(p - p0);
        let x_img = &x[b * g.cin * hw..][..g.cin * hw];
        let (rhs, rhs_rs) = if pointwise {
            (x_img[p0..].as_ptr(), hw)
        } else {
            im2col(g, x_img, p0, plen, col, !matches!(par, Parallelism::None));
            (col.as_ptr(), plen)
        };
        for gi in 0..g.groups {
            let lhs = MatPtr {
                ptr: w[gi * cout_g * k_g..].as_ptr(),
                rs: k_g as isize,
                cs: 1,
            };
            // SAFETY: group gi's rows of the column matrix (or image) and
            // of the weights are in bounds; the destination block (output
            // channels of gi, pixels p0..p0+plen of image b) belongs to this
            // task alone.
            unsafe {
                let rhs = MatPtr {
                    ptr: rhs.add(gi * k_g * rhs_rs),
                    rs: rhs_rs as isize,
                    cs: 1,
                };
                let dst = yp.at((b * g.cout + gi * cout_g) * p + p0);
                gemm_strided(cout_g, plen, k_g, dst, p as isize, 1, false, lhs, rhs, par);
            }
        }
        if let Some(bias) = bias {
            for (o, &bo) in bias.iter().enumerate().take(g.cout) {
                // SAFETY: the same block of this task's outputs as above.
                let row = unsafe {
                    std::slice::from_raw_parts_mut(yp.at((b * g.cout + o) * p + p0), plen)
                };
                row.iter_mut().for_each(|v| *v += bo);
            }
        }
    };
    let col_len = if pointwise {
        0
    } else {
        g.cin * g.kh * g.kw * len
    };
    for_each_task(tasks, col_len, task);
}

/// The gradient of `Σ grad_out ⊙ conv2d(x, w)` with respect to `x`, for
/// `grad_out` of shape `out_shape = [N, C_out, H_out, W_out]`: the
/// transposed convolution of `grad_out` with `w`. Returns `x_shape`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_input(
    grad_out: &[f32],
    out_shape: [usize; 4],
    w: &[f32],
    w_shape: [usize; 4],
    x_shape: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Vec<f32> {
    let g = ConvGeometry::new(x_shape, w_shape, stride, padding, dilation, groups);
    debug_assert_eq!(g.out_shape(), out_shape, "conv2d_backward_input: out_shape");
    let dx_len = g.n * g.cin * g.plane();
    if dx_len == 0 {
        return Vec::new();
    }
    if g.is_depthwise() {
        let mut dx = crate::cpu::buffers::zeroed(dx_len);
        depthwise_backward_input(&g, grad_out, w, &mut dx);
        return dx;
    }
    if let Some((gt, wt)) = transposed_as_conv(&g, w) {
        // A forward pass: it writes every value.
        let mut dx = crate::cpu::buffers::scratch(dx_len);
        gemm_forward(&gt, grad_out, &wt, None, &mut dx);
        crate::cpu::buffers::recycle(wt);
        return dx;
    }
    // A pointwise conv's GEMMs store each value; col2im adds into zeros.
    let mut dx = if g.is_pointwise() {
        crate::cpu::buffers::scratch(dx_len)
    } else {
        crate::cpu::buffers::zeroed(dx_len)
    };
    let (p, hw, k_g, cout_g) = (g.pixels(), g.plane(), g.k_g(), g.cout_g());
    let pointwise = g.is_pointwise();
    let len = g.chunk_len(g.cin * g.kh * g.kw);
    let per_image = p.div_ceil(len);
    let dxp = SendPtr(dx.as_mut_ptr());
    // dcol_g (or dx_g directly for a pointwise conv) = W_gᵀ · dy_g for the
    // pixel range p0..p0+plen of image b.
    let wt_dy =
        |b: usize, p0: usize, plen: usize, dst: *mut f32, dst_rs: usize, par: Parallelism| {
            for gi in 0..g.groups {
                // Wᵀ's element (r, o) is w[(gi·cout_g + o)·K_g + r].
                let lhs = MatPtr {
                    ptr: w[gi * cout_g * k_g..].as_ptr(),
                    rs: 1,
                    cs: k_g as isize,
                };
                let rhs = MatPtr {
                    ptr: grad_out[(b * g.cout + gi * cout_g) * p + p0..].as_ptr(),
                    rs: p as isize,
                    cs: 1,
                };
                // SAFETY: operands in bounds as above; `dst` rows gi·K_g.. are
                // the caller's exclusive block.
                unsafe {
                    let dst = dst.add(gi * k_g * dst_rs);
                    gemm_strided(
                        k_g,
                        plen,
                        cout_g,
                        dst,
                        dst_rs as isize,
                        1,
                        false,
                        lhs,
                        rhs,
                        par,
                    );
                }
            }
        };
    if pointwise {
        // No scatter: each (image, pixel range) owns its block of dx.
        let tasks = g.n * per_image;
        let task = |t: usize, par: Parallelism| {
            let (b, p0) = (t / per_image, (t % per_image) * len);
            // SAFETY: image b's channels, pixels p0.. (p == hw here).
            let dst = unsafe { dxp.at(b * g.cin * hw + p0) };
            wt_dy(b, p0, len.min(p - p0), dst, hw, par);
        };
        if tasks_in_parallel(tasks) {
            run_tasks(tasks, Vec::new, |_, t| task(t, Parallelism::None));
        } else {
            (0..tasks).for_each(|t| task(t, threaded()));
        }
        return dx;
    }
    let col_len = g.cin * g.kh * g.kw * len;
    // Pixel ranges of one image scatter onto overlapping input pixels, so an
    // image's ranges run in order within one task.
    let image = |dcol: &mut Vec<f32>, b: usize, par: Parallelism| {
        // SAFETY: image b's gradient belongs to this task alone.
        let dx_img = unsafe { std::slice::from_raw_parts_mut(dxp.at(b * g.cin * hw), g.cin * hw) };
        for p0 in (0..p).step_by(len) {
            let plen = len.min(p - p0);
            wt_dy(b, p0, plen, dcol.as_mut_ptr(), plen, par);
            col2im(
                &g,
                dcol,
                p0,
                plen,
                dx_img,
                !matches!(par, Parallelism::None),
            );
        }
    };
    for_each_task(g.n, col_len, image);
    dx
}

/// For stride 1, the input gradient is itself a convolution, which runs as
/// fast as the forward pass and needs no col2im scatter:
/// `dx[c, ih, iw] = Σ_{o,i,j} w[o, c, i, j] · dy[o, ih + p − i·d, iw + p − j·d]`,
/// and with `i' = KH − 1 − i` the offset is `ih − p' + i'·d` where
/// `p' = d·(KH − 1) − p`: a stride-1 conv of `dy` with padding `p'`, the same
/// dilation and groups, and weights `w'[c, o, i', j'] = w[o, c, KH−1−i',
/// KW−1−j']` (channels swapped within each group, taps flipped). Returns
/// that conv's geometry and weights, or `None` for a stride above 1, a
/// padding wider than `d·(K − 1)` (a negative `p'`), or a pointwise conv
/// (already a plain GEMM).
fn transposed_as_conv(g: &ConvGeometry, w: &[f32]) -> Option<(ConvGeometry, Vec<f32>)> {
    let flipped_pad = |d: usize, k: usize| (g.dilation[d] * (k - 1)).checked_sub(g.padding[d]);
    let padding = [flipped_pad(0, g.kh)?, flipped_pad(1, g.kw)?];
    if g.stride != [1, 1] || g.is_pointwise() {
        return None;
    }
    let (cin_g, cout_g, taps) = (g.cin_g(), g.cout_g(), g.kh * g.kw);
    let mut wt = crate::cpu::buffers::scratch(w.len());
    for gi in 0..g.groups {
        for o in 0..cout_g {
            for c in 0..cin_g {
                let src = &w[((gi * cout_g + o) * cin_g + c) * taps..][..taps];
                let dst = &mut wt[((gi * cin_g + c) * cout_g + o) * taps..][..taps];
                // Reversing the row-major KH×KW block flips both axes.
                for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = *s;
                }
            }
        }
    }
    let gt = ConvGeometry::new(
        [g.n, g.cout, g.hout, g.wout],
        [g.cin, cout_g, g.kh, g.kw],
        [1, 1],
        padding,
        g.dilation,
        g.groups,
    );
    debug_assert_eq!((gt.hout, gt.wout), (g.h, g.w));
    Some((gt, wt))
}

/// The gradient of `Σ grad_out ⊙ conv2d(x, w)` with respect to `w`:
/// `dw[o, c, i, j] = Σ_{n, oh, ow} grad_out[n, o, oh, ow] · x[n, g·C_in/groups
/// + c, oh·s₀ + i·d₀ − p₀, ow·s₁ + j·d₁ − p₁]`. Returns `w_shape`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward_weight(
    grad_out: &[f32],
    out_shape: [usize; 4],
    x: &[f32],
    x_shape: [usize; 4],
    w_shape: [usize; 4],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Vec<f32> {
    let g = ConvGeometry::new(x_shape, w_shape, stride, padding, dilation, groups);
    debug_assert_eq!(
        g.out_shape(),
        out_shape,
        "conv2d_backward_weight: out_shape"
    );
    let (p, hw, k_g, cout_g) = (g.pixels(), g.plane(), g.k_g(), g.cout_g());
    let w_len = g.cout * k_g;
    if w_len == 0 || g.n * p == 0 {
        return crate::cpu::buffers::zeroed(w_len);
    }
    if g.is_depthwise() {
        return depthwise_backward_weight(&g, grad_out, x);
    }
    if super::winograd::applies_backward_weight(&g) {
        return super::winograd::backward_weight(&g, grad_out, x);
    }
    if super::conv_narrow::applies(&g) {
        return super::conv_narrow::backward_weight(&g, grad_out, x);
    }
    let pointwise = g.is_pointwise();
    let len = g.chunk_len(g.cin * g.kh * g.kw);
    let per_image = p.div_ceil(len);
    let tasks = g.n * per_image;
    // dw_gᵀ += col_g · dy_gᵀ for task t's pixel range, into an accumulator
    // laid out `[groups, K_g, C_out/groups]` (transposed per group). The
    // GEMM wants its output's columns contiguous, so with `dw_g` itself as
    // the output it repacks the `K_g × pixels` column block, transposing
    // it, for every call; with `dw_gᵀ` it repacks only the gradient's
    // `C_out/groups × pixels` rows, which for the narrow layers of a
    // student are a small fraction of the column block.
    let task = |col: &mut Vec<f32>, dwt: &mut [f32], t: usize, par: Parallelism| {
        let (b, p0) = (t / per_image, (t % per_image) * len);
        let plen = len.min(p - p0);
        let x_img = &x[b * g.cin * hw..][..g.cin * hw];
        // col's element (r, q) is col[r·plen + q] (or x_img[r·hw + p0 + q]).
        let (lhs, lhs_rs) = if pointwise {
            (x_img[p0..].as_ptr(), hw)
        } else {
            im2col(&g, x_img, p0, plen, col, !matches!(par, Parallelism::None));
            (col.as_ptr(), plen)
        };
        for gi in 0..g.groups {
            // dy_gᵀ's element (q, o) is grad_out[(b·C_out + gi·cout_g + o)·P + p0 + q].
            let rhs = MatPtr {
                ptr: grad_out[(b * g.cout + gi * cout_g) * p + p0..].as_ptr(),
                rs: 1,
                cs: p as isize,
            };
            let dst = &mut dwt[gi * k_g * cout_g..][..k_g * cout_g];
            // SAFETY: operands in bounds; `dst` is borrowed mutably.
            unsafe {
                let lhs = MatPtr {
                    ptr: lhs.add(gi * k_g * lhs_rs),
                    rs: lhs_rs as isize,
                    cs: 1,
                };
                gemm_strided(
                    k_g,
                    cout_g,
                    plen,
                    dst.as_mut_ptr(),
                    cout_g as isize,
                    1,
                    true,
                    lhs,
                    rhs,
                    par,
                );
            }
        }
    };
    let col_len = if pointwise {
        0
    } else {
        g.cin * g.kh * g.kw * len
    };
    let dwt = if tasks_in_parallel(tasks) {
        // Each job sums a fixed, contiguous share of the tasks into its own
        // accumulator and the shares are added in order, so the result does
        // not depend on scheduling.
        let jobs = rayon::current_num_threads().min(tasks);
        let partial: Vec<Vec<f32>> = (0..jobs)
            .into_par_iter()
            .map(|j| {
                let mut col = crate::cpu::buffers::scratch(col_len);
                let mut dwt = crate::cpu::buffers::zeroed(w_len);
                for t in tasks * j / jobs..tasks * (j + 1) / jobs {
                    task(&mut col, &mut dwt, t, Parallelism::None);
                }
                crate::cpu::buffers::recycle(col);
                dwt
            })
            .collect();
        let mut parts = partial.into_iter();
        let mut dwt = parts
            .next()
            .unwrap_or_else(|| crate::cpu::buffers::zeroed(w_len));
        for part in parts {
            add_to(&mut dwt, &part);
            crate::cpu::buffers::recycle(part);
        }
        dwt
    } else {
        let mut col = crate::cpu::buffers::scratch(col_len);
        let mut dwt = crate::cpu::buffers::zeroed(w_len);
        for t in 0..tasks {
            task(&mut col, &mut dwt, t, threaded());
        }
        crate::cpu::buffers::recycle(col);
        dwt
    };
    // Back to `[C_out, C_in/groups, KH, KW]`: group gi's `(r, o)` entry is
    // weight `(gi·cout_g + o, r)`.
    let mut dw = crate::cpu::buffers::scratch(w_len);
    for gi in 0..g.groups {
        let src = &dwt[gi * k_g * cout_g..][..k_g * cout_g];
        let dst = &mut dw[gi * cout_g * k_g..][..cout_g * k_g];
        for (r, row) in src.chunks_exact(cout_g).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                dst[o * k_g + r] = v;
            }
        }
    }
    crate::cpu::buffers::recycle(dwt);
    dw
}

/// The gradient of `Σ grad_out ⊙ (conv2d(x, w) + bias)` with respect to
/// `bias`: `grad_out` (`out_shape = [N, C, H, W]`) summed over N, H and W.
pub fn conv2d_backward_bias(grad_out: &[f32], out_shape: [usize; 4]) -> Vec<f32> {
    let [n, c, h, w] = out_shape;
    let plane = h * w;
    (0..c)
        .into_par_iter()
        .map(|o| {
            // f32 partial sums per plane (vectorised), f64 across planes.
            let total: f64 = (0..n)
                .map(|b| {
                    let row = &grad_out[(b * c + o) * plane..][..plane];
                    let mut acc = [0.0f32; 16];
                    let chunks = row.chunks_exact(16);
                    let rest: f32 = chunks.remainder().iter().sum();
                    for ch in chunks {
                        for l in 0..16 {
                            acc[l] += ch[l];
                        }
                    }
                    (acc.iter().sum::<f32>() + rest) as f64
                })
                .sum();
            total as f32
        })
        .collect()
}

/// Depthwise forward: output channel `o` reads input channel `o / M` alone
/// (`M = C_out / groups`), so each output plane is `Σ_{i,j} w[o, 0, i, j] ·
/// (shifted input plane)` accumulated one output row at a time.
fn depthwise_forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let (p, hw, taps, mult) = (g.pixels(), g.plane(), g.kh * g.kw, g.cout_g());
    y.par_chunks_mut(p).enumerate().for_each(|(plane, yp)| {
        let (b, o) = (plane / g.cout, plane % g.cout);
        let xp = &x[(b * g.cin + o / mult) * hw..][..hw];
        let wk = &w[o * taps..][..taps];
        depthwise_forward_plane(g, xp, wk, bias.map_or(0.0, |bias| bias[o]), yp);
    });
}

avx2_dispatch! {
    /// One output plane `yp` of a depthwise convolution of input plane `xp`
    /// with kernel `wk`, plus `b0`.
    fn depthwise_forward_plane => depthwise_forward_plane_kernel(
        g: &ConvGeometry, xp: &[f32], wk: &[f32], b0: f32, yp: &mut [f32],
    )
}

#[inline(always)]
fn depthwise_forward_plane_kernel(
    g: &ConvGeometry,
    xp: &[f32],
    wk: &[f32],
    b0: f32,
    yp: &mut [f32],
) {
    for (oh, yr) in yp.chunks_exact_mut(g.wout).enumerate() {
        yr.fill(b0);
        for i in 0..g.kh {
            let Some(ih) = g.in_row(oh, i) else { continue };
            let xr = &xp[ih * g.w..][..g.w];
            for j in 0..g.kw {
                let (lo, hi) = g.valid_cols(j, 0, g.wout);
                if lo == hi {
                    continue;
                }
                let (wv, off) = (wk[i * g.kw + j], g.col_offset(j));
                if g.stride[1] == 1 {
                    let start = (lo as isize + off) as usize;
                    axpy(wv, &xr[start..start + hi - lo], &mut yr[lo..hi]);
                } else {
                    for ow in lo..hi {
                        yr[ow] += wv * xr[((ow * g.stride[1]) as isize + off) as usize];
                    }
                }
            }
        }
    }
}

/// Depthwise input gradient: input plane `c` receives from output channels
/// `c·M..(c+1)·M`, each output row scattered back under every tap.
fn depthwise_backward_input(g: &ConvGeometry, dy: &[f32], w: &[f32], dx: &mut [f32]) {
    let (p, hw, taps, mult) = (g.pixels(), g.plane(), g.kh * g.kw, g.cout_g());
    dx.par_chunks_mut(hw).enumerate().for_each(|(plane, dxp)| {
        let (b, c) = (plane / g.cin, plane % g.cin);
        for o in c * mult..(c + 1) * mult {
            let dyp = &dy[(b * g.cout + o) * p..][..p];
            depthwise_backward_input_plane(g, dyp, &w[o * taps..][..taps], dxp);
        }
    });
}

avx2_dispatch! {
    /// Adds to input-gradient plane `dxp` the transposed depthwise
    /// convolution of output-gradient plane `dyp` with kernel `wk`.
    fn depthwise_backward_input_plane => depthwise_backward_input_plane_kernel(
        g: &ConvGeometry, dyp: &[f32], wk: &[f32], dxp: &mut [f32],
    )
}

#[inline(always)]
fn depthwise_backward_input_plane_kernel(
    g: &ConvGeometry,
    dyp: &[f32],
    wk: &[f32],
    dxp: &mut [f32],
) {
    for (oh, dyr) in dyp.chunks_exact(g.wout).enumerate() {
        for i in 0..g.kh {
            let Some(ih) = g.in_row(oh, i) else { continue };
            let dxr = &mut dxp[ih * g.w..][..g.w];
            for j in 0..g.kw {
                let (lo, hi) = g.valid_cols(j, 0, g.wout);
                if lo == hi {
                    continue;
                }
                let (wv, off) = (wk[i * g.kw + j], g.col_offset(j));
                if g.stride[1] == 1 {
                    let start = (lo as isize + off) as usize;
                    axpy(wv, &dyr[lo..hi], &mut dxr[start..start + hi - lo]);
                } else {
                    for ow in lo..hi {
                        dxr[((ow * g.stride[1]) as isize + off) as usize] += wv * dyr[ow];
                    }
                }
            }
        }
    }
}

/// Depthwise weight gradient: `dw[o, 0, i, j]` is the dot product of output
/// gradient rows with the input rows under tap `(i, j)`, over all images.
fn depthwise_backward_weight(g: &ConvGeometry, dy: &[f32], x: &[f32]) -> Vec<f32> {
    let (p, hw, taps, mult) = (g.pixels(), g.plane(), g.kh * g.kw, g.cout_g());
    let mut dw = crate::cpu::buffers::zeroed(g.cout * taps);
    dw.par_chunks_mut(taps).enumerate().for_each(|(o, dwo)| {
        // f32 dot products per row, f64 across rows and images.
        let mut acc = vec![0.0f64; taps];
        for b in 0..g.n {
            let dyp = &dy[(b * g.cout + o) * p..][..p];
            let xp = &x[(b * g.cin + o / mult) * hw..][..hw];
            depthwise_backward_weight_plane(g, dyp, xp, &mut acc);
        }
        for (d, a) in dwo.iter_mut().zip(acc) {
            *d = a as f32;
        }
    });
    dw
}

avx2_dispatch! {
    /// Adds to `acc[i·KW + j]` the products of output-gradient plane `dyp`
    /// with the input plane `xp` under tap `(i, j)`.
    fn depthwise_backward_weight_plane => depthwise_backward_weight_plane_kernel(
        g: &ConvGeometry, dyp: &[f32], xp: &[f32], acc: &mut [f64],
    )
}

#[inline(always)]
fn depthwise_backward_weight_plane_kernel(
    g: &ConvGeometry,
    dyp: &[f32],
    xp: &[f32],
    acc: &mut [f64],
) {
    for (oh, dyr) in dyp.chunks_exact(g.wout).enumerate() {
        for i in 0..g.kh {
            let Some(ih) = g.in_row(oh, i) else { continue };
            let xr = &xp[ih * g.w..][..g.w];
            for j in 0..g.kw {
                let (lo, hi) = g.valid_cols(j, 0, g.wout);
                if lo == hi {
                    continue;
                }
                let off = g.col_offset(j);
                let s = if g.stride[1] == 1 {
                    let start = (lo as isize + off) as usize;
                    dot(&dyr[lo..hi], &xr[start..start + hi - lo])
                } else {
                    let mut s = 0.0f32;
                    for ow in lo..hi {
                        s += dyr[ow] * xr[((ow * g.stride[1]) as isize + off) as usize];
                    }
                    s
                };
                acc[i * g.kw + j] += s as f64;
            }
        }
    }
}
