//! Batch norm (training, evaluation, running statistics) and layer norm over
//! channels, forward and backward, on the CPU: the semantics of
//! `ops::norm` and its shaders, with every sum accumulated in f64 (batch
//! norm's in f32 lanes over blocks of `BLOCK` values first, see [`moments`]).
//!
//! Inputs are `[N, C, ...]`, `hw` the product of the trailing dimensions, so
//! the values are N·C rows of hw contiguous values, row r = n·C + c. Batch
//! norm reduces each channel over N·hw values (per-channel sums are split
//! into tasks of about `PIECE` values and combined in a fixed order, so the
//! result does not depend on the thread count); layer norm reduces each
//! position (n, p) over its C values, strided by hw.

use rayon::prelude::*;

use super::conv::avx2_dispatch;

/// Below this many values a loop runs on the calling thread.
const PARALLEL_MIN: usize = 32 * 1024;
/// Values per task: large enough to amortise rayon's scheduling, small
/// enough to balance two to a few dozen threads.
const PIECE: usize = 16 * 1024;

/// (N, C, hw) of a shape `[N, C, ...]`.
fn dims(shape: &[usize]) -> (usize, usize, usize) {
    (shape[0], shape[1], shape[2..].iter().product())
}

/// The two components of f(i) summed over `i` in `lo..hi` in f64: in four
/// lanes each, so that the additions do not form one serial dependency
/// chain, or plainly for rows too short for lanes to pay.
#[inline(always)]
fn sum2(lo: usize, hi: usize, f: impl Fn(usize) -> (f64, f64)) -> [f64; 2] {
    if hi - lo < 8 {
        let mut acc = [0f64; 2];
        for i in lo..hi {
            let (u, v) = f(i);
            acc[0] += u;
            acc[1] += v;
        }
        return acc;
    }
    let mut a = [0f64; 4];
    let mut b = [0f64; 4];
    let body = lo + (hi - lo) / 4 * 4;
    for i in (lo..body).step_by(4) {
        for l in 0..4 {
            let (u, v) = f(i + l);
            a[l] += u;
            b[l] += v;
        }
    }
    for i in body..hi {
        let (u, v) = f(i);
        a[0] += u;
        b[0] += v;
    }
    [(a[0] + a[1]) + (a[2] + a[3]), (b[0] + b[1]) + (b[2] + b[3])]
}

/// Values summed in f32 lanes before they join a channel's f64 total: with
/// 256 values a block (32 per lane) the f32 rounding stays near 1e-6 of the
/// block's sum, and the lanes vectorise. Summing each value in f64 was most
/// of batch norm's time, a fifth of a student's training step.
const BLOCK: usize = 256;
const LANES: usize = 8;

fn lane_total(a: &[f32; LANES]) -> f64 {
    a.iter().map(|&v| v as f64).sum()
}

avx2_dispatch! {
    /// (Σ d², Σ d) over the values of `x` with d = x − k.
    fn moments => moments_body(x: &[f32], k: f32) -> [f64; 2]
}

#[inline(always)]
fn moments_body(x: &[f32], k: f32) -> [f64; 2] {
    let mut total = [0f64; 2];
    for block in x.chunks(BLOCK) {
        let (mut sq, mut lin) = ([0f32; LANES], [0f32; LANES]);
        let mut lanes = block.chunks_exact(LANES);
        for v in &mut lanes {
            for l in 0..LANES {
                let d = v[l] - k;
                sq[l] += d * d;
                lin[l] += d;
            }
        }
        for &v in lanes.remainder() {
            let d = v - k;
            sq[0] += d * d;
            lin[0] += d;
        }
        total[0] += lane_total(&sq);
        total[1] += lane_total(&lin);
    }
    total
}

avx2_dispatch! {
    /// (Σ g, Σ g·(x − m)) over paired values of `g` and `x`.
    fn gradient_moments => gradient_moments_body(g: &[f32], x: &[f32], m: f32) -> [f64; 2]
}

