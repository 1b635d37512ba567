//! Narrow convolutions: at most [`MAX_OUT`] output channels, stride 1, one
//! group. A spiking student's layers are this narrow (8 and 16 channels), and
//! there the im2col + GEMM path runs its micro-kernels half empty and spends
//! more time packing and copying the 9× column matrix than multiplying.
//!
//! Here the input is copied once into zero-padded planes, each row `wp`
//! floats wide. In that layout the output pixel at flat position
//! `k = oh·wp + ow` reads, under tap `(i, j)`, the padded input at `k + i·d₀·wp + j·d₁`:
//! one offset per tap over the whole plane. So the output is computed at
//! every flat position in 16-pixel vectors (the positions past W_out in each
//! row are computed and dropped), summed in registers: for every input
//! channel and tap, one load of 16 input pixels and OB multiply-adds with a
//! broadcast weight. The weight gradient turns the roles: with the output
//! gradient laid out the same way (zero past W_out), `dw[o, c, i, j]` is the
//! dot product of its plane `o` with input plane `c` shifted by the tap's
//! offset, computed OB × J at a time (output channels by kernel columns).
//!
//! Results do not depend on the thread count: forward outputs are each
//! computed whole by one task, and the weight gradient's per-task partial
//! sums come from a fixed split of the positions (not one by thread) and are added
//! in task order.

use rayon::prelude::*;

use super::conv::ConvGeometry;

/// Widest output the narrow path takes.
pub(crate) const MAX_OUT: usize = 16;

/// Pixels per block: one AVX-512 vector of f32.
const LANES: usize = 16;

/// Flat positions per weight-gradient task: a fixed split, so that the
/// partial sums (and their rounding) do not depend on the number of threads.
const GRAD_SPAN: usize = 64 * LANES;

/// Whether [`forward`] and [`backward_weight`] take this convolution
/// (`SPIKEIR_CPU_KERNELS=gemm` turns them off, to compare). Pointwise
/// convolutions stay on the GEMM, which reads their input as it is, and so
/// do convolutions with fewer than [`MIN_TERMS`] terms per output, where
/// padding and scattering the planes cost more than the sums (the input
/// gradient of an 8 → 1 output layer: 0.7 ms by GEMM, 1.1–1.5 ms here).
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    let pointwise = g.kh == 1 && g.kw == 1 && g.padding == [0, 0];
    g.groups == 1
        && g.stride == [1, 1]
        && !pointwise
        && (1..=MAX_OUT).contains(&g.cout)
        && g.cin * g.kh * g.kw >= MIN_TERMS
        && isa() != Isa::Off
}

/// Whether `SPIKEIR_CPU_KERNELS=gemm` asked for im2col and GEMM for every
/// convolution (the other kernels off, to compare).
pub(crate) fn gemm_only() -> bool {
    isa() == Isa::Off
}

/// Fewest multiply-adds per output value worth the narrow path.
const MIN_TERMS: usize = 16;

/// The CPU's vector width class, picked once: the accumulator shapes below
/// are sized for its register file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isa {
    /// AVX-512F with FMA: 32 registers of 16 lanes.
    Avx512,
    /// AVX2 with FMA: 16 registers of 8 lanes.
    Avx2,
    /// Anything else: what the compiler makes of the portable loops.
    Baseline,
    /// No narrow kernels: im2col and GEMM for every convolution.
    Off,
}

fn detected(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = std::arch::is_x86_feature_detected!("fma");
        match isa {
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f") && fma,
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && fma,
            Isa::Baseline | Isa::Off => true,
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        matches!(isa, Isa::Baseline | Isa::Off)
    }
}

/// The copy the narrow kernels run: the widest the CPU has, or the one
/// `SPIKEIR_CPU_KERNELS` names (`avx512`, `avx2`, `baseline`) where the CPU
/// has it, so every copy can be tested on one machine (`gemm`: none, every
/// convolution through im2col and GEMM). Read once.
fn isa() -> Isa {
    static CHOSEN: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let asked = std::env::var("SPIKEIR_CPU_KERNELS").ok();
        let forced = match asked.as_deref() {
            None | Some("") => None,
            Some("avx512") => Some(Isa::Avx512),
            Some("avx2") => Some(Isa::Avx2),
            Some("baseline") => Some(Isa::Baseline),
            Some("gemm") => Some(Isa::Off),
            Some(other) => {
                eprintln!("spikeir: SPIKEIR_CPU_KERNELS='{other}' is not avx512, avx2, baseline or gemm; ignored");
                None
            }
        };
        match forced {
            Some(isa) if detected(isa) => isa,
            Some(_) => {
                eprintln!("spikeir: SPIKEIR_CPU_KERNELS={} needs CPU features this machine lacks; ignored", asked.unwrap_or_default());
                widest()
            }
            None => widest(),
        }
    })
}

