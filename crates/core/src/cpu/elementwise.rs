//! Elementwise kernels on the CPU: unary ops (with an optional scalar),
//! binary ops with NumPy broadcasting, and fill. Same formulas as
//! `ops/elementwise.rs` and its shaders, including pow's sign and zero rules.
//!
//! Also the chunked-parallel helpers the other CPU kernel files share.

use rayon::prelude::*;

use crate::ops::{BinaryOp, UnaryOp};
use crate::shape;

/// Below this many elements a kernel runs on the calling thread: waking the
/// pool costs more than the work.
pub(crate) const PAR_MIN: usize = 32 * 1024;

/// Elements per parallel task of a streaming kernel: large enough to amortise
/// the task, small enough to balance two to a few dozen threads.
pub(crate) const CHUNK: usize = 16 * 1024;

/// Most dimensions an index map may have after unit dimensions are dropped.
pub(crate) const MAX_DIMS: usize = 8;

/// Calls `f(i, chunk)` for the chunks of `len` elements of `out` (the last may
/// be shorter), in parallel when `par`. Tiny chunks are grouped into tasks of
/// about [`CHUNK`] elements.
pub(crate) fn for_chunks_if<F>(par: bool, out: &mut [f32], len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    let len = len.max(1);
    if par {
        out.par_chunks_mut(len)
            .enumerate()
            .with_min_len(CHUNK.div_ceil(len))
            .for_each(|(i, c)| f(i, c));
    } else {
        out.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// `dst[i] += src[i]` (the same sums as `binary(.., Add)`, without a new buffer).
pub(crate) fn add_assign(dst: &mut [f32], src: &[f32]) {
    for_chunks(dst, CHUNK, |i, out| {
        for (o, &v) in out.iter_mut().zip(&src[i * CHUNK..]) {
            *o += v;
        }
    });
}

/// [`for_chunks_if`], parallel when `out` holds at least [`PAR_MIN`] elements.
pub(crate) fn for_chunks<F>(out: &mut [f32], len: usize, f: F)
where
    F: Fn(usize, &mut [f32]) + Sync + Send,
{
    for_chunks_if(out.len() >= PAR_MIN, out, len, f)
}

/// [`for_chunks`] over two outputs cut into chunks of the same length.
pub(crate) fn for_chunks2<F>(a: &mut [f32], b: &mut [f32], len: usize, f: F)
where
    F: Fn(usize, &mut [f32], &mut [f32]) + Sync + Send,
{
    let len = len.max(1);
    if a.len() >= PAR_MIN {
        a.par_chunks_mut(len)
            .zip(b.par_chunks_mut(len))
            .enumerate()
            .with_min_len(CHUNK.div_ceil(len))
            .for_each(|(i, (ca, cb))| f(i, ca, cb));
    } else {
        a.chunks_mut(len)
            .zip(b.chunks_mut(len))
            .enumerate()
            .for_each(|(i, (ca, cb))| f(i, ca, cb));
    }
}

/// `dst.copy_from_slice(src)`, split over threads when large.
pub(crate) fn par_copy(dst: &mut [f32], src: &[f32]) {
    for_chunks(dst, CHUNK, |i, d| {
        d.copy_from_slice(&src[i * CHUNK..i * CHUNK + d.len()])
    });
}

/// y[i] = f(x[i]).
pub(crate) fn map1<F>(x: &[f32], f: F) -> Vec<f32>
where
    F: Fn(f32) -> f32 + Sync + Send,
{
    let mut y = crate::cpu::buffers::scratch(x.len());
    for_chunks(&mut y, CHUNK, |i, out| {
        let src = &x[i * CHUNK..i * CHUNK + out.len()];
        for (o, &v) in out.iter_mut().zip(src) {
            *o = f(v);
        }
    });
    y
}

/// z[i] = f(a[i], b[i]) for slices of equal length.
pub(crate) fn map2<F>(a: &[f32], b: &[f32], f: F) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32 + Sync + Send,
{
    debug_assert_eq!(a.len(), b.len());
    let mut z = crate::cpu::buffers::scratch(a.len());
    for_chunks(&mut z, CHUNK, |i, out| {
        let lo = i * CHUNK;
        let (sa, sb) = (&a[lo..lo + out.len()], &b[lo..lo + out.len()]);
        for ((o, &x), &y) in out.iter_mut().zip(sa).zip(sb) {
            *o = f(x, y);
        }
    });
    z
}

/// A row-major walk over up to [`MAX_DIMS`] dimensions that keeps one or two
/// strided offsets up to date: stepping costs an add per carried dimension
/// and no division.
#[derive(Clone, Copy)]
pub(crate) struct Odometer {
    rank: usize,
    dims: [usize; MAX_DIMS],
    sa: [usize; MAX_DIMS],
    sb: [usize; MAX_DIMS],
    coords: [usize; MAX_DIMS],
    /// Offsets of the current position through strides `sa` and `sb`.
    pub a: usize,
    pub b: usize,
}

impl Odometer {
    /// Positioned at row-major index `flat` of `dims`, with strides `sa`
    /// (and `sb`, which may be empty for a one-offset walk).
    pub(crate) fn new(dims: &[usize], sa: &[usize], sb: &[usize], flat: usize) -> Odometer {
        let rank = dims.len();
        assert!(
            rank <= MAX_DIMS,
            "index map of rank {rank} exceeds {MAX_DIMS}"
        );
        let mut o = Odometer {
            rank,
            dims: [1; MAX_DIMS],
            sa: [0; MAX_DIMS],
            sb: [0; MAX_DIMS],
            coords: [0; MAX_DIMS],
            a: 0,
            b: 0,
        };
        o.dims[..rank].copy_from_slice(dims);
        o.sa[..rank].copy_from_slice(sa);
        if !sb.is_empty() {
            o.sb[..rank].copy_from_slice(sb);
        }
        let mut rem = flat;
        for k in (0..rank).rev() {
            let d = o.dims[k].max(1);
            let c = rem % d;
            rem /= d;
            o.coords[k] = c;
            o.a += c * o.sa[k];
            o.b += c * o.sb[k];
        }
        o
    }

    /// Advances to the next row-major position (wrapping at the end).
    #[inline]
    pub(crate) fn step(&mut self) {
        for k in (0..self.rank).rev() {
            self.coords[k] += 1;
            self.a += self.sa[k];
            self.b += self.sb[k];
            if self.coords[k] < self.dims[k] {
                return;
            }
            self.a -= self.sa[k] * self.dims[k];
            self.b -= self.sb[k] * self.dims[k];
            self.coords[k] = 0;
        }
    }
}

/// Writes `value` into every element of `out`.
pub fn fill(out: &mut [f32], value: f32) {
    for_chunks(out, CHUNK, |_, c| c.fill(value));
}

/// WGSL's `sign`: −1, 0 or 1 (Rust's `signum` gives 1 for +0).
fn sign(v: f32) -> f32 {
    if v > 0.0 {
        1.0
    } else if v < 0.0 {
        -1.0
    } else {
        v
    }
}

/// y = op(x), elementwise.
pub fn unary(x: &[f32], op: UnaryOp) -> Vec<f32> {
    match op {
        UnaryOp::Neg => map1(x, |v| -v),
        UnaryOp::Abs => map1(x, f32::abs),
        UnaryOp::Sign => map1(x, sign),
        UnaryOp::Exp => map1(x, f32::exp),
        UnaryOp::Log => map1(x, f32::ln),
        UnaryOp::Sqrt => map1(x, f32::sqrt),
        UnaryOp::AddScalar(s) => map1(x, |v| v + s),
        UnaryOp::SubScalar(s) => map1(x, |v| v - s),
        UnaryOp::RsubScalar(s) => map1(x, |v| s - v),
        UnaryOp::MulScalar(s) => map1(x, |v| v * s),
        UnaryOp::DivScalar(s) => map1(x, |v| v / s),
        UnaryOp::RdivScalar(s) => map1(x, |v| s / v),
        UnaryOp::PowScalar(s) => pow_scalar(x, s),
    }
}

/// The GPU's pow: |v|^s, negated for v < 0 when s is an odd integer
/// (fract(s/2) = 1/2), and 0^s = 0 for s ≠ 0, 1 for s = 0. A negative base
/// with a non-integer exponent therefore gives |v|^s, not NaN.
fn pow_scalar(x: &[f32], s: f32) -> Vec<f32> {
    let half = s * 0.5;
    let odd = half - half.floor() == 0.5;
    let zero = if s == 0.0 { 1.0 } else { 0.0 };
    // Both shortcuts are exact (correctly rounded), like powf itself.
    if s == 2.0 {
        return map1(x, |v| v * v);
    }
    if s == 1.0 {
        return map1(x, |v| if v == 0.0 { 0.0 } else { v });
    }
    map1(x, move |v| {
        if v == 0.0 {
            zero
        } else {
            let p = v.abs().powf(s);
            if odd && v < 0.0 {
                -p
            } else {
                p
            }
        }
    })
}

/// z = a op b with NumPy broadcasting; the result has the broadcast shape of
/// `a_shape` and `b_shape` (which the caller has checked).
pub fn binary(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    op: BinaryOp,
) -> Vec<f32> {
    match op {
        BinaryOp::Add => binary_with(a, a_shape, b, b_shape, |x, y| x + y),
        BinaryOp::Sub => binary_with(a, a_shape, b, b_shape, |x, y| x - y),
        BinaryOp::Mul => binary_with(a, a_shape, b, b_shape, |x, y| x * y),
        BinaryOp::Div => binary_with(a, a_shape, b, b_shape, |x, y| x / y),
        BinaryOp::Less => binary_with(a, a_shape, b, b_shape, |x, y| if x < y { 1.0 } else { 0.0 }),
        BinaryOp::Maximum => binary_with(a, a_shape, b, b_shape, f32::max),
        BinaryOp::Minimum => binary_with(a, a_shape, b, b_shape, f32::min),
    }
}

/// Drops unit dimensions and merges neighbours that are contiguous in every
/// operand: dimension d folds into its outer neighbour when each operand's
/// outer stride is its stride at d times the size of d (stride 0 stays 0).
/// Returns (dims, strides per operand), outermost first.
pub(crate) fn merge_dims(dims: &[usize], strides: &[&[usize]]) -> (Vec<usize>, Vec<Vec<usize>>) {
    let mut md: Vec<usize> = Vec::with_capacity(dims.len());
    let mut ms: Vec<Vec<usize>> = vec![Vec::with_capacity(dims.len()); strides.len()];
    for (d, &size) in dims.iter().enumerate() {
        if size == 1 {
            continue;
        }
        let merge = !md.is_empty()
            && strides
                .iter()
                .zip(&ms)
                .all(|(s, m)| *m.last().unwrap() == s[d] * size);
        if merge {
            *md.last_mut().unwrap() *= size;
            for (s, m) in strides.iter().zip(ms.iter_mut()) {
                *m.last_mut().unwrap() = s[d];
            }
        } else {
            md.push(size);
            for (s, m) in strides.iter().zip(ms.iter_mut()) {
                m.push(s[d]);
            }
        }
    }
    (md, ms)
}

/// One operand of a broadcast row: a contiguous run or one repeated value.
#[derive(Clone, Copy)]
enum Operand<'a> {
    Row(&'a [f32]),
    Scalar(f32),
}

#[inline]
fn apply_row<F: Fn(f32, f32) -> f32>(out: &mut [f32], a: Operand, b: Operand, f: &F) {
    match (a, b) {
        (Operand::Row(ra), Operand::Row(rb)) => {
            for ((o, &x), &y) in out.iter_mut().zip(ra).zip(rb) {
                *o = f(x, y);
            }
        }
        (Operand::Row(ra), Operand::Scalar(y)) => {
            for (o, &x) in out.iter_mut().zip(ra) {
                *o = f(x, y);
            }
        }
        (Operand::Scalar(x), Operand::Row(rb)) => {
            for (o, &y) in out.iter_mut().zip(rb) {
                *o = f(x, y);
            }
        }
        (Operand::Scalar(x), Operand::Scalar(y)) => out.fill(f(x, y)),
    }
}

pub(crate) fn binary_with<F>(
    a: &[f32],
    a_shape: &[usize],
    b: &[f32],
    b_shape: &[usize],
    f: F,
) -> Vec<f32>
where
    F: Fn(f32, f32) -> f32 + Sync + Send + Copy,
{
    if a_shape == b_shape {
        return map2(a, b, f);
    }
    let out_shape = shape::broadcast("binary", a_shape, b_shape).expect("shapes were validated");
    let n = shape::numel(&out_shape);
    if n == 0 {
        return Vec::new();
    }
    // Same element count as the output means the same memory order (only
    // leading or unit dimensions differ): the common scalar cases.
    if a.len() == n && b.len() == n {
        return map2(a, b, f);
    }
    if a.len() == n && b.len() == 1 {
        let y = b[0];
        return map1(a, move |x| f(x, y));
    }
    if b.len() == n && a.len() == 1 {
        let x = a[0];
        return map1(b, move |y| f(x, y));
    }
    let sa = shape::broadcast_strides(a_shape, &out_shape);
    let sb = shape::broadcast_strides(b_shape, &out_shape);
    let (dims, strides) = merge_dims(&out_shape, &[&sa, &sb]);
    let (sa, sb) = (&strides[0], &strides[1]);
    // The innermost merged dimension is a row: each operand's stride there
    // is 1 (its own last dimension) or 0 (broadcast), e.g. a per-channel
    // bias [1, C, 1, 1] over [N, C, H, W] becomes rows of H·W with b scalar.
    let k = dims.len() - 1;
    let len = dims[k];
    let (ra, rb) = (sa[k] == 1, sb[k] == 1);
    let rows_per_task = (CHUNK / len).max(1);
    let mut z = crate::cpu::buffers::scratch(n);
    for_chunks(&mut z, rows_per_task * len, |t, chunk| {
        let mut pos = Odometer::new(&dims[..k], &sa[..k], &sb[..k], t * rows_per_task);
        for out in chunk.chunks_mut(len) {
            let oa = if ra {
                Operand::Row(&a[pos.a..pos.a + len])
            } else {
                Operand::Scalar(a[pos.a])
            };
            let ob = if rb {
                Operand::Row(&b[pos.b..pos.b + len])
            } else {
                Operand::Scalar(b[pos.b])
            };
            apply_row(out, oa, ob, &f);
            pos.step();
        }
    });
    z
}
