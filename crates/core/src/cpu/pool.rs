//! Pooling on the CPU with the conventions of `ops/pool.rs`: average pooling
//! counts padded taps as zeros (divisor kh·kw), max pooling never picks a
//! padded tap and keeps the first maximum in row-major window order, its
//! flat index y·W + x in the (n, c) plane stored as f32. Backward passes
//! gather per input pixel over the windows that hold it, summing in the
//! same order as the GPU kernels.
//!
//! Geometry is validated by the caller: NCHW input, positive kernel and
//! stride, padding at most half the kernel, kernel within the padded image.

use super::elementwise::{for_chunks, for_chunks2, CHUNK};
use super::reduce::sum_mask;

/// Pooling geometry: input [n, c, h, w], output [n, c, oh, ow].
struct Window {
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Window {
    fn new(
        x_shape: &[usize],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> Window {
        let [_, _, h, w] = image(x_shape);
        Window {
            h,
            w,
            oh: (h + 2 * padding[0] - kernel[0]) / stride[0] + 1,
            ow: (w + 2 * padding[1] - kernel[1]) / stride[1] + 1,
            kernel,
            stride,
            padding,
        }
    }

    /// Image rows [lo, hi) of window row `o` along axis `a`: the window
    /// [o·s − p, o·s − p + k) clipped to the image (never empty, as p ≤ k/2).
    fn span(&self, o: usize, a: usize) -> (usize, usize) {
        let size = [self.h, self.w][a];
        let (k, s, p) = (self.kernel[a], self.stride[a], self.padding[a]);
        ((o * s).max(p) - p, (o * s + k).min(size + p) - p)
    }

    /// Window indices [lo, hi) along axis `a` whose window holds image index
    /// `i`: with q = i + p, o·s ≤ q ≤ o·s + k − 1, i.e.
    /// ceil((q − k + 1)/s) ≤ o ≤ floor(q/s), clipped to the output.
    fn windows(&self, i: usize, a: usize) -> (usize, usize) {
        let count = [self.oh, self.ow][a];
        let (k, s) = (self.kernel[a], self.stride[a]);
        let q = i + self.padding[a];
        let lo = if q + 1 > k {
            (q + 1 - k).div_ceil(s)
        } else {
            0
        };
        (lo, (q / s + 1).min(count))
    }

    /// The GPU's 1/(kh·kw), rounded to f32.
    fn inv_area(&self) -> f32 {
        1.0 / (self.kernel[0] * self.kernel[1]) as f32
    }
}

fn image(shape: &[usize]) -> [usize; 4] {
    match *shape {
        [n, c, h, w] => [n, c, h, w],
        _ => panic!("expected an NCHW shape, got {shape:?}"),
    }
}

/// Average pooling (count_include_pad, floor output size):
/// [N, C, H, W] → [N, C, (H + 2p − k)/s + 1, …].
pub fn avg_pool2d(
    x: &[f32],
    x_shape: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Vec<f32> {
    let win = Window::new(x_shape, kernel, stride, padding);
    let planes = x_shape[0] * x_shape[1];
    let mut y = crate::cpu::buffers::zeroed(planes * win.oh * win.ow);
    if y.is_empty() {
        return y;
    }
    let cols: Vec<(usize, usize)> = (0..win.ow).map(|o| win.span(o, 1)).collect();
    let inv = win.inv_area();
    for_chunks(&mut y, win.ow, |row, out| {
        let (plane, oy) = (row / win.oh, row % win.oh);
        let (y0, y1) = win.span(oy, 0);
        let xp = &x[plane * win.h * win.w..(plane + 1) * win.h * win.w];
        for (o, &(x0, x1)) in out.iter_mut().zip(&cols) {
            let mut acc = 0.0f32;
            for yy in y0..y1 {
                for &v in &xp[yy * win.w + x0..yy * win.w + x1] {
                    acc += v;
                }
            }
            *o = acc * inv;
        }
    });
    y
}

/// Gradient of [`avg_pool2d`] for an input of shape `x_shape`:
/// dx[y, x] = (Σ over the windows that hold (y, x) of g) / (kh·kw).
pub fn avg_pool2d_backward(
    grad_out: &[f32],
    x_shape: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Vec<f32> {
    let win = Window::new(x_shape, kernel, stride, padding);
    let mut dx = crate::cpu::buffers::zeroed(x_shape.iter().product());
    if dx.is_empty() {
        return dx;
    }
    let cols: Vec<(usize, usize)> = (0..win.w).map(|i| win.windows(i, 1)).collect();
    let inv = win.inv_area();
    let plane_out = win.oh * win.ow;
    for_chunks(&mut dx, win.w, |row, out| {
        let (plane, yy) = (row / win.h, row % win.h);
        let (r0, r1) = win.windows(yy, 0);
        let gp = &grad_out[plane * plane_out..(plane + 1) * plane_out];
        for (o, &(c0, c1)) in out.iter_mut().zip(&cols) {
            let mut acc = 0.0f32;
            // A pixel in no window (a gap between strided windows, or past
            // the last one) has an empty range, possibly with lo > hi.
            if c0 < c1 {
                for oy in r0..r1 {
                    for &g in &gp[oy * win.ow + c0..oy * win.ow + c1] {
                        acc += g;
                    }
                }
            }
            *o = acc * inv;
        }
    });
    dx
}

/// Max pooling: (output, indices), the index of each output's maximum as
/// f32 flat position y·W + x within its (n, c) plane (exact for planes of up
/// to 2^24 pixels, which the caller checks). Padded taps never win; among
/// equal values the first in row-major window order does.
pub fn max_pool2d(
    x: &[f32],
    x_shape: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> (Vec<f32>, Vec<f32>) {
    let win = Window::new(x_shape, kernel, stride, padding);
    let planes = x_shape[0] * x_shape[1];
    let n = planes * win.oh * win.ow;
    let (mut y, mut idx) = (
        crate::cpu::buffers::zeroed(n),
        crate::cpu::buffers::zeroed(n),
    );
    if n == 0 {
        return (y, idx);
    }
    let cols: Vec<(usize, usize)> = (0..win.ow).map(|o| win.span(o, 1)).collect();
    for_chunks2(&mut y, &mut idx, win.ow, |row, out, out_idx| {
        let (plane, oy) = (row / win.oh, row % win.oh);
        let (y0, y1) = win.span(oy, 0);
        let xp = &x[plane * win.h * win.w..(plane + 1) * win.h * win.w];
        for ((o, oi), &(x0, x1)) in out.iter_mut().zip(out_idx.iter_mut()).zip(&cols) {
            let mut best_at = y0 * win.w + x0;
            let mut best = xp[best_at];
            for yy in y0..y1 {
                for xx in x0..x1 {
                    let at = yy * win.w + xx;
                    if xp[at] > best {
                        best = xp[at];
                        best_at = at;
                    }
                }
            }
            *o = best;
            *oi = best_at as f32;
        }
    });
    (y, idx)
}

/// Gradient of [`max_pool2d`]: each input pixel sums the gradients of the
/// windows that hold it and whose stored argmax (`indices`) it is.
pub fn max_pool2d_backward(
    grad_out: &[f32],
    indices: &[f32],
    x_shape: &[usize],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
) -> Vec<f32> {
    let win = Window::new(x_shape, kernel, stride, padding);
    let mut dx = crate::cpu::buffers::zeroed(x_shape.iter().product());
    if dx.is_empty() {
        return dx;
    }
    let cols: Vec<(usize, usize)> = (0..win.w).map(|i| win.windows(i, 1)).collect();
    let plane_out = win.oh * win.ow;
    for_chunks(&mut dx, win.w, |row, out| {
        let (plane, yy) = (row / win.h, row % win.h);
        let (r0, r1) = win.windows(yy, 0);
        let gp = &grad_out[plane * plane_out..(plane + 1) * plane_out];
        let ip = &indices[plane * plane_out..(plane + 1) * plane_out];
        for (xx, (o, &(c0, c1))) in out.iter_mut().zip(&cols).enumerate() {
            let me = (yy * win.w + xx) as f32;
            let mut acc = 0.0f32;
            for oy in r0..r1 {
                for ox in c0..c1 {
                    let at = oy * win.ow + ox;
                    if ip[at] == me {
                        acc += gp[at];
                    }
                }
            }
            *o = acc;
        }
    });
    dx
}

/// Mean over each (n, c) plane: [N, C, H, W] → [N, C, 1, 1] (planes non-empty).
pub fn adaptive_avg_pool_1x1(x: &[f32], x_shape: &[usize]) -> Vec<f32> {
    let [_, _, h, w] = image(x_shape);
    sum_mask(
        x,
        x_shape,
        &[false, false, true, true],
        1.0 / (h * w) as f32,
    )
}

/// Gradient of [`adaptive_avg_pool_1x1`]: dx[n, c, y, x] = g[n, c] / (H·W).
pub fn adaptive_avg_pool_1x1_backward(grad_out: &[f32], x_shape: &[usize]) -> Vec<f32> {
    let [_, _, h, w] = image(x_shape);
    let hw = h * w;
    let mut dx = crate::cpu::buffers::zeroed(x_shape.iter().product());
    if dx.is_empty() {
        return dx;
    }
    let scale = 1.0 / hw as f32;
    // Whole planes per task, or slices of one plane when planes are large.
    let len = if hw >= CHUNK {
        CHUNK
    } else {
        hw * (CHUNK / hw)
    };
    for_chunks(&mut dx, len, |t, chunk| {
        // Fill the chunk plane by plane: one division per plane touched.
        let (start, end) = (t * len, t * len + chunk.len());
        let mut at = start;
        while at < end {
            let plane = at / hw;
            let stop = ((plane + 1) * hw).min(end);
            chunk[at - start..stop - start].fill(grad_out[plane] * scale);
            at = stop;
        }
    });
    dx
}