#[inline(always)]
fn gradient_moments_body(g: &[f32], x: &[f32], m: f32) -> [f64; 2] {
    let mut total = [0f64; 2];
    for (gb, xb) in g.chunks(BLOCK).zip(x.chunks(BLOCK)) {
        let (mut sg, mut sgd) = ([0f32; LANES], [0f32; LANES]);
        let mut lanes = gb.chunks_exact(LANES).zip(xb.chunks_exact(LANES));
        for (gv, xv) in &mut lanes {
            for l in 0..LANES {
                sg[l] += gv[l];
                sgd[l] += gv[l] * (xv[l] - m);
            }
        }
        let done = gb.len() / LANES * LANES;
        for (&gv, &xv) in gb[done..].iter().zip(&xb[done..]) {
            sg[0] += gv;
            sgd[0] += gv * (xv - m);
        }
        total[0] += lane_total(&sg);
        total[1] += lane_total(&sgd);
    }
    total
}

/// Two sums per channel over the N·hw values of `[N, C, hw]`: the sums of
/// `f(n, channel, lo, hi)`, the two sums over the values lo..hi of row
/// n·C + channel, over the pieces of the channel's rows. Tasks cover either a block of
/// whole samples (small hw) or a piece of one row (large hw); their
/// per-channel partials are added in task order, so the result does not
/// depend on the thread count.
fn channel_sums<F>(n: usize, c: usize, hw: usize, f: F) -> Vec<[f64; 2]>
where
    F: Fn(usize, usize, usize, usize) -> [f64; 2] + Sync,
{
    let (samples_per_task, pieces) = if hw >= PIECE {
        (1, hw.div_ceil(PIECE))
    } else {
        ((PIECE / (c * hw).max(1)).max(1), 1)
    };
    let blocks = n.div_ceil(samples_per_task);
    let task = |t: usize| -> Vec<[f64; 2]> {
        let (block, piece) = (t / pieces, t % pieces);
        let (p0, p1) = (piece * PIECE, ((piece + 1) * PIECE).min(hw));
        let n1 = ((block + 1) * samples_per_task).min(n);
        let mut acc = vec![[0f64; 2]; c];
        for s in block * samples_per_task..n1 {
            for (ch, a) in acc.iter_mut().enumerate() {
                let row = s * c + ch;
                let [u, v] = f(s, ch, row * hw + p0, row * hw + p1);
                a[0] += u;
                a[1] += v;
            }
        }
        acc
    };
    let tasks = blocks * pieces;
    let partials: Vec<Vec<[f64; 2]>> = if n * c * hw >= PARALLEL_MIN {
        (0..tasks).into_par_iter().map(task).collect()
    } else {
        (0..tasks).map(task).collect()
    };
    let mut total = vec![[0f64; 2]; c];
    for p in &partials {
        for (t, v) in total.iter_mut().zip(p) {
            t[0] += v[0];
            t[1] += v[1];
        }
    }
    total
}

/// Calls `f(n, ch, lo, segment)` over `out`, seen as rows of `row_len` in
/// groups of `c` (row = n·c + ch), in chunks of about `chunk` values split at
/// row boundaries: `segment` is `out[lo..lo + segment.len()]` and lies inside
/// row (n, ch). The row is tracked, not divided out, per segment: with short
/// rows there is a segment per few values.
fn for_segments<T, F>(
    out: &mut [T],
    (c, row_len): (usize, usize),
    chunk: usize,
    parallel: bool,
    f: F,
) where
    T: Send,
    F: Fn(usize, usize, usize, &mut [T]) + Sync,
{
    let run = |(k, part): (usize, &mut [T])| {
        let start = k * chunk;
        let row = start / row_len;
        let (mut n, mut ch) = (row / c, row % c);
        let mut row_end = (row + 1) * row_len - start;
        let mut pos = 0;
        while pos < part.len() {
            let end = row_end.min(part.len());
            f(n, ch, start + pos, &mut part[pos..end]);
            pos = end;
            row_end += row_len;
            ch += 1;
            if ch == c {
                (n, ch) = (n + 1, 0);
            }
        }
    };
    if parallel {
        out.par_chunks_mut(chunk).enumerate().for_each(run);
    } else {
        out.chunks_mut(chunk).enumerate().for_each(run);
    }
}

avx2_dispatch! {
    /// `out[i] = (x[i] − m)·s·w + b` with `[m, s, w, b]` one channel's values.
    fn apply_row => apply_row_body(out: &mut [f32], x: &[f32], msw_b: [f32; 4])
}

#[inline(always)]
fn apply_row_body(out: &mut [f32], x: &[f32], [m, s, w, b]: [f32; 4]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = (v - m) * s * w + b;
    }
}

