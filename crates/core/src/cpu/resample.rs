//! ×2 up-sampling on the CPU, nearest and bilinear (PyTorch
//! `align_corners=False`), and the gather-form backward passes, with the taps
//! and summation order of the `resample_*.wgsl` kernels.

use super::elementwise::for_chunks;

fn image(shape: &[usize]) -> [usize; 4] {
    match *shape {
        [n, c, h, w] => [n, c, h, w],
        _ => panic!("expected an NCHW shape, got {shape:?}"),
    }
}

/// Nearest-neighbour ×2: [N, C, H, W] → [N, C, 2H, 2W],
/// y[oy, ox] = x[oy / 2, ox / 2].
pub fn upsample_nearest2x(x: &[f32], x_shape: &[usize]) -> Vec<f32> {
    let [n, c, h, w] = image(x_shape);
    let mut y = crate::cpu::buffers::scratch(4 * n * c * h * w);
    if y.is_empty() {
        return y;
    }
    for_chunks(&mut y, 2 * w, |row, out| {
        // Output row `row` of all planes is input row row / 2 (planes stack).
        let src = &x[(row / 2) * w..(row / 2 + 1) * w];
        for (pair, &v) in out.chunks_exact_mut(2).zip(src) {
            pair[0] = v;
            pair[1] = v;
        }
    });
    y
}

/// Gradient of [`upsample_nearest2x`] from `grad_out` of shape
/// [N, C, 2H, 2W]: each input pixel sums its 2×2 block, as
/// (top-left + top-right) + (bottom-left + bottom-right).
pub fn upsample_nearest2x_backward(grad_out: &[f32], grad_shape: &[usize]) -> Vec<f32> {
    let [n, c, oh, ow] = image(grad_shape);
    let (h, w) = (oh / 2, ow / 2);
    let mut dx = crate::cpu::buffers::zeroed(n * c * h * w);
    if dx.is_empty() {
        return dx;
    }
    for_chunks(&mut dx, w, |row, out| {
        // Input row `row` (over stacked planes) covers output rows 2·row, 2·row + 1.
        let top = &grad_out[2 * row * ow..(2 * row + 1) * ow];
        let bottom = &grad_out[(2 * row + 1) * ow..(2 * row + 2) * ow];
        for ((o, t), b) in out
            .iter_mut()
            .zip(top.chunks_exact(2))
            .zip(bottom.chunks_exact(2))
        {
            *o = (t[0] + t[1]) + (b[0] + b[1]);
        }
    });
    dx
}

/// Source taps (lo, hi) of output index d along an axis of `size`, and the
/// weight of `lo` (that of `hi` is 1 − it). At scale 2 with k = d / 2, the
/// source coordinate max(0, (d + ½)/2 − ½) gives
///   d = 2k:     0.25·(k − 1) + 0.75·k   (k = 0 clamps to row 0 alone)
///   d = 2k + 1: 0.75·k + 0.25·(k + 1)   (k + 1 clamped to size − 1).
#[inline]
fn taps(d: usize, size: usize) -> (usize, usize, f32) {
    let k = d / 2;
    if d % 2 == 1 {
        (k, (k + 1).min(size - 1), 0.75)
    } else {
        (k.max(1) - 1, k, 0.25)
    }
}

/// Bilinear ×2 with `align_corners=False` (edges clamp):
/// [N, C, H, W] → [N, C, 2H, 2W].
pub fn upsample_bilinear2x(x: &[f32], x_shape: &[usize]) -> Vec<f32> {
    let [n, c, h, w] = image(x_shape);
    let mut y = crate::cpu::buffers::scratch(4 * n * c * h * w);
    if y.is_empty() {
        return y;
    }
    for_chunks(&mut y, 2 * w, |row, out| {
        let (plane, oy) = (row / (2 * h), row % (2 * h));
        let (lo, hi, wr) = taps(oy, h);
        let xp = &x[plane * h * w..(plane + 1) * h * w];
        let (r0, r1) = (&xp[lo * w..(lo + 1) * w], &xp[hi * w..(hi + 1) * w]);
        // Columns first, then rows, as on the GPU.
        let px = |c0: usize, c1: usize, wc: f32| {
            let top = wc * r0[c0] + (1.0 - wc) * r0[c1];
            let bottom = wc * r1[c0] + (1.0 - wc) * r1[c1];
            wr * top + (1.0 - wr) * bottom
        };
        // Output columns 2k and 2k + 1, with the taps of [`taps`] inlined.
        for (k, pair) in out.chunks_exact_mut(2).enumerate() {
            pair[0] = px(k.max(1) - 1, k, 0.25);
            pair[1] = px(k, (k + 1).min(w - 1), 0.75);
        }
    });
    y
}

