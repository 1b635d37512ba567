//! Activations and their backward passes on the CPU, plus softmax over one
//! axis, with the formulas of `ops/activation.rs`. Each backward takes the
//! upstream gradient and the saved tensor the GPU op takes: the input for
//! leaky relu and gelu, the output for sigmoid, tanh and softmax, either for
//! relu.

use rayon::prelude::*;

use super::elementwise::{for_chunks_if, map1, map2, CHUNK, PAR_MIN};

/// max(x, 0).
pub fn relu(x: &[f32]) -> Vec<f32> {
    map1(x, |v| v.max(0.0))
}

/// g where the saved input (or output) is positive, else 0.
pub fn relu_backward(grad_out: &[f32], saved: &[f32]) -> Vec<f32> {
    map2(grad_out, saved, |g, v| if v > 0.0 { g } else { 0.0 })
}

/// x for x > 0, slope·x otherwise.
pub fn leaky_relu(x: &[f32], slope: f32) -> Vec<f32> {
    map1(x, move |v| if v > 0.0 { v } else { v * slope })
}

/// g for saved > 0, slope·g otherwise (`saved` is the input).
pub fn leaky_relu_backward(grad_out: &[f32], saved: &[f32], slope: f32) -> Vec<f32> {
    map2(
        grad_out,
        saved,
        move |g, v| if v > 0.0 { g } else { g * slope },
    )
}

/// erf(x) = x·P(x²) for |x| < 2, with P(t) = erf(√t)/√t written as a
/// polynomial in u = t/2 − 1 ∈ [−1, 1]: P = Σ a_k u^k. Derivation: the
/// Chebyshev interpolant of P at 48 nodes (c_k = (2/48) Σ_i P(t_i)·cos(kθ_i),
/// c_0 halved) truncated to 15 terms (|c_15| < 1e-14), then T_k expanded
/// into powers of u. Σ|a_k| ≈ 1.13, so evaluating in f64 adds ~1e-16.
const ERF_POLY: [f64; 15] = [
    0.6749332360396547,
    -0.26111186093138294,
    0.1194791386098722,
    -0.048662777444116026,
    0.017128344571168668,
    -0.0052348758901734635,
    0.0014050914303815885,
    -0.0003351432770995662,
    7.180097700161998e-05,
    -1.3946899384128148e-05,
    2.4758776646649494e-06,
    -4.036928468546345e-07,
    6.109833824060237e-08,
    -9.158005317052206e-09,
    1.1984108520361285e-09,
];

/// erfc(x) = e^{−x²}·R(1/x) for 2 ≤ x < 6, with R(t) = e^{1/t²}·erfc(1/t)
/// (smooth and slowly varying there, ≈ t/√π, unlike erfc itself) as a
/// polynomial in u = 6t − 2 ∈ [−1, 1] for t ∈ [1/6, 1/2]; same derivation
/// as `ERF_POLY`, 14 Chebyshev terms.
const ERFC_POLY: [f64; 14] = [
    0.17900115118138799,
    0.08155839001076653,
    -0.0050393598954723935,
    -0.0002321579202886429,
    0.000124593249978322,
    -1.7340697512459778e-05,
    -9.981195481234549e-08,
    6.468354250740067e-07,
    -1.6584938215361925e-07,
    1.788664327762035e-08,
    2.7813508533351223e-09,
    -1.8377228627741713e-09,
    3.9961634001883795e-10,
    -2.2327621233368216e-11,
];

/// Σ a_k u^k as E(u²) + u·O(u²) over the even and odd coefficients: two
/// independent Horner chains, half the dependent latency of one.
#[inline]
fn poly(a: &[f64], u: f64) -> f64 {
    let u2 = u * u;
    let even = a.iter().step_by(2).rev().fold(0.0, |acc, &c| acc * u2 + c);
    let odd = a
        .iter()
        .skip(1)
        .step_by(2)
        .rev()
        .fold(0.0, |acc, &c| acc * u2 + c);
    even + u * odd
}

