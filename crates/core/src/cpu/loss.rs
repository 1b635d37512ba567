//! Losses between a prediction and a target of the same shape, and their
//! gradients with respect to the prediction, on the CPU: the semantics of
//! `ops::loss`. Each loss returns its scalar value (the op's `[1]` tensor);
//! each backward takes the upstream scalar gradient `grad`.
//!
//! L1, MSE and Charbonnier are means of a function of d = ŷ − y, evaluated in
//! f32 like the shaders and summed in f64. The FFT loss takes `[..., H, W]`
//! and the unnormalised 2-D DFT F of each H×W plane (as torch.fft.fft2), here
//! by rustfft in f64: rows, then a transpose and the columns.

use std::sync::{Arc, Mutex, OnceLock};

use rayon::prelude::*;
use rustfft::num_complex::Complex;
use rustfft::{Fft, FftPlanner};

use crate::ops::loss::FFT_LOSS_EPS;

/// Below this many values a loop runs on the calling thread.
const PARALLEL_MIN: usize = 32 * 1024;
/// Values per task of the pointwise losses.
const PIECE: usize = 16 * 1024;

/// Σ f(ŷ − y) over one piece in f64, in eight lanes so that the additions
/// vectorise instead of forming one serial chain.
#[inline(always)]
fn piece_sum(pred: &[f32], target: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0f64; 8];
    let (p8, t8) = (pred.chunks_exact(8), target.chunks_exact(8));
    let tail: f64 = p8
        .remainder()
        .iter()
        .zip(t8.remainder())
        .map(|(&a, &b)| f(a - b) as f64)
        .sum();
    for (p, t) in p8.zip(t8) {
        for l in 0..8 {
            lanes[l] += f(p[l] - t[l]) as f64;
        }
    }
    lanes.iter().sum::<f64>() + tail
}

/// mean f(ŷ − y) over all values, f evaluated in f32 and summed in f64 per
/// piece, the pieces added in order (independent of the thread count).
fn mean_of(pred: &[f32], target: &[f32], f: impl Fn(f32) -> f32 + Sync + Copy) -> f32 {
    let partials: Vec<f64> = if pred.len() >= PARALLEL_MIN {
        pred.par_chunks(PIECE)
            .zip(target.par_chunks(PIECE))
            .map(|(p, t)| piece_sum(p, t, f))
            .collect()
    } else {
        pred.chunks(PIECE)
            .zip(target.chunks(PIECE))
            .map(|(p, t)| piece_sum(p, t, f))
            .collect()
    };
    (partials.iter().sum::<f64>() / pred.len() as f64) as f32
}

/// gx = scale·f'(ŷ − y) over one piece.
#[inline(always)]
fn piece_backward(
    gx: &mut [f32],
    pred: &[f32],
    target: &[f32],
    scale: f32,
    df: impl Fn(f32) -> f32,
) {
    for ((o, &a), &b) in gx.iter_mut().zip(pred).zip(target) {
        *o = scale * df(a - b);
    }
}

/// gx = grad·(1/n)·f'(ŷ − y) in f32, in the shader's order.
fn pointwise_backward(
    grad: f32,
    pred: &[f32],
    target: &[f32],
    df: impl Fn(f32) -> f32 + Sync + Copy,
) -> Vec<f32> {
    let scale = grad * (1.0 / pred.len() as f64) as f32;
    let mut gx = crate::cpu::buffers::scratch(pred.len());
    if pred.len() >= PARALLEL_MIN {
        gx.par_chunks_mut(PIECE)
            .zip(pred.par_chunks(PIECE))
            .zip(target.par_chunks(PIECE))
            .for_each(|((o, p), t)| piece_backward(o, p, t, scale, df));
    } else {
        piece_backward(&mut gx, pred, target, scale, df);
    }
    gx
}

/// WGSL's sign: 0 at ±0 (f32::signum would give ±1), the subgradient of |d|.
fn sign(d: f32) -> f32 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// mean |ŷ − y|.
pub fn l1_loss(pred: &[f32], target: &[f32]) -> f32 {
    mean_of(pred, target, f32::abs)
}

/// grad·sign(ŷ − y)/n, with 0 where ŷ = y.
pub fn l1_loss_backward(grad: f32, pred: &[f32], target: &[f32]) -> Vec<f32> {
    pointwise_backward(grad, pred, target, sign)
}