/// y = (x − mean[c])·inv[c]·weight[c] + bias[c], in f32 in the shader's order.
fn bn_apply(
    x: &[f32],
    (c, hw): (usize, usize),
    mean: &[f32],
    inv: &[f32],
    weight: &[f32],
    bias: &[f32],
) -> Vec<f32> {
    let mut y = crate::cpu::buffers::scratch(x.len());
    for_segments(
        &mut y,
        (c, hw),
        PIECE,
        x.len() >= PARALLEL_MIN,
        |_, ch, lo, out| apply_row(out, &x[lo..], [mean[ch], inv[ch], weight[ch], bias[ch]]),
    );
    y
}

/// Batch norm in training mode over `x` of shape `[N, C, ...]`: per-channel
/// mean and biased variance over the N·hw values, then
/// y = (x − mean)·invstd·weight + bias with invstd = 1/√(var + eps).
/// Returns (y, mean `[C]`, invstd `[C]`).
///
/// One pass of sums ([`moments`]) over d = x − K, with K the mean of the
/// channel's row in sample 0 (1/N of the values): variance Σd²/M − (Σd/M)²
/// and mean = K + Σd/M. Shifted by a value near the mean, the sum of squares
/// does not cancel against the squared mean (the GPU's two passes shift by
/// the mean itself; the two agree to rounding). A full pass for the mean
/// was a quarter of the memory traffic of a forward bound by it.
pub fn batch_norm_train(
    x: &[f32],
    shape: &[usize],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, c, hw) = dims(shape);
    let count = (n * hw) as f64;
    // K per channel: its row of sample 0 (0 when there are no values).
    let mean0: Vec<f64> = (0..c)
        .map(|ch| match x.get(ch * hw..(ch + 1) * hw) {
            Some(row) if hw > 0 => sum2(0, hw, |i| (row[i] as f64, 0.0))[0] / hw as f64,
            _ => 0.0,
        })
        .collect();
    let shift: Vec<f32> = mean0.iter().map(|&k| k as f32).collect();
    let second = channel_sums(n, c, hw, |_, ch, lo, hi| moments(&x[lo..hi], shift[ch]));
    let mut mean = crate::cpu::buffers::zeroed(c);
    let mut invstd = crate::cpu::buffers::zeroed(c);
    for ch in 0..c {
        let [sq, lin] = second[ch];
        let dm = lin / count;
        let var = (sq / count - dm * dm).max(0.0);
        mean[ch] = (shift[ch] as f64 + dm) as f32;
        invstd[ch] = (1.0 / (var + eps as f64).sqrt()) as f32;
    }
    let y = bn_apply(x, (c, hw), &mean, &invstd, weight, bias);
    (y, mean, invstd)
}

/// Batch norm in evaluation mode:
/// y = (x − running_mean)/√(running_var + eps)·weight + bias.
pub fn batch_norm_eval(
    x: &[f32],
    shape: &[usize],
    running_mean: &[f32],
    running_var: &[f32],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) -> Vec<f32> {
    let (_, c, hw) = dims(shape);
    let inv: Vec<f32> = running_var
        .iter()
        .map(|&v| 1.0 / (v + eps).sqrt())
        .collect();
    bn_apply(x, (c, hw), running_mean, &inv, weight, bias)
}

avx2_dispatch! {
    /// One channel's piece of batch norm's input gradient:
    /// `out = scale·(g − mean_g − x̂·mean_gx)` with x̂ = (x − m)·s.
    fn grad_row => grad_row_body(out: &mut [f32], g: &[f32], x: &[f32], k: [f32; 5])
}

#[inline(always)]
fn grad_row_body(out: &mut [f32], g: &[f32], x: &[f32], [m, s, scale, mean_g, mean_gx]: [f32; 5]) {
    for ((o, &g), &v) in out.iter_mut().zip(g).zip(x) {
        let xh = (v - m) * s;
        *o = scale * (g - mean_g - xh * mean_gx);
    }
}