/// Weights with which source index q feeds output indices 2q − 1, 2q,
/// 2q + 1, 2q + 2 (from [`taps`]): 0.25 as the upper tap of 2q − 1 (when
/// q ≥ 1), 0.75 for 2q and 2q + 1 plus 0.25 where a clamped tap lands on q
/// again (q = 0, q = size − 1), 0.25 as the lower tap of 2q + 2 (when
/// q ≤ size − 2); no other output reads q.
#[inline]
fn weights(q: usize, size: usize) -> [f32; 4] {
    [
        if q >= 1 { 0.25 } else { 0.0 },
        if q == 0 { 1.0 } else { 0.75 },
        if q + 1 == size { 1.0 } else { 0.75 },
        if q + 1 < size { 0.25 } else { 0.0 },
    ]
}

/// Gradient of [`upsample_bilinear2x`] for an input of shape `x_shape`:
/// dx[h, w] = Σ_a wr_a · (Σ_b wc_b · g[2h − 1 + a, 2w − 1 + b]).
pub fn upsample_bilinear2x_backward(grad_out: &[f32], x_shape: &[usize]) -> Vec<f32> {
    let [n, c, h, w] = image(x_shape);
    // Every row is cleared before its sums are added.
    let mut dx = crate::cpu::buffers::scratch(n * c * h * w);
    if dx.is_empty() {
        return dx;
    }
    let ow = 2 * w;
    // The sum for one input column `xx` of one gradient row: its column
    // taps with their (edge-clamped) weights, skipping zero ones.
    let column = |g_row: &[f32], xx: usize| {
        let mut s = 0.0f32;
        for (b, &wb) in weights(xx, w).iter().enumerate() {
            if wb != 0.0 {
                s += wb * g_row[2 * xx + b - 1];
            }
        }
        s
    };
    for_chunks(&mut dx, w, |row, out| {
        let (plane, yy) = (row / h, row % h);
        let wr = weights(yy, h);
        let gp = &grad_out[plane * 4 * h * w..(plane + 1) * 4 * h * w];
        out.fill(0.0);
        // Row taps outermost, each adding its weighted column sums to every
        // output: the same terms in the same order as summing per output
        // (0 + first term is exact), but the interior columns, whose four
        // taps all exist, run as one loop without branches or index checks,
        // which took most of this pass's time as one loop over outputs.
        for (a, &wa) in wr.iter().enumerate() {
            if wa == 0.0 {
                continue;
            }
            // Zero weights guard the out-of-range taps (row or column −1
            // and 2·size), so the index is only formed where it exists.
            let g_row = &gp[(2 * yy + a - 1) * ow..(2 * yy + a) * ow];
            if w >= 3 {
                // Column xx in 1..w − 1 reads g_row[2xx − 1..2xx + 3]: the
                // pair starting at 2xx − 1 and the next one.
                let pairs = g_row[1..ow - 1].chunks_exact(2);
                let inner = out[1..w - 1]
                    .iter_mut()
                    .zip(pairs.clone().zip(pairs.skip(1)));
                for (o, (p, q)) in inner {
                    let mut s = 0.0f32;
                    s += 0.25 * p[0];
                    s += 0.75 * p[1];
                    s += 0.75 * q[0];
                    s += 0.25 * q[1];
                    *o += wa * s;
                }
            }
            out[0] += wa * column(g_row, 0);
            if w >= 2 {
                out[w - 1] += wa * column(g_row, w - 1);
            }
        }
    });
    dx
}
