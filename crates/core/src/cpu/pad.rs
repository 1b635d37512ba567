//! Reflect padding on the CPU, forward and its gather-form backward, with
//! the index maps and summation order of the `pad_reflect*.wgsl` kernels.

use super::elementwise::for_chunks;

/// Index of input row (or column) read by padded position `o`, where the
/// input of `size` starts at `before`: reflection about the edge samples,
/// without repeating them (PyTorch's `reflect`). Needs `before < size` and
/// an `after` padding below `size`, which the op checks.
#[inline]
pub(crate) fn reflect(o: usize, before: usize, size: usize) -> usize {
    if o < before {
        before - o
    } else if o - before < size {
        o - before
    } else {
        2 * (size - 1) - (o - before)
    }
}

/// Padded positions along one axis that read input index `i`: the direct
/// one, then its mirror in the leading padding, then in the trailing one.
/// Returns the count and the positions.
#[inline]
pub(crate) fn sources(i: usize, before: usize, size: usize, after: usize) -> (usize, [usize; 3]) {
    let mut out = [before + i, 0, 0];
    let mut k = 1;
    if i >= 1 && i <= before {
        out[k] = before - i;
        k += 1;
    }
    // Position before + 2(size − 1) − i lies in the trailing padding when
    // i ≤ size − 2 and it is below before + size + after.
    if i + 2 <= size && 2 * (size - 1) < size + after + i {
        out[k] = before + 2 * (size - 1) - i;
        k += 1;
    }
    (k, out)
}

/// [N, C, H, W] → [N, C, H + top + bottom, W + left + right] by reflection.
pub fn pad_reflect(x: &[f32], shape: &[usize], pad: [usize; 4]) -> Vec<f32> {
    let [n, c, h, w] = image(shape);
    let [top, bottom, left, right] = pad;
    let (oh, ow) = (h + top + bottom, w + left + right);
    let mut y = crate::cpu::buffers::zeroed(n * c * oh * ow);
    if y.is_empty() {
        return y;
    }
    let columns: Vec<usize> = (0..ow).map(|o| reflect(o, left, w)).collect();
    // One output row per task: it copies one input row through the column map.
    for_chunks(&mut y, ow, |row, out| {
        let (plane, oy) = (row / oh, row % oh);
        let src = &x[(plane * h + reflect(oy, top, h)) * w..][..w];
        for (o, &ix) in out.iter_mut().zip(&columns) {
            *o = src[ix];
        }
    });
    y
}

/// Gradient of [`pad_reflect`] for an input of `x_shape`: each input pixel
/// sums the up to 3 × 3 padded positions that read it (rows outer, columns
/// inner, each in the order of [`sources`]).
pub fn pad_reflect_backward(g: &[f32], x_shape: &[usize], pad: [usize; 4]) -> Vec<f32> {
    let [n, c, h, w] = image(x_shape);
    let [top, bottom, left, right] = pad;
    let (oh, ow) = (h + top + bottom, w + left + right);
    let mut dx = crate::cpu::buffers::zeroed(n * c * h * w);
    if dx.is_empty() {
        return dx;
    }
    let columns: Vec<(usize, [usize; 3])> = (0..w).map(|i| sources(i, left, w, right)).collect();
    for_chunks(&mut dx, w, |row, out| {
        let (plane, iy) = (row / h, row % h);
        let (ky, ys) = sources(iy, top, h, bottom);
        let base = plane * oh;
        for (o, &(kx, xs)) in out.iter_mut().zip(&columns) {
            let mut s = 0.0f32;
            for &oy in &ys[..ky] {
                let grow = &g[(base + oy) * ow..][..ow];
                for &ox in &xs[..kx] {
                    s += grow[ox];
                }
            }
            *o = s;
        }
    });
    dx
}

fn image(shape: &[usize]) -> [usize; 4] {
    match *shape {
        [n, c, h, w] => [n, c, h, w],
        _ => panic!("expected an NCHW shape, got {shape:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_invert_reflect() {
        for size in 1..7 {
            for before in 0..size {
                for after in 0..size {
                    for i in 0..size {
                        let (k, s) = sources(i, before, size, after);
                        let mut got: Vec<usize> = s[..k].to_vec();
                        got.sort_unstable();
                        let want: Vec<usize> = (0..before + size + after)
                            .filter(|&o| reflect(o, before, size) == i)
                            .collect();
                        assert_eq!(got, want, "i {i} before {before} size {size} after {after}");
                    }
                }
            }
        }
    }
}