fn widest() -> Isa {
    [Isa::Avx512, Isa::Avx2]
        .into_iter()
        .find(|&i| detected(i))
        .unwrap_or(Isa::Baseline)
}

/// 16 f32 lanes as the kernels use them: one AVX-512 register, two AVX2
/// registers, or a plain array. Written with intrinsics where there are
/// any, so the accumulators live in registers (the compiler kept plain
/// arrays of that many lanes in memory, one scalar at a time).
trait Lanes: Copy {
    fn splat(v: f32) -> Self;
    /// Loads 16 floats from `src[..16]`.
    fn load(src: &[f32]) -> Self;
    /// `a·b + self`.
    fn madd(self, a: Self, b: Self) -> Self;
    fn store(self, dst: &mut [f32; LANES]);
}

impl Lanes for [f32; LANES] {
    #[inline(always)]
    fn splat(v: f32) -> Self {
        [v; LANES]
    }
    #[inline(always)]
    fn load(src: &[f32]) -> Self {
        src[..LANES].try_into().unwrap()
    }
    #[inline(always)]
    fn madd(mut self, a: Self, b: Self) -> Self {
        for l in 0..LANES {
            self[l] += a[l] * b[l];
        }
        self
    }
    #[inline(always)]
    fn store(self, dst: &mut [f32; LANES]) {
        *dst = self;
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Lanes, LANES};
    use std::arch::x86_64::*;

    /// One AVX-512 register. Only made inside functions compiled with
    /// `avx512f` and `fma`, on CPUs that have them.
    #[derive(Clone, Copy)]
    pub(super) struct Avx512(__m512);

    impl Lanes for Avx512 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: see the type's note.
            Avx512(unsafe { _mm512_set1_ps(v) })
        }
        #[inline(always)]
        fn load(src: &[f32]) -> Self {
            let src = &src[..LANES];
            // SAFETY: 16 floats in bounds; unaligned loads are allowed.
            Avx512(unsafe { _mm512_loadu_ps(src.as_ptr()) })
        }
        #[inline(always)]
        fn madd(self, a: Self, b: Self) -> Self {
            // SAFETY: see the type's note.
            Avx512(unsafe { _mm512_fmadd_ps(a.0, b.0, self.0) })
        }
        #[inline(always)]
        fn store(self, dst: &mut [f32; LANES]) {
            // SAFETY: 16 floats in bounds.
            unsafe { _mm512_storeu_ps(dst.as_mut_ptr(), self.0) }
        }
    }

    /// Two AVX2 registers. Only made inside functions compiled with `avx2`
    /// and `fma`, on CPUs that have them.
    #[derive(Clone, Copy)]
    pub(super) struct Avx2(__m256, __m256);

    impl Lanes for Avx2 {
        #[inline(always)]
        fn splat(v: f32) -> Self {
            // SAFETY: see the type's note.
            unsafe { Avx2(_mm256_set1_ps(v), _mm256_set1_ps(v)) }
        }
        #[inline(always)]
        fn load(src: &[f32]) -> Self {
            let src = &src[..LANES];
            // SAFETY: 16 floats in bounds; unaligned loads are allowed.
            unsafe {
                Avx2(
                    _mm256_loadu_ps(src.as_ptr()),
                    _mm256_loadu_ps(src.as_ptr().add(8)),
                )
            }
        }
        #[inline(always)]
        fn madd(self, a: Self, b: Self) -> Self {
            // SAFETY: see the type's note.
            unsafe {
                Avx2(
                    _mm256_fmadd_ps(a.0, b.0, self.0),
                    _mm256_fmadd_ps(a.1, b.1, self.1),
                )
            }
        }
        #[inline(always)]
        fn store(self, dst: &mut [f32; LANES]) {
            // SAFETY: 16 floats in bounds.
            unsafe {
                _mm256_storeu_ps(dst.as_mut_ptr(), self.0);
                _mm256_storeu_ps(dst.as_mut_ptr().add(8), self.1);
            }
        }
    }
}