/// Backward of [`batch_norm_train`] with x̂ = (x − mean)·invstd and M = N·hw:
/// grad_bias = Σ g, grad_weight = Σ g·x̂ per channel, and
/// grad_x = weight·invstd·(g − Σg/M − x̂·Σ(g·x̂)/M).
/// Returns (grad_x, grad_weight `[C]`, grad_bias `[C]`).
pub fn batch_norm_backward(
    grad_out: &[f32],
    x: &[f32],
    shape: &[usize],
    weight: &[f32],
    mean: &[f32],
    invstd: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, c, hw) = dims(shape);
    let sums = channel_sums(n, c, hw, |_, ch, lo, hi| {
        let [sg, sgd] = gradient_moments(&grad_out[lo..hi], &x[lo..hi], mean[ch]);
        [sg, sgd * invstd[ch] as f64]
    });
    let grad_bias: Vec<f32> = sums.iter().map(|s| s[0] as f32).collect();
    let grad_weight: Vec<f32> = sums.iter().map(|s| s[1] as f32).collect();
    let count = (n * hw) as f64;
    let mut gx = crate::cpu::buffers::scratch(x.len());
    for_segments(
        &mut gx,
        (c, hw),
        PIECE,
        x.len() >= PARALLEL_MIN,
        |_, ch, lo, out| {
            let (m, s) = (mean[ch], invstd[ch]);
            let scale = weight[ch] * s;
            let mean_g = (sums[ch][0] / count) as f32;
            let mean_gx = (sums[ch][1] / count) as f32;
            grad_row(
                out,
                &grad_out[lo..],
                &x[lo..],
                [m, s, scale, mean_g, mean_gx],
            );
        },
    );
    (gx, grad_weight, grad_bias)
}

/// Updates the running statistics in place (PyTorch's rule):
/// running_mean ← (1 − momentum)·running_mean + momentum·mean,
/// running_var ← (1 − momentum)·running_var + momentum·var·count/(count − 1),
/// with the biased batch variance recovered as var = max(1/invstd² − eps, 0).
/// `count` (≥ 2) is the number of values per channel behind the statistics.
pub fn batch_norm_update_running(
    running_mean: &mut [f32],
    running_var: &mut [f32],
    mean: &[f32],
    invstd: &[f32],
    count: usize,
    momentum: f32,
    eps: f32,
) {
    let unbias = (count as f64 / (count - 1) as f64) as f32;
    for (ch, (rm, rv)) in running_mean
        .iter_mut()
        .zip(running_var.iter_mut())
        .enumerate()
    {
        let inv = invstd[ch];
        let var = (1.0 / (inv * inv) - eps).max(0.0);
        *rm = (1.0 - momentum) * *rm + momentum * mean[ch];
        *rv = (1.0 - momentum) * *rv + momentum * var * unbias;
    }
}

/// Positions per layer-norm task: about `PIECE` input values.
fn positions_per_task(c: usize) -> usize {
    (PIECE / c).clamp(64, PIECE)
}

/// Per-position sums over the channels of sample `n`, positions `p0..p0 + len`:
/// `acc[j] += f(k, i, j)` for each channel k, with `i` the index of (n, k, p0 + j).
fn add_over_channels(
    acc: &mut [f64],
    n: usize,
    (c, hw): (usize, usize),
    p0: usize,
    f: impl Fn(usize, usize, usize) -> f64,
) {
    for k in 0..c {
        let base = (n * c + k) * hw + p0;
        for (j, a) in acc.iter_mut().enumerate() {
            *a += f(k, base + j, j);
        }
    }
}

