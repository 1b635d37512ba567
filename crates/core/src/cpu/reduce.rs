//! Sums, means and maxima over any set of axes on the CPU, and their
//! backward (a broadcast back; for maxima, split among ties). Same conventions as `ops/reduce.rs`:
//! an empty reduction sums to 0, its mean is NaN and its maximum −f32::MAX;
//! the output holds the kept dimensions in order, so its values are the same
//! with or without `keepdim` (the caller owns the shape).
//!
//! Like the GPU plan, dimensions are first simplified: size-1 dimensions are
//! dropped and neighbours of the same kind (kept or reduced) merged, so a
//! per-channel sum of NCHW becomes [N (reduced), C (kept), H·W (reduced)].
//! Sums accumulate in f64 with eight independent lanes, so long reductions
//! lose nothing to rounding and still vectorise.

use rayon::prelude::*;

use super::elementwise::{binary_with, fill, Odometer, CHUNK, PAR_MIN};
use super::layout::gather_scaled;

/// How a reduction combines values.
trait Combine: Sync {
    type Acc: Copy + Send + Sync;
    const INIT: Self::Acc;
    fn add(acc: Self::Acc, v: f32) -> Self::Acc;
    fn merge(a: Self::Acc, b: Self::Acc) -> Self::Acc;
    /// `acc` combined with every value of a contiguous row.
    fn row(acc: Self::Acc, row: &[f32]) -> Self::Acc;
    fn finish(acc: Self::Acc, scale: f32) -> f32;
}

const LANES: usize = 8;

struct Sum;

impl Combine for Sum {
    type Acc = f64;
    const INIT: f64 = 0.0;
    #[inline]
    fn add(acc: f64, v: f32) -> f64 {
        acc + v as f64
    }
    #[inline]
    fn merge(a: f64, b: f64) -> f64 {
        a + b
    }
    #[inline]
    fn row(acc: f64, row: &[f32]) -> f64 {
        let mut lanes = [0.0f64; LANES];
        let mut it = row.chunks_exact(LANES);
        for c in &mut it {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l += v as f64;
            }
        }
        let tail: f64 = it.remainder().iter().map(|&v| v as f64).sum();
        acc + lanes.iter().sum::<f64>() + tail
    }
    #[inline]
    fn finish(acc: f64, scale: f32) -> f32 {
        (acc * scale as f64) as f32
    }
}

struct Max;

impl Combine for Max {
    type Acc = f32;
    // −f32::MAX as on the GPU, so an all −inf input is not confused with "no values".
    const INIT: f32 = -f32::MAX;
    #[inline]
    fn add(acc: f32, v: f32) -> f32 {
        if v > acc {
            v
        } else {
            acc
        }
    }
    #[inline]
    fn merge(a: f32, b: f32) -> f32 {
        Max::add(a, b)
    }
    #[inline]
    fn row(acc: f32, row: &[f32]) -> f32 {
        let mut lanes = [acc; LANES];
        let mut it = row.chunks_exact(LANES);
        for c in &mut it {
            for (l, &v) in lanes.iter_mut().zip(c) {
                *l = Max::add(*l, v);
            }
        }
        let m = it.remainder().iter().fold(acc, |m, &v| Max::add(m, v));
        lanes.iter().fold(m, |m, &v| Max::add(m, v))
    }
    #[inline]
    fn finish(acc: f32, _scale: f32) -> f32 {
        acc
    }
}

/// Which axes are reduced. Axes are valid and distinct (checked by the caller).
fn mask(rank: usize, axes: &[usize]) -> Vec<bool> {
    let mut m = vec![false; rank];
    for &a in axes {
        m[a] = true;
    }
    m
}

/// A reduction of `r` values for each of `n_out` outputs, over the
/// simplified segments of the input.
struct Plan {
    n_out: usize,
    r: usize,
    kept_dims: Vec<usize>,
    kept_strides: Vec<usize>,
    red_dims: Vec<usize>,
    red_strides: Vec<usize>,
    /// The innermost segment is reduced (a contiguous row per output and
    /// reduced position) rather than kept (a contiguous run of outputs).
    inner_reduced: bool,
}

impl Plan {
    fn new(x_shape: &[usize], mask: &[bool]) -> Plan {
        let strides = crate::shape::strides(x_shape);
        // (size, stride, reduced); merging neighbours of one kind is valid
        // because only size-1 dimensions can lie between them.
        let mut segs: Vec<(usize, usize, bool)> = Vec::new();
        for (i, &d) in x_shape.iter().enumerate() {
            if d == 1 {
                continue;
            }
            match segs.last_mut() {
                Some(last) if last.2 == mask[i] => {
                    last.0 *= d;
                    last.1 = strides[i];
                }
                _ => segs.push((d, strides[i], mask[i])),
            }
        }
        let pick = |red: bool| -> (Vec<usize>, Vec<usize>) {
            segs.iter()
                .filter(|s| s.2 == red)
                .map(|s| (s.0, s.1))
                .unzip()
        };
        let (kept_dims, kept_strides) = pick(false);
        let (red_dims, red_strides) = pick(true);
        Plan {
            n_out: kept_dims.iter().product(),
            r: red_dims.iter().product(),
            inner_reduced: segs.last().is_some_and(|s| s.2),
            kept_dims,
            kept_strides,
            red_dims,
            red_strides,
        }
    }