/// Planes of `hp × wp` floats per (image, channel), flattened, with `tail`
/// zeros after each so that a vector load at any computed position stays
/// inside the plane.
struct Planes {
    data: Vec<f32>,
    /// Floats per plane, tail included.
    stride: usize,
}

impl Planes {
    fn plane(&self, i: usize) -> &[f32] {
        &self.data[i * self.stride..][..self.stride]
    }
}

/// The flat layout of one convolution: padded rows `wp` wide, outputs at
/// positions `0..span` (`span` a whole number of `chunk`s), and each tap's
/// offset into the padded input.
struct Layout {
    wp: usize,
    span: usize,
    offsets: Vec<usize>,
}

impl Layout {
    fn new(g: &ConvGeometry, chunk: usize) -> Self {
        let wp = g.w + 2 * g.padding[1];
        let span = (g.hout * wp).div_ceil(chunk) * chunk;
        let offsets = (0..g.kh)
            .flat_map(|i| (0..g.kw).map(move |j| i * g.dilation[0] * wp + j * g.dilation[1]))
            .collect();
        Layout { wp, span, offsets }
    }

    /// The zero-padded input planes, long enough for every tap's load at
    /// every position below `span`.
    fn pad_input(&self, g: &ConvGeometry, x: &[f32]) -> Planes {
        let stride = self.span + self.offsets.last().copied().unwrap_or(0);
        let mut data = crate::cpu::buffers::zeroed(g.n * g.cin * stride);
        let (wp, hw) = (self.wp, g.h * g.w);
        data.par_chunks_mut(stride)
            .enumerate()
            .for_each(|(plane, dst)| {
                for (r, row) in x[plane * hw..][..hw].chunks_exact(g.w).enumerate() {
                    dst[(r + g.padding[0]) * wp + g.padding[1]..][..g.w].copy_from_slice(row);
                }
            });
        Planes { data, stride }
    }
}

/// A raw output pointer that tasks on several threads carry; each task
/// writes only its own part.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: handed only to tasks writing disjoint parts while the buffer is
// borrowed by the function that spawned them.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// The pointer (a method, so closures capture the whole `SendPtr`).
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// The forward accumulator tile for `cout` output channels on `isa`: OB
/// output channels by PB vectors of 16 positions, the output channels taken
/// in passes of OB. AVX-512 holds 16 tiles' worth of registers (OB·PB ≤ 16
/// of its 32), so one pass covers up to 16 channels. AVX2 has 16 registers
/// of 8 lanes, two per vector: OB·PB ≤ 6 leaves 12 accumulators (enough to
/// hide the fused multiply-add's latency on two ports) plus the input loads
/// and the weight broadcast; a 16-channel pass there (32 registers of
/// accumulators) spilled to memory and ran at an eighth of the peak.
fn forward_tile(isa: Isa, cout: usize) -> (usize, usize) {
    match (isa, cout) {
        (Isa::Avx512, 1) => (1, 8),
        (Isa::Avx512, 2..=4) => (4, 4),
        (Isa::Avx512, 5..=8) => (8, 2),
        (Isa::Avx512, _) => (16, 1),
        (_, 1) => (1, 4),
        // Passes of 4 waste no work for 4 or 8 channels; 6 (12
        // accumulators) is the better tile from 9 channels up.
        (_, 2..=8) => (4, 1),
        _ => (6, 1),
    }
}

