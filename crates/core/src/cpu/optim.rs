//! Optimizer steps on the CPU, in place on the parameter and its state: the
//! formulas of optim_adam.wgsl and optim_sgd.wgsl, in f32 and in their order.

use rayon::prelude::*;

use crate::optim::AdamConfig;

/// Below this many values a loop runs on the calling thread.
const PARALLEL_MIN: usize = 32 * 1024;
/// Values per task.
const PIECE: usize = 16 * 1024;

/// One Adam / AdamW step at `step` (counted from 1), in place on `param`,
/// `m` and `v`, with bc_i = 1 − β_iᵗ:
/// g' = g + wd·p (Adam, L2) or p ← p − lr·wd·p first (AdamW, decoupled);
/// m ← β1·m + (1 − β1)·g', v ← β2·v + (1 − β2)·g'²;
/// p ← p − lr·(m/bc1)/(√(v/bc2) + ε).
pub fn adam_step(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    step: u32,
    c: &AdamConfig,
) {
    // Computed on the host in f32, as ops' adam_step passes them.
    let bc1 = 1.0 - c.beta1.powi(step as i32);
    let bc2 = 1.0 - c.beta2.powi(step as i32);
    if param.len() >= PARALLEL_MIN {
        param
            .par_chunks_mut(PIECE)
            .zip(grad.par_chunks(PIECE))
            .zip(m.par_chunks_mut(PIECE))
            .zip(v.par_chunks_mut(PIECE))
            .for_each(|(((p, g), m), v)| adam_piece(p, g, m, v, c, (bc1, bc2)));
    } else {
        adam_piece(param, grad, m, v, c, (bc1, bc2));
    }
}

/// [`adam_step`] on one piece of the parameter and its state.
fn adam_piece(
    param: &mut [f32],
    grad: &[f32],
    m: &mut [f32],
    v: &mut [f32],
    c: &AdamConfig,
    (bc1, bc2): (f32, f32),
) {
    for (((p, &g), m), v) in param
        .iter_mut()
        .zip(grad)
        .zip(m.iter_mut())
        .zip(v.iter_mut())
    {
        let mut w = *p;
        let mut g = g;
        if c.decoupled {
            w -= c.lr * c.weight_decay * w;
        } else {
            g += c.weight_decay * w;
        }
        let mi = c.beta1 * *m + (1.0 - c.beta1) * g;
        let vi = c.beta2 * *v + (1.0 - c.beta2) * g * g;
        *m = mi;
        *v = vi;
        *p = w - c.lr * (mi / bc1) / ((vi / bc2).sqrt() + c.eps);
    }
}

/// One SGD step (PyTorch's form), in place: g' = g + wd·p, then with
/// momentum μ > 0 buf ← μ·buf + g' and p ← p − lr·buf, else p ← p − lr·g'.
/// `momentum_buf` (zeros at the start) must be given when `momentum > 0`;
/// it is not touched otherwise.
pub fn sgd_step(
    param: &mut [f32],
    grad: &[f32],
    momentum_buf: Option<&mut [f32]>,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
) {
    let parallel = param.len() >= PARALLEL_MIN;
    if momentum > 0.0 {
        let buf = momentum_buf.expect("sgd_step: momentum > 0 needs a momentum buffer");
        let run = |((p, g), b): ((&mut [f32], &[f32]), &mut [f32])| {
            for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                let w = *p;
                let step = momentum * *b + (g + weight_decay * w);
                *b = step;
                *p = w - lr * step;
            }
        };
        if parallel {
            param
                .par_chunks_mut(PIECE)
                .zip(grad.par_chunks(PIECE))
                .zip(buf.par_chunks_mut(PIECE))
                .for_each(run);
        } else {
            run(((param, grad), buf));
        }
    } else {
        let run = |(p, g): (&mut [f32], &[f32])| {
            for (p, &g) in p.iter_mut().zip(g) {
                let w = *p;
                *p = w - lr * (g + weight_decay * w);
            }
        };
        if parallel {
            param
                .par_chunks_mut(PIECE)
                .zip(grad.par_chunks(PIECE))
                .for_each(run);
        } else {
            run((param, grad));
        }
    }
}