/// Layer norm over the channels of `x` `[N, C, ...]`: at each position, the
/// mean and biased variance of its C values (two passes in f64), then
/// y = (x − mean)·invstd·weight[c] + bias[c]. Returns (y, mean, invstd) with
/// the statistics `[N, 1, ...]` (N·hw values).
pub fn layer_norm(
    x: &[f32],
    shape: &[usize],
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, c, hw) = dims(shape);
    let parallel = x.len() >= PARALLEL_MIN;
    let mut stats = vec![(0f32, 0f32); n * hw];
    let per_task = positions_per_task(c);
    for_segments(
        &mut stats,
        (1, hw),
        per_task,
        parallel,
        |sample, _, lo, out| {
            let p0 = lo - sample * hw;
            let mut acc = vec![0f64; out.len()];
            add_over_channels(&mut acc, sample, (c, hw), p0, |_, i, _| x[i] as f64);
            let means: Vec<f64> = acc.iter().map(|s| s / c as f64).collect();
            acc.fill(0.0);
            add_over_channels(&mut acc, sample, (c, hw), p0, |_, i, j| {
                let d = x[i] as f64 - means[j];
                d * d
            });
            for ((o, &m), &sq) in out.iter_mut().zip(&means).zip(&acc) {
                *o = (m as f32, (1.0 / (sq / c as f64 + eps as f64).sqrt()) as f32);
            }
        },
    );
    let (mean, invstd): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
    let mut y = crate::cpu::buffers::scratch(x.len());
    for_segments(&mut y, (c, hw), PIECE, parallel, |sample, k, lo, out| {
        // The statistics of (sample, position lo − (sample·C + k)·hw).
        let st = sample * hw + (lo - (sample * c + k) * hw);
        let (w, b) = (weight[k], bias[k]);
        let stats = mean[st..].iter().zip(&invstd[st..]);
        for ((o, &v), (&m, &s)) in out.iter_mut().zip(&x[lo..]).zip(stats) {
            *o = (v - m) * s * w + b;
        }
    });
    (y, mean, invstd)
}

/// Backward of [`layer_norm`] with x̂ = (x − mean)·invstd and ĝ = g·weight[c]:
/// grad_x = invstd·(ĝ − mean_C ĝ − x̂·mean_C(ĝ·x̂)) at each position,
/// grad_weight = Σ g·x̂ and grad_bias = Σ g over N and the positions.
/// Returns (grad_x, grad_weight `[C]`, grad_bias `[C]`).
pub fn layer_norm_backward(
    grad_out: &[f32],
    x: &[f32],
    shape: &[usize],
    weight: &[f32],
    mean: &[f32],
    invstd: &[f32],
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (n, c, hw) = dims(shape);
    let parallel = x.len() >= PARALLEL_MIN;
    // mean_C ĝ and mean_C(ĝ·x̂) per position.
    let mut coef = vec![(0f32, 0f32); n * hw];
    for_segments(
        &mut coef,
        (1, hw),
        positions_per_task(c),
        parallel,
        |sample, _, lo, out| {
            let len = out.len();
            let (mean, invstd) = (&mean[lo..lo + len], &invstd[lo..lo + len]);
            let mut s1 = vec![0f64; len];
            let mut s2 = vec![0f64; len];
            for (k, &w) in weight.iter().enumerate() {
                let start = (sample * c + k) * hw + lo - sample * hw;
                let (g, x) = (&grad_out[start..start + len], &x[start..start + len]);
                let stats = mean.iter().zip(invstd);
                for (((s1, s2), (&g, &x)), (&m, &s)) in s1
                    .iter_mut()
                    .zip(s2.iter_mut())
                    .zip(g.iter().zip(x))
                    .zip(stats)
                {
                    let gh = g as f64 * w as f64;
                    *s1 += gh;
                    *s2 += gh * ((x as f64 - m as f64) * s as f64);
                }
            }
            for ((o, a), b) in out.iter_mut().zip(&s1).zip(&s2) {
                *o = ((a / c as f64) as f32, (b / c as f64) as f32);
            }
        },
    );
    let mut gx = crate::cpu::buffers::scratch(x.len());
    for_segments(&mut gx, (c, hw), PIECE, parallel, |sample, k, lo, out| {
        let st = sample * hw + (lo - (sample * c + k) * hw);
        let w = weight[k];
        let rows = grad_out[lo..].iter().zip(&x[lo..]);
        let stats = mean[st..].iter().zip(&invstd[st..]).zip(&coef[st..]);
        for ((o, (&g, &v)), ((&m, &s), &(a, b))) in out.iter_mut().zip(rows).zip(stats) {
            *o = s * (g * w - a - (v - m) * s * b);
        }
    });
    let sums = channel_sums(n, c, hw, |sample, ch, lo, hi| {
        sum2(lo, hi, |i| {
            // The statistics of (sample, position i − (sample·C + ch)·hw).
            let j = sample * hw + (i - (sample * c + ch) * hw);
            let g = grad_out[i] as f64;
            (g, g * (x[i] as f64 - mean[j] as f64) * invstd[j] as f64)
        })
    });
    let grad_bias = sums.iter().map(|s| s[0] as f32).collect();
    let grad_weight = sums.iter().map(|s| s[1] as f32).collect();
    (gx, grad_weight, grad_bias)
}