    /// Combines into `acc[j]` the values of output `o0 + j` at reduced flat
    /// indices [i0, i1), for outputs [o0, o0 + acc.len()).
    fn block<C: Combine>(&self, x: &[f32], o0: usize, i0: usize, i1: usize, acc: &mut [C::Acc]) {
        if i0 >= i1 || acc.is_empty() {
            return;
        }
        if self.inner_reduced {
            // Contiguous rows of `len` along the innermost reduced segment,
            // walked by an odometer over the outer reduced segments.
            let k = self.red_dims.len() - 1;
            let len = self.red_dims[k];
            let (outer_d, outer_s) = (&self.red_dims[..k], &self.red_strides[..k]);
            let mut out = Odometer::new(&self.kept_dims, &self.kept_strides, &[], o0);
            let (q0, q1) = (i0 / len, (i1 - 1) / len);
            let first_row = Odometer::new(outer_d, outer_s, &[], q0);
            for a in acc.iter_mut() {
                let mut row = first_row;
                let mut s = *a;
                for q in q0..=q1 {
                    let lo = if q == q0 { i0 - q * len } else { 0 };
                    let hi = if q == q1 { i1 - q * len } else { len };
                    let start = out.a + row.a;
                    s = C::row(s, &x[start + lo..start + hi]);
                    row.step();
                }
                *a = s;
                out.step();
            }
        } else {
            // Runs of consecutive outputs along the innermost kept segment
            // are consecutive in x: add whole runs per reduced position.
            // (No segments at all when every dimension is 1: one value.)
            let len = self.kept_dims.last().copied().unwrap_or(1);
            let mut j = 0;
            while j < acc.len() {
                let o = o0 + j;
                let run = (len - o % len).min(acc.len() - j);
                let base = Odometer::new(&self.kept_dims, &self.kept_strides, &[], o).a;
                let dst = &mut acc[j..j + run];
                let mut pos = Odometer::new(&self.red_dims, &self.red_strides, &[], i0);
                for _ in i0..i1 {
                    let src = &x[base + pos.a..base + pos.a + run];
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = C::add(*d, v);
                    }
                    pos.step();
                }
                j += run;
            }
        }
    }
}

/// scale · (combination over the `mask`ed axes of `x`), as the kept axes in order.
fn reduce<C: Combine>(x: &[f32], x_shape: &[usize], mask: &[bool], scale: f32) -> Vec<f32> {
    let plan = Plan::new(x_shape, mask);
    let (n_out, r) = (plan.n_out, plan.r);
    let mut out = crate::cpu::buffers::zeroed(n_out);
    if n_out == 0 {
        return out;
    }
    if r == 0 {
        fill(&mut out, C::finish(C::INIT, scale));
        return out;
    }
    let threads = rayon::current_num_threads();
    let big = x.len() >= PAR_MIN;
    // Outputs per task: about CHUNK input values each, and runs of at least
    // 64 outputs when outputs are contiguous, so a task reads whole cache lines.
    let mut per_task = (CHUNK / r).max(1);
    if !plan.inner_reduced {
        per_task = per_task.max(64);
    }
    per_task = per_task.min(n_out);
    let tasks = n_out.div_ceil(per_task);
    let task = |t: usize, chunk: &mut [f32]| {
        let mut acc = vec![C::INIT; chunk.len()];
        plan.block::<C>(x, t * per_task, 0, r, &mut acc);
        for (o, &a) in chunk.iter_mut().zip(&acc) {
            *o = C::finish(a, scale);
        }
    };
    if !big {
        out.chunks_mut(per_task)
            .enumerate()
            .for_each(|(t, c)| task(t, c));
        return out;
    }
    if tasks >= 2 * threads {
        // Each task already reads about CHUNK values: no grouping.
        out.par_chunks_mut(per_task)
            .enumerate()
            .for_each(|(t, c)| task(t, c));
        return out;
    }
    // Few outputs, long reductions: split the reduced range instead; every
    // part combines all outputs, then the parts are merged in order.
    let parts = (4 * threads).min(r);
    let step = r.div_ceil(parts);
    let partials: Vec<Vec<C::Acc>> = (0..r.div_ceil(step))
        .into_par_iter()
        .map(|p| {
            let mut acc = vec![C::INIT; n_out];
            plan.block::<C>(x, 0, p * step, ((p + 1) * step).min(r), &mut acc);
            acc
        })
        .collect();
    for (j, o) in out.iter_mut().enumerate() {
        let a = partials.iter().fold(C::INIT, |a, p| C::merge(a, p[j]));
        *o = C::finish(a, scale);
    }
    out
}

/// scale · Σ of `x` over the `mask`ed dimensions (for sum_to_shape and pools).
pub(crate) fn sum_mask(x: &[f32], x_shape: &[usize], mask: &[bool], scale: f32) -> Vec<f32> {
    reduce::<Sum>(x, x_shape, mask, scale)
}