/// mean (ŷ − y)².
pub fn mse_loss(pred: &[f32], target: &[f32]) -> f32 {
    mean_of(pred, target, |d| d * d)
}

/// grad·2(ŷ − y)/n.
pub fn mse_loss_backward(grad: f32, pred: &[f32], target: &[f32]) -> Vec<f32> {
    pointwise_backward(grad, pred, target, |d| 2.0 * d)
}

/// mean √((ŷ − y)² + ε²).
pub fn charbonnier_loss(pred: &[f32], target: &[f32], eps: f32) -> f32 {
    mean_of(pred, target, |d| (d * d + eps * eps).sqrt())
}

/// grad·(ŷ − y)/√((ŷ − y)² + ε²)/n.
pub fn charbonnier_loss_backward(grad: f32, pred: &[f32], target: &[f32], eps: f32) -> Vec<f32> {
    pointwise_backward(grad, pred, target, |d| d / (d * d + eps * eps).sqrt())
}

type C64 = Complex<f64>;

/// One FFT plan per (length, direction), cached across calls: planning a
/// size that is not a product of small primes costs far more than running it.
fn plan(len: usize, inverse: bool) -> Arc<dyn Fft<f64>> {
    static PLANNER: OnceLock<Mutex<FftPlanner<f64>>> = OnceLock::new();
    let mut planner = PLANNER
        .get_or_init(|| Mutex::new(FftPlanner::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if inverse {
        planner.plan_fft_inverse(len)
    } else {
        planner.plan_fft_forward(len)
    }
}

/// The forward transforms of one plane shape: along W (rows) and along H
/// (columns).
struct Plans {
    h: usize,
    w: usize,
    rows: Arc<dyn Fft<f64>>,
    cols: Arc<dyn Fft<f64>>,
}

impl Plans {
    fn new(h: usize, w: usize) -> Plans {
        Plans {
            h,
            w,
            rows: plan(w, false),
            cols: plan(h, false),
        }
    }
}

/// Two plane buffers and FFT scratch, reused across the planes of a task.
struct Work {
    a: Vec<C64>,
    b: Vec<C64>,
    scratch: Vec<C64>,
}

impl Work {
    fn new(hw: usize) -> Work {
        Work {
            a: vec![C64::default(); hw],
            b: vec![C64::default(); hw],
            scratch: Vec::new(),
        }
    }
}

/// Transforms every row of `buf` (rows of `fft.len()`). With `parallel`, row
/// blocks run on rayon threads, each with its own scratch.
fn fft_rows(fft: &Arc<dyn Fft<f64>>, buf: &mut [C64], scratch: &mut Vec<C64>, parallel: bool) {
    let need = fft.get_inplace_scratch_len();
    if parallel {
        let rows_per_task = (PIECE / fft.len()).max(1);
        buf.par_chunks_mut(rows_per_task * fft.len()).for_each_init(
            || vec![C64::default(); need],
            |s, rows| fft.process_with_scratch(rows, s),
        );
    } else {
        if scratch.len() < need {
            scratch.resize(need, C64::default());
        }
        fft.process_with_scratch(buf, &mut scratch[..need]);
    }
}

/// dst `[cols, rows]` = srcᵀ for src `[rows, cols]`.
fn transpose(src: &[C64], dst: &mut [C64], rows: usize, cols: usize, parallel: bool) {
    let fill = |(c, out): (usize, &mut [C64])| {
        for (r, o) in out.iter_mut().enumerate() {
            *o = src[r * cols + c];
        }
    };
    if parallel {
        dst.par_chunks_mut(rows).enumerate().for_each(fill);
    } else {
        dst.chunks_mut(rows).enumerate().for_each(fill);
    }
}

/// F(ŷ − y) of one plane, left transposed in `work.b` as `[W, H]`
/// (frequency (u, v) at v·H + u).
fn dft_plane(plans: &Plans, pred: &[f32], target: &[f32], work: &mut Work, parallel: bool) {
    for ((a, &p), &t) in work.a.iter_mut().zip(pred).zip(target) {
        *a = C64::new(p as f64 - t as f64, 0.0);
    }
    fft_rows(&plans.rows, &mut work.a, &mut work.scratch, parallel);
    transpose(&work.a, &mut work.b, plans.h, plans.w, parallel);
    fft_rows(&plans.cols, &mut work.b, &mut work.scratch, parallel);
}

/// √(re² + im² + ε), the modulus the FFT loss averages.
fn modulus(f: C64) -> f64 {
    (f.re * f.re + f.im * f.im + FFT_LOSS_EPS as f64).sqrt()
}

/// How the planes are spread over threads: whole planes per task when there
/// are enough of them, otherwise the rows of each plane.
fn fft_parallelism(planes: usize, numel: usize) -> (bool, bool) {
    let big = numel >= PARALLEL_MIN;
    let outer = big && planes >= rayon::current_num_threads();
    (outer, big && !outer)
}

/// (planes, H, W) of `[..., H, W]`.
fn fft_dims(shape: &[usize]) -> (usize, usize, usize) {
    let (h, w) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    (shape.iter().product::<usize>() / (h * w), h, w)
}

/// FFT loss on images `[..., H, W]`: the mean over all N·C·H·W frequencies of
/// |F(ŷ) − F(y)| = |F(ŷ − y)|, F the unnormalised 2-D DFT of each H×W plane,
/// the modulus taken as √(re² + im² + [`FFT_LOSS_EPS`]).
pub fn fft_loss(pred: &[f32], target: &[f32], shape: &[usize]) -> f32 {
    let (planes, h, w) = fft_dims(shape);
    let hw = h * w;
    let plans = Plans::new(h, w);
    let (outer, inner) = fft_parallelism(planes, pred.len());
    let plane_sum = |work: &mut Work, (p, t): (&[f32], &[f32])| -> f64 {
        dft_plane(&plans, p, t, work, inner);
        work.b.iter().map(|&f| modulus(f)).sum()
    };
    let sums: Vec<f64> = if outer {
        pred.par_chunks(hw)
            .zip(target.par_chunks(hw))
            .map_init(|| Work::new(hw), plane_sum)
            .collect()
    } else {
        let mut work = Work::new(hw);
        pred.chunks(hw)
            .zip(target.chunks(hw))
            .map(|pt| plane_sum(&mut work, pt))
            .collect()
    };
    (sums.iter().sum::<f64>() / pred.len() as f64) as f32
}

/// Gradient of [`fft_loss`] with respect to the prediction. With
/// G = F(d)/|F(d)| and E the DFT matrices (E[a, b] = e^(−2πi·ab/L)),
/// ∂|F_uv|/∂d_xy = Re(conj(G_uv)·E_H[u, x]·E_W[y, v]), so
/// ∂L/∂d = grad/n·Re(Σ_uv G_uv·e^(+2πi(ux/H + vy/W))): the real part of the
/// unnormalised inverse DFT of G, scaled by grad/n. F is recomputed, not saved.
pub fn fft_loss_backward(grad: f32, pred: &[f32], target: &[f32], shape: &[usize]) -> Vec<f32> {
    let (planes, h, w) = fft_dims(shape);
    let hw = h * w;
    let plans = Plans::new(h, w);
    let (inv_rows, inv_cols) = (plan(w, true), plan(h, true));
    let (outer, inner) = fft_parallelism(planes, pred.len());
    let scale = grad as f64 / pred.len() as f64;
    let plane_grad = |work: &mut Work, ((gx, p), t): ((&mut [f32], &[f32]), &[f32])| {
        dft_plane(&plans, p, t, work, inner);
        for f in work.b.iter_mut() {
            *f *= scale / modulus(*f);
        }
        // b holds Gᵀ [W, H]: inverse along H, transpose back, inverse along W.
        fft_rows(&inv_cols, &mut work.b, &mut work.scratch, inner);
        transpose(&work.b, &mut work.a, w, h, inner);
        fft_rows(&inv_rows, &mut work.a, &mut work.scratch, inner);
        for (o, a) in gx.iter_mut().zip(&work.a) {
            *o = a.re as f32;
        }
    };
    let mut gx = crate::cpu::buffers::scratch(pred.len());
    if outer {
        gx.par_chunks_mut(hw)
            .zip(pred.par_chunks(hw))
            .zip(target.par_chunks(hw))
            .for_each_init(|| Work::new(hw), plane_grad);
    } else {
        let mut work = Work::new(hw);
        gx.chunks_mut(hw)
            .zip(pred.chunks(hw))
            .zip(target.chunks(hw))
            .for_each(|args| plane_grad(&mut work, args));
    }
    gx
}