/// The error function, |error| < 2e-14 for every x (Rust's std has none).
/// |x| < 2: x·P(x²); 2 ≤ |x| < 6: 1 − e^{−x²}·R(1/|x|) (no cancellation
/// worth the name: the subtracted term is below 5e-3); beyond 6, erfc < 3e-17
/// and erf is ±1.
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let r = if z < 2.0 {
        z * poly(&ERF_POLY, 0.5 * z * z - 1.0)
    } else if z < 6.0 {
        1.0 - (-z * z).exp() * poly(&ERFC_POLY, 6.0 / z - 2.0)
    } else if z.is_nan() {
        return f64::NAN;
    } else {
        1.0
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// 1/√(2π), the standard normal density at 0.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Exact gelu, x·Φ(x) with Φ(x) = ½(1 + erf(x/√2)), evaluated in f64.
pub fn gelu(x: &[f32]) -> Vec<f32> {
    map1(x, |v| {
        let v = v as f64;
        (0.5 * v * (1.0 + erf(v * FRAC_1_SQRT_2))) as f32
    })
}

/// g · gelu'(x) with gelu'(x) = Φ(x) + x·φ(x), φ(x) = e^{−x²/2}/√(2π);
/// `saved` is the input.
pub fn gelu_backward(grad_out: &[f32], saved: &[f32]) -> Vec<f32> {
    map2(grad_out, saved, |g, v| {
        let v = v as f64;
        let d = 0.5 * (1.0 + erf(v * FRAC_1_SQRT_2)) + v * INV_SQRT_2PI * (-0.5 * v * v).exp();
        (g as f64 * d) as f32
    })
}

/// 1 / (1 + e^−x); e^−x overflowing to +inf gives 0.
pub fn sigmoid(x: &[f32]) -> Vec<f32> {
    map1(x, |v| 1.0 / (1.0 + (-v).exp()))
}

/// g · y(1 − y) from the saved output y.
pub fn sigmoid_backward(grad_out: &[f32], saved: &[f32]) -> Vec<f32> {
    map2(grad_out, saved, |g, y| g * y * (1.0 - y))
}

/// tanh(x) (std's tanhf, which neither overflows nor cancels near 0).
pub fn tanh(x: &[f32]) -> Vec<f32> {
    map1(x, f32::tanh)
}

/// g · (1 − y²) from the saved output y.
pub fn tanh_backward(grad_out: &[f32], saved: &[f32]) -> Vec<f32> {
    map2(grad_out, saved, |g, y| g * (1.0 - y * y))
}

/// `shape` seen as [outer, len, inner] around `axis`.
fn around(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    (outer, shape[axis], inner)
}

/// Columns per task when a [len, inner] block is split along inner.
fn columns_per_task(len: usize, inner: usize) -> usize {
    (CHUNK / len).clamp(16, inner.max(16))
}

/// Softmax along `axis`: exp(x − max) · (1 / Σ exp(x − max)), max and sum
/// over the same axis (the sum accumulated in f64).
pub fn softmax(x: &[f32], shape: &[usize], axis: usize) -> Vec<f32> {
    let (outer, len, inner) = around(shape, axis);
    let mut y = crate::cpu::buffers::zeroed(x.len());
    if y.is_empty() {
        return y;
    }
    if inner == 1 {
        // Contiguous rows.
        for_chunks_if(x.len() >= PAR_MIN, &mut y, len, |j, row| {
            let xr = &x[j * len..(j + 1) * len];
            let m = xr.iter().fold(xr[0], |m, &v| if v > m { v } else { m });
            let mut s = 0.0f64;
            for (o, &v) in row.iter_mut().zip(xr) {
                *o = (v - m).exp();
                s += *o as f64;
            }
            let inv = (1.0 / s) as f32;
            row.iter_mut().for_each(|o| *o *= inv);
        });
        return y;
    }
    let block = len * inner;
    let par_blocks = x.len() >= PAR_MIN && outer >= 2 * rayon::current_num_threads();
    let inner_par = !par_blocks && block >= PAR_MIN;
    for_chunks_if(par_blocks, &mut y, block, |o, yb| {
        let xb = &x[o * block..(o + 1) * block];
        if inner_par {
            softmax_block_split(xb, yb, len, inner);
            return;
        }
        // One thread owns the block: per column k the maximum over the rows,
        // then the exponentials stored with their sums, then the scaling.
        let mut m = xb[..inner].to_vec();
        for l in 1..len {
            for (mk, &v) in m.iter_mut().zip(&xb[l * inner..(l + 1) * inner]) {
                if v > *mk {
                    *mk = v;
                }
            }
        }
        let mut s = vec![0.0f64; inner];
        for (xr, yr) in xb.chunks_exact(inner).zip(yb.chunks_exact_mut(inner)) {
            for (((o, &v), &mk), sk) in yr.iter_mut().zip(xr).zip(&m).zip(s.iter_mut()) {
                *o = (v - mk).exp();
                *sk += *o as f64;
            }
        }
        let inv: Vec<f32> = s.iter().map(|&sk| (1.0 / sk) as f32).collect();
        for yr in yb.chunks_exact_mut(inner) {
            for (o, &ik) in yr.iter_mut().zip(&inv) {
                *o *= ik;
            }
        }
    });
    y
}

/// Softmax of one large [len, inner] block on all threads: pass 1 splits
/// the columns (maximum and 1/Σ exp per column), pass 2 the rows
/// (y = exp(x − m) · inv), computing each exponential twice as the GPU does
/// rather than writing the block column-strided from several threads.
fn softmax_block_split(xb: &[f32], yb: &mut [f32], len: usize, inner: usize) {
    let mut m = crate::cpu::buffers::zeroed(inner);
    let mut inv = crate::cpu::buffers::zeroed(inner);
    let cols = columns_per_task(len, inner);
    m.par_chunks_mut(cols)
        .zip(inv.par_chunks_mut(cols))
        .enumerate()
        .for_each(|(t, (mc, ic))| {
            let k0 = t * cols;
            let w = mc.len();
            mc.copy_from_slice(&xb[k0..k0 + w]);
            for l in 1..len {
                for (mk, &v) in mc.iter_mut().zip(&xb[l * inner + k0..l * inner + k0 + w]) {
                    if v > *mk {
                        *mk = v;
                    }
                }
            }
            let mut s = vec![0.0f64; w];
            for l in 0..len {
                let xr = &xb[l * inner + k0..l * inner + k0 + w];
                for ((sk, &v), &mk) in s.iter_mut().zip(xr).zip(mc.iter()) {
                    *sk += (v - mk).exp() as f64;
                }
            }
            for (ik, &sk) in ic.iter_mut().zip(&s) {
                *ik = (1.0 / sk) as f32;
            }
        });
    for_chunks_if(true, yb, inner, |l, yr| {
        let xr = &xb[l * inner..(l + 1) * inner];
        for (((o, &v), &mk), &ik) in yr.iter_mut().zip(xr).zip(&m).zip(&inv) {
            *o = (v - mk).exp() * ik;
        }
    });
}

/// Backward of [`softmax`] from its output y: g_x = y ⊙ (g − Σ_axis g ⊙ y).
pub fn softmax_backward(
    grad_out: &[f32],
    output: &[f32],
    shape: &[usize],
    axis: usize,
) -> Vec<f32> {
    let (outer, len, inner) = around(shape, axis);
    let (g, y) = (grad_out, output);
    let mut gx = crate::cpu::buffers::zeroed(y.len());
    if gx.is_empty() {
        return gx;
    }
    if inner == 1 {
        for_chunks_if(y.len() >= PAR_MIN, &mut gx, len, |j, row| {
            let (gr, yr) = (&g[j * len..(j + 1) * len], &y[j * len..(j + 1) * len]);
            let dot = gr
                .iter()
                .zip(yr)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>() as f32;
            for ((o, &gv), &yv) in row.iter_mut().zip(gr).zip(yr) {
                *o = yv * (gv - dot);
            }
        });
        return gx;
    }
    let block = len * inner;
    let par_blocks = y.len() >= PAR_MIN && outer >= 2 * rayon::current_num_threads();
    for_chunks_if(par_blocks, &mut gx, block, |o, gxb| {
        let (gb, yb) = (
            &g[o * block..(o + 1) * block],
            &y[o * block..(o + 1) * block],
        );
        // Pass 1, per column k: Σ_l g ⊙ y.
        let mut dot = crate::cpu::buffers::zeroed(inner);
        let cols = columns_per_task(len, inner);
        let sums = |t: usize, dc: &mut [f32]| {
            let k0 = t * cols;
            let w = dc.len();
            let mut s = vec![0.0f64; w];
            for l in 0..len {
                let at = l * inner + k0;
                for ((sk, &a), &b) in s.iter_mut().zip(&gb[at..at + w]).zip(&yb[at..at + w]) {
                    *sk += a as f64 * b as f64;
                }
            }
            for (d, &sk) in dc.iter_mut().zip(&s) {
                *d = sk as f32;
            }
        };
        let inner_par = !par_blocks && block >= PAR_MIN;
        if inner_par {
            dot.par_chunks_mut(cols)
                .enumerate()
                .for_each(|(t, dc)| sums(t, dc));
        } else {
            dot.chunks_mut(cols)
                .enumerate()
                .for_each(|(t, dc)| sums(t, dc));
        }
        // Pass 2, per row.
        for_chunks_if(inner_par, gxb, inner, |l, row| {
            let at = l * inner;
            let (gr, yr) = (&gb[at..at + inner], &yb[at..at + inner]);
            for (((o, &gv), &yv), &d) in row.iter_mut().zip(gr).zip(yr).zip(&dot) {
                *o = yv * (gv - d);
            }
        });
    });
    gx
}