/// `y = conv2d(x, w) + bias` for a narrow convolution ([`applies`]); `y`
/// is `[N, C_out, H_out, W_out]` and every value is written.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    let isa = isa();
    let (ob, pb) = forward_tile(isa, g.cout);
    let passes = g.cout.div_ceil(ob);
    let layout = Layout::new(g, pb * LANES);
    let xp = layout.pad_input(g, x);
    // Weights as [pass][C_in·KH·KW][OB], zero for channels past C_out.
    let taps = g.kh * g.kw;
    let rows = g.cin * taps;
    let mut wpk = crate::cpu::buffers::zeroed(passes * rows * ob);
    for o in 0..g.cout {
        let (pass, lane) = (o / ob, o % ob);
        for r in 0..rows {
            wpk[(pass * rows + r) * ob + lane] = w[o * rows + r];
        }
    }
    let mut b0 = [0.0f32; 2 * MAX_OUT];
    if let Some(bias) = bias {
        b0[..g.cout].copy_from_slice(&bias[..g.cout]);
    }
    // Tasks of whole runs of positions: enough for every thread, whatever N.
    let runs = layout.span / (pb * LANES);
    let threads = rayon::current_num_threads();
    let per_task = (g.n * passes * runs).div_ceil(8 * threads).clamp(1, runs);
    let per_image = runs.div_ceil(per_task);
    let yp = SendPtr(y.as_mut_ptr());
    let job = Job {
        g,
        layout: &layout,
        xp: &xp,
        wpk: &wpk,
        b0: &b0,
    };
    // Task t: image, then run of positions, then pass, so that the passes
    // over the same positions follow each other (their input is in cache).
    (0..g.n * per_image * passes).into_par_iter().for_each(|t| {
        let (b, rest) = (t / (per_image * passes), t % (per_image * passes));
        let (r0, pass) = ((rest / passes) * per_task, rest % passes);
        let runs = r0..(r0 + per_task).min(runs);
        // SAFETY: the task writes the output pixels of image b in its own
        // pass of channels at its own positions only (each pixel has one
        // position).
        unsafe { job.run(isa, ob, pb, b, pass, runs, yp.get()) };
    });
    crate::cpu::buffers::recycle(xp.data);
    crate::cpu::buffers::recycle(wpk);
}

/// What every forward task shares.
struct Job<'a> {
    g: &'a ConvGeometry,
    layout: &'a Layout,
    xp: &'a Planes,
    /// `[pass][C_in·KH·KW][OB]`.
    wpk: &'a [f32],
    /// The bias of each output channel, zero past C_out.
    b0: &'a [f32; 2 * MAX_OUT],
}