/// Number of values each output of a reduction over `axes` combines.
fn reduced_count(x_shape: &[usize], axes: &[usize]) -> usize {
    axes.iter().map(|&a| x_shape[a]).product()
}

/// Σ over `axes` (valid, distinct, non-empty), kept axes in order: the values
/// of `sum_axes` with or without keepdim (all axes reduced: one value).
pub fn sum_axes(x: &[f32], x_shape: &[usize], axes: &[usize]) -> Vec<f32> {
    reduce::<Sum>(x, x_shape, &mask(x_shape.len(), axes), 1.0)
}

/// Mean over `axes`: the sum times 1/count (NaN where the axes are empty).
pub fn mean_axes(x: &[f32], x_shape: &[usize], axes: &[usize]) -> Vec<f32> {
    let r = reduced_count(x_shape, axes);
    let scale = if r == 0 {
        f32::NAN
    } else {
        (1.0 / r as f64) as f32
    };
    reduce::<Sum>(x, x_shape, &mask(x_shape.len(), axes), scale)
}

/// Maximum over `axes` (−f32::MAX where the axes are empty).
pub fn max_axes(x: &[f32], x_shape: &[usize], axes: &[usize]) -> Vec<f32> {
    reduce::<Max>(x, x_shape, &mask(x_shape.len(), axes), 1.0)
}

/// Σ of every element, as one value (0 for an empty input); the GPU op's
/// output has shape [1].
pub fn sum_all(x: &[f32]) -> Vec<f32> {
    reduce::<Sum>(x, &[x.len()], &[true], 1.0)
}

/// g_x[i] = scale · grad[o(i)]: `grad` (the reduced values, kept axes in
/// order) copied along the masked axes of `x_shape`.
pub(crate) fn broadcast_back(
    grad: &[f32],
    x_shape: &[usize],
    mask: &[bool],
    scale: f32,
) -> Vec<f32> {
    // grad seen with keepdim: row-major strides over the kept sizes, 0 on
    // reduced axes.
    let mut strides = vec![0usize; x_shape.len()];
    let mut acc = 1;
    for d in (0..x_shape.len()).rev() {
        if !mask[d] {
            strides[d] = acc;
            acc *= x_shape[d];
        }
    }
    gather_scaled(grad, x_shape, &strides, scale)
}

/// Backward of [`sum_axes`]: `grad` copied along the reduced axes.
pub fn sum_axes_backward(grad: &[f32], x_shape: &[usize], axes: &[usize]) -> Vec<f32> {
    broadcast_back(grad, x_shape, &mask(x_shape.len(), axes), 1.0)
}

/// Backward of [`mean_axes`]: `grad` / count copied along the reduced axes
/// (zeros when the count is 0, as there is then nothing to fill).
pub fn mean_axes_backward(grad: &[f32], x_shape: &[usize], axes: &[usize]) -> Vec<f32> {
    let r = reduced_count(x_shape, axes);
    let scale = if r == 0 { 0.0 } else { (1.0 / r as f64) as f32 };
    broadcast_back(grad, x_shape, &mask(x_shape.len(), axes), scale)
}

/// Backward of [`sum_all`]: the single gradient value copied `x_numel` times.
pub fn sum_all_backward(grad: &[f32], x_numel: usize) -> Vec<f32> {
    let mut gx = crate::cpu::buffers::scratch(x_numel);
    fill(&mut gx, grad[0]);
    gx
}

/// Backward of [`max_axes`], PyTorch's `amax` rule: the gradient of each
/// output is split evenly among the elements equal to its maximum (a
/// subgradient that treats tied elements alike, unlike picking one).
/// `maxima` and `grad` hold one value per output, kept axes in order.
pub fn max_axes_backward(
    grad: &[f32],
    x: &[f32],
    maxima: &[f32],
    x_shape: &[usize],
    axes: &[usize],
) -> Vec<f32> {
    let m = mask(x_shape.len(), axes);
    // The maxima and shares seen with the reduced axes kept (size 1), so
    // they broadcast against x without being copied out to its size.
    let kept: Vec<usize> = x_shape
        .iter()
        .zip(&m)
        .map(|(&s, &r)| if r { 1 } else { s })
        .collect();
    let at_max = binary_with(x, x_shape, maxima, &kept, |v, mx| (v == mx) as u8 as f32);
    // Counts are exact in f32 (a reduction holds far fewer than 2^24 values).
    let ties = sum_mask(&at_max, x_shape, &m, 1.0);
    let share: Vec<f32> = grad
        .iter()
        .zip(&ties)
        .map(|(&g, &k)| if k > 0.0 { g / k } else { 0.0 })
        .collect();
    crate::cpu::buffers::recycle(ties);
    // Elements below the maximum get exactly 0, whatever the share holds.
    let gx = binary_with(&at_max, x_shape, &share, &kept, |t, s| {
        if t != 0.0 {
            s
        } else {
            0.0
        }
    });
    crate::cpu::buffers::recycle(at_max);
    gx
}