impl Job<'_> {
    /// Runs runs `runs` (of PB vectors) of image `b` for the output channels
    /// of pass `pass`, with the accumulator shape `(ob, pb)`, in the copy
    /// compiled for `isa`.
    ///
    /// # Safety
    /// `y` must point at the `[N, C_out, H_out, W_out]` output, and no other
    /// thread may write these positions of these channels of image `b`
    /// meanwhile.
    #[allow(clippy::too_many_arguments)]
    unsafe fn run(
        &self,
        isa: Isa,
        ob: usize,
        pb: usize,
        b: usize,
        pass: usize,
        runs: std::ops::Range<usize>,
        y: *mut f32,
    ) {
        macro_rules! go {
            ($ob:literal, $pb:literal) => {
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => forward_avx512::<$ob, $pb>(self, b, pass, runs, y),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => forward_avx2::<$ob, $pb>(self, b, pass, runs, y),
                    _ => forward_runs::<[f32; LANES], $ob, $pb>(self, b, pass, runs, y),
                }
            };
        }
        match (ob, pb) {
            (1, 8) => go!(1, 8),
            (1, _) => go!(1, 4),
            (4, 4) => go!(4, 4),
            (4, _) => go!(4, 1),
            (6, _) => go!(6, 1),
            (8, _) => go!(8, 2),
            _ => go!(16, 1),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn forward_avx512<const OB: usize, const PB: usize>(
    j: &Job,
    b: usize,
    pass: usize,
    runs: std::ops::Range<usize>,
    y: *mut f32,
) {
    forward_runs::<x86::Avx512, OB, PB>(j, b, pass, runs, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn forward_avx2<const OB: usize, const PB: usize>(
    j: &Job,
    b: usize,
    pass: usize,
    runs: std::ops::Range<usize>,
    y: *mut f32,
) {
    forward_runs::<x86::Avx2, OB, PB>(j, b, pass, runs, y)
}

/// The forward kernel: for each run of PB vectors of positions, the OB × PB
/// vectors of sums over input channels and taps in registers, then the
/// positions that are output pixels stored, for the OB output channels of
/// pass `pass` (those below C_out).
#[inline(always)]
unsafe fn forward_runs<V: Lanes, const OB: usize, const PB: usize>(
    j: &Job,
    b: usize,
    pass: usize,
    runs: std::ops::Range<usize>,
    y: *mut f32,
) {
    let g = j.g;
    let (wp, taps) = (j.layout.wp, g.kh * g.kw);
    let offsets = &j.layout.offsets[..taps];
    let o0 = pass * OB;
    let wpass = &j.wpk[pass * g.cin * taps * OB..][..g.cin * taps * OB];
    let mut out = [0.0f32; LANES];
    for run in runs {
        let k0 = run * PB * LANES;
        let mut acc: [[V; PB]; OB] = std::array::from_fn(|o| [V::splat(j.b0[o0 + o]); PB]);
        for c in 0..g.cin {
            let plane = &j.xp.plane(b * g.cin + c)[k0..];
            let wc = &wpass[c * taps * OB..][..taps * OB];
            for (t, &off) in offsets.iter().enumerate() {
                let wv: &[f32; OB] = wc[t * OB..][..OB].try_into().unwrap();
                let xs = &plane[off..][..PB * LANES];
                let xv: [V; PB] = std::array::from_fn(|p| V::load(&xs[p * LANES..]));
                for o in 0..OB {
                    let w = V::splat(wv[o]);
                    for p in 0..PB {
                        acc[o][p] = acc[o][p].madd(w, xv[p]);
                    }
                }
            }
        }
        // Position k is output pixel (k / wp, k % wp) where k % wp < W_out.
        for (o, a) in acc.iter().enumerate().take(g.cout.saturating_sub(o0)) {
            let dst = y.add((b * g.cout + o0 + o) * g.hout * g.wout);
            for (p, v) in a.iter().enumerate() {
                v.store(&mut out);
                let k = k0 + p * LANES;
                let (mut oh, mut ow) = (k / wp, k % wp);
                let mut l = 0;
                while l < LANES && oh < g.hout {
                    let n = (LANES - l).min(wp - ow);
                    if ow < g.wout {
                        let m = n.min(g.wout - ow);
                        std::ptr::copy_nonoverlapping(
                            out.as_ptr().add(l),
                            dst.add(oh * g.wout + ow),
                            m,
                        );
                    }
                    l += n;
                    oh += 1;
                    ow = 0;
                }
            }
        }
    }
}

/// The gradient of `Σ dy ⊙ conv2d(x, w)` with respect to `w` for a narrow
/// convolution ([`applies`]): `[C_out, C_in, KH, KW]`.
pub(crate) fn backward_weight(g: &ConvGeometry, dy: &[f32], x: &[f32]) -> Vec<f32> {
    let isa = isa();
    // Output channels (OB) and kernel columns (J) per pass: 24 of the 32
    // AVX-512 registers; 12 of AVX2's 16 (two per vector). Each step loads
    // J input and OB output-gradient vectors for OB·J multiply-adds, so
    // OB = 2, J = 3 (10 loads for 12) beats OB = 4, J = 1 (10 loads for 8),
    // which ran at the load ports' limit.
    let (ob, j) = match isa {
        Isa::Avx512 if g.kw.is_multiple_of(3) => (8, 3),
        Isa::Avx512 => (8, 1),
        _ if g.kw.is_multiple_of(3) => (2, 3),
        _ => (4, 1),
    };
    let ob = if g.cout <= 4 && isa == Isa::Avx512 {
        4
    } else {
        ob
    };
    let layout = Layout::new(g, LANES);
    // The output gradient in the same flat layout, zero at the positions
    // that are no output pixel (so they add nothing) and over the channels
    // that round C_out up to a whole pass.
    let cpad = g.cout.div_ceil(ob) * ob;
    let span = layout.span;
    let mut dyp = crate::cpu::buffers::zeroed(g.n * cpad * span);
    dyp.par_chunks_mut(cpad * span)
        .enumerate()
        .for_each(|(b, img)| {
            for o in 0..g.cout {
                let src = &dy[(b * g.cout + o) * g.hout * g.wout..][..g.hout * g.wout];
                for (r, row) in src.chunks_exact(g.wout).enumerate() {
                    img[o * span + r * layout.wp..][..g.wout].copy_from_slice(row);
                }
            }
        });
    let xp = layout.pad_input(g, x);
    let chunks = span.div_ceil(GRAD_SPAN);
    let w_len = g.cout * g.cin * g.kh * g.kw;
    let grad = GradJob {
        g,
        layout: &layout,
        xp: &xp,
        dyp: &dyp,
        cpad,
    };
    let partials: Vec<Vec<f32>> = (0..g.n * chunks)
        .into_par_iter()
        .map(|t| {
            let (b, k0) = (t / chunks, (t % chunks) * GRAD_SPAN);
            let mut part = crate::cpu::buffers::zeroed(w_len);
            grad.run(isa, ob, j, b, k0..(k0 + GRAD_SPAN).min(span), &mut part);
            part
        })
        .collect();
    let mut parts = partials.into_iter();
    let mut dw = parts
        .next()
        .unwrap_or_else(|| crate::cpu::buffers::zeroed(w_len));
    for part in parts {
        super::conv::add_to(&mut dw, &part);
        crate::cpu::buffers::recycle(part);
    }
    crate::cpu::buffers::recycle(dyp);
    crate::cpu::buffers::recycle(xp.data);
    dw
}

/// What every weight-gradient task shares.
struct GradJob<'a> {
    g: &'a ConvGeometry,
    layout: &'a Layout,
    xp: &'a Planes,
    /// `[N, cpad, span]`.
    dyp: &'a [f32],
    cpad: usize,
}

impl GradJob<'_> {
    fn run(
        &self,
        isa: Isa,
        ob: usize,
        j: usize,
        b: usize,
        span: std::ops::Range<usize>,
        part: &mut [f32],
    ) {
        macro_rules! go {
            ($ob:literal, $j:literal) => {
                match isa {
                    // SAFETY: `isa` names a copy only where the CPU has its features.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { grad_avx512::<$ob, $j>(self, b, span, part) },
                    // SAFETY: as above.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => unsafe { grad_avx2::<$ob, $j>(self, b, span, part) },
                    _ => grad_span::<[f32; LANES], $ob, $j>(self, b, span, part),
                }
            };
        }
        match (ob, j) {
            (8, 3) => go!(8, 3),
            (8, _) => go!(8, 1),
            (2, 3) => go!(2, 3),
            _ => go!(4, 1),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn grad_avx512<const OB: usize, const J: usize>(
    job: &GradJob,
    b: usize,
    span: std::ops::Range<usize>,
    part: &mut [f32],
) {
    grad_span::<x86::Avx512, OB, J>(job, b, span, part)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,avx2,fma")]
unsafe fn grad_avx2<const OB: usize, const J: usize>(
    job: &GradJob,
    b: usize,
    span: std::ops::Range<usize>,
    part: &mut [f32],
) {
    grad_span::<x86::Avx2, OB, J>(job, b, span, part)
}

/// The weight-gradient kernel over positions `span` of image `b`: per input
/// channel, kernel row, run of J kernel columns and pass of OB output
/// channels, OB × J vectors of partial sums of `dy[o] · x[c]` shifted by
/// each tap's offset, then summed across lanes into `part`.
#[inline(always)]
fn grad_span<V: Lanes, const OB: usize, const J: usize>(
    job: &GradJob,
    b: usize,
    span: std::ops::Range<usize>,
    part: &mut [f32],
) {
    let g = job.g;
    let (taps, total) = (g.kh * g.kw, job.layout.span);
    let len = span.len();
    let mut lanes = [0.0f32; LANES];
    for c in 0..g.cin {
        let plane = &job.xp.plane(b * g.cin + c)[span.start..];
        for i in 0..g.kh {
            for j0 in (0..g.kw).step_by(J) {
                let xs: [&[f32]; J] = std::array::from_fn(|jj| {
                    &plane[job.layout.offsets[i * g.kw + (j0 + jj).min(g.kw - 1)]..][..len]
                });
                for o0 in (0..job.cpad).step_by(OB) {
                    let dys: [&[f32]; OB] = std::array::from_fn(|o| {
                        &job.dyp[(b * job.cpad + o0 + o) * total + span.start..][..len]
                    });
                    let mut acc = [[V::splat(0.0); J]; OB];
                    for q in (0..len).step_by(LANES) {
                        let xv: [V; J] = std::array::from_fn(|jj| V::load(&xs[jj][q..]));
                        for o in 0..OB {
                            let dv = V::load(&dys[o][q..]);
                            for jj in 0..J {
                                acc[o][jj] = acc[o][jj].madd(dv, xv[jj]);
                            }
                        }
                    }
                    for (o, a) in acc.iter().enumerate() {
                        if o0 + o >= g.cout {
                            break;
                        }
                        for (jj, v) in a.iter().enumerate().take(g.kw - j0) {
                            v.store(&mut lanes);
                            part[((o0 + o) * g.cin + c) * taps + i * g.kw + j0 + jj] +=
                                lanes.iter().sum::<f32>();
                        }
                    }
                }
            }
        }
    }
}
