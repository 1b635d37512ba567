//! Layout kernels on the CPU: concat/split, permute, pixel shuffle/unshuffle,
//! broadcast and its adjoint `sum_to_shape`, with the index maps of
//! `ops/layout.rs`. All but concat/split are one gather,
//! out[i] = x[Σ_d c_d · strides[d]] over the row-major multi-index c of i.

use super::elementwise::{
    for_chunks, for_chunks_if, merge_dims, par_copy, Odometer, CHUNK, PAR_MIN,
};
use super::reduce::sum_mask;
use crate::shape;

/// Side of the square tiles in which a gather transposes, through a 4 KiB
/// buffer: each side is then touched in contiguous runs of 32 values, so
/// power-of-two strides (64 KiB between channel planes) cannot make the
/// runs evict each other from a cache set.
const TILE: usize = 32;

/// out[i] = scale · x[Σ_d c_d · strides[d]], c the row-major multi-index of i
/// over `view`. Scale 1 is exact, so this is also the plain gather.
///
/// After unit dimensions are dropped and contiguous neighbours merged, the
/// innermost dimension decides the loop: stride 1 copies rows, stride 0
/// fills them (broadcast); otherwise, when another dimension q has stride 1,
/// the map is a batch of transposes between q and the innermost dimension,
/// done in [`TILE`]-square tiles so reads and writes both stay contiguous.
pub(crate) fn gather_scaled(x: &[f32], view: &[usize], strides: &[usize], scale: f32) -> Vec<f32> {
    let n = shape::numel(view);
    let mut out = crate::cpu::buffers::scratch(n);
    if n == 0 {
        return out;
    }
    let (dims, st) = merge_dims(view, &[strides]);
    let s = &st[0];
    if dims.is_empty() {
        out[0] = x[0] * scale;
        return out;
    }
    let k = dims.len() - 1;
    if s[k] <= 1 {
        let len = dims[k];
        let rows_per_task = (CHUNK / len).max(1);
        let (od, os) = (&dims[..k], &s[..k]);
        let contiguous = s[k] == 1;
        for_chunks(&mut out, rows_per_task * len, |t, chunk| {
            let mut pos = Odometer::new(od, os, &[], t * rows_per_task);
            for row in chunk.chunks_mut(len) {
                if contiguous {
                    for (o, &v) in row.iter_mut().zip(&x[pos.a..pos.a + len]) {
                        *o = v * scale;
                    }
                } else {
                    row.fill(x[pos.a] * scale);
                }
                pos.step();
            }
        });
        return out;
    }
    let Some(q) = s.iter().position(|&v| v == 1) else {
        // No unit stride anywhere (not produced by the ops here): walk the
        // output with an odometer.
        for_chunks(&mut out, CHUNK, |t, chunk| {
            let mut pos = Odometer::new(&dims, s, &[], t * CHUNK);
            for o in chunk {
                *o = x[pos.a] * scale;
                pos.step();
            }
        });
        return out;
    };
    // Output = [outer dims < q] × [d_q] × [middle dims] × [innermost]; a
    // d_q slice holds `slice` contiguous outputs, and `TILE` slices are one task.
    let slice: usize = dims[q + 1..].iter().product();
    let (od, os) = (&dims[..q], &s[..q]);
    let (md, ms) = (&dims[q + 1..k], &s[q + 1..k]);
    let (dl, sl) = (dims[k], s[k]);
    let mids = slice / dl;
    for_chunks(&mut out, dims[q] * slice, |b, block| {
        let base = Odometer::new(od, os, &[], b).a;
        for_chunks(block, TILE * slice, |t, tile| {
            let t0 = t * TILE;
            let tq = tile.len() / slice;
            let mut buf = [0.0f32; TILE * TILE];
            let mut mid = Odometer::new(md, ms, &[], 0);
            for m in 0..mids {
                let src_m = base + mid.a + t0;
                for j0 in (0..dl).step_by(TILE) {
                    let tj = (j0 + TILE).min(dl) - j0;
                    // Read: input row j holds the tile's d_q values contiguously.
                    for j in 0..tj {
                        let src = src_m + (j0 + j) * sl;
                        let dst = &mut buf[j * TILE..j * TILE + tq];
                        for (bv, &v) in dst.iter_mut().zip(&x[src..src + tq]) {
                            *bv = v * scale;
                        }
                    }
                    // Write: output run (d_q, m, j0 ..) is contiguous.
                    for dq in 0..tq {
                        let at = dq * slice + m * dl + j0;
                        for (j, o) in tile[at..at + tj].iter_mut().enumerate() {
                            *o = buf[j * TILE + dq];
                        }
                    }
                }
                mid.step();
            }
        });
    });
    out
}

/// Copies `blocks` rows of `len` values from `src` (row stride `src_stride`,
/// offset `src_off`) into `dst` (row stride `dst_stride`, offset `dst_off`);
/// `dst` holds exactly `blocks` rows.
#[allow(clippy::too_many_arguments)]
fn copy_blocks(
    dst: &mut [f32],
    dst_stride: usize,
    dst_off: usize,
    src: &[f32],
    src_stride: usize,
    src_off: usize,
    blocks: usize,
    len: usize,
) {
    if blocks == 0 || len == 0 {
        return;
    }
    let big = blocks * len >= PAR_MIN;
    if !big || blocks >= 4 * rayon::current_num_threads() {
        for_chunks_if(big, dst, dst_stride, |o, row| {
            let from = o * src_stride + src_off;
            row[dst_off..dst_off + len].copy_from_slice(&src[from..from + len]);
        });
    } else {
        // A few long rows: split each copy instead.
        for o in 0..blocks {
            let (to, from) = (o * dst_stride + dst_off, o * src_stride + src_off);
            par_copy(&mut dst[to..to + len], &src[from..from + len]);
        }
    }
}

/// Concatenates `xs` (shapes `shapes`, equal outside `axis`) along `axis`.
pub fn concat(xs: &[&[f32]], shapes: &[&[usize]], axis: usize) -> Vec<f32> {
    let first = shapes[0];
    let outer = shape::numel(&first[..axis]);
    let inner = shape::numel(&first[axis + 1..]);
    let total: usize = shapes.iter().map(|s| s[axis]).sum();
    let mut out = crate::cpu::buffers::scratch(outer * total * inner);
    let mut offset = 0;
    for (x, s) in xs.iter().zip(shapes) {
        let len = s[axis] * inner;
        copy_blocks(
            &mut out,
            total * inner,
            offset * inner,
            x,
            len,
            0,
            outer,
            len,
        );
        offset += s[axis];
    }
    out
}

/// Splits `x` along `axis` into pieces of `sizes` (adding up to
/// `shape[axis]`): the backward of [`concat`].
pub fn split(x: &[f32], shape: &[usize], axis: usize, sizes: &[usize]) -> Vec<Vec<f32>> {
    let outer = shape::numel(&shape[..axis]);
    let inner = shape::numel(&shape[axis + 1..]);
    let row = shape[axis] * inner;
    let mut offset = 0;
    sizes
        .iter()
        .map(|&size| {
            let len = size * inner;
            let mut piece = crate::cpu::buffers::scratch(outer * len);
            copy_blocks(&mut piece, len, 0, x, row, offset * inner, outer, len);
            offset += size;
            piece
        })
        .collect()
}

/// Output dimension `i` is input dimension `dims[i]` (NumPy `transpose`).
pub fn permute(x: &[f32], shape: &[usize], dims: &[usize]) -> Vec<f32> {
    let own = shape::strides(shape);
    let view: Vec<usize> = dims.iter().map(|&d| shape[d]).collect();
    let strides: Vec<usize> = dims.iter().map(|&d| own[d]).collect();
    gather_scaled(x, &view, &strides, 1.0)
}

/// [N, C·r², H, W] → [N, C, H·r, W·r] with PyTorch's channel order:
/// out[n, c, h·r + i, w·r + j] = x[n, c·r² + i·r + j, h, w].
pub fn pixel_shuffle(x: &[f32], shape: &[usize], r: usize) -> Vec<f32> {
    let [n, cin, h, w] = image(shape);
    let c = cin / (r * r);
    // x as [N·C, i, j, h, w]; the output walks [N·C, h, i, w, j].
    let view = [n * c, h, r, w, r];
    let strides = [r * r * h * w, w, r * h * w, 1, h * w];
    gather_scaled(x, &view, &strides, 1.0)
}

/// [N, C, H·r, W·r] → [N, C·r², H, W], the inverse (and backward) of
/// [`pixel_shuffle`].
pub fn pixel_unshuffle(x: &[f32], shape: &[usize], r: usize) -> Vec<f32> {
    let [n, c, hr, wr] = image(shape);
    let (h, w) = (hr / r, wr / r);
    // x as [N·C, h, i, w, j]; the output walks [N·C, i, j, h, w].
    let view = [n * c, r, r, h, w];
    let strides = [hr * wr, wr, 1, r * wr, r];
    gather_scaled(x, &view, &strides, 1.0)
}

/// Materialises `x` (shape `x_shape`) broadcast by NumPy rules to `shape`.
pub fn broadcast_to(x: &[f32], x_shape: &[usize], shape: &[usize]) -> Vec<f32> {
    let strides = shape::broadcast_strides(x_shape, shape);
    gather_scaled(x, shape, &strides, 1.0)
}

/// Sums `x` down to `shape`, a shape that broadcasts to `x_shape`: over the
/// leading dimensions `shape` lacks and those where it has 1. The backward of
/// every broadcasting op (and of [`broadcast_to`]).
pub fn sum_to_shape(x: &[f32], x_shape: &[usize], shape: &[usize]) -> Vec<f32> {
    let pad = x_shape.len() - shape.len();
    let mask: Vec<bool> = (0..x_shape.len())
        .map(|d| d < pad || (shape[d - pad] == 1 && x_shape[d] != 1))
        .collect();
    sum_mask(x, x_shape, &mask, 1.0)
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

    /// out[i] = scale · x[Σ c_d · strides[d]] written out directly, one
    /// division chain per element.
    fn naive(x: &[f32], view: &[usize], strides: &[usize], scale: f32) -> Vec<f32> {
        (0..shape::numel(view))
            .map(|i| {
                let (mut rem, mut src) = (i, 0);
                for d in (0..view.len()).rev() {
                    src += (rem % view[d]) * strides[d];
                    rem /= view[d];
                }
                x[src] * scale
            })
            .collect()
    }

    #[test]
    fn gather_matches_the_index_map_on_every_path() {
        let x: Vec<f32> = (0..200_000).map(|i| i as f32).collect();
        let cases: [(&[usize], &[usize]); 7] = [
            // Rows copied, rows filled (broadcast), a tiled transpose with
            // middle dimensions and partial tiles, a large threaded one,
            // unit dimensions, and maps with no unit stride (the fallback).
            (&[3, 4, 5], &[20, 5, 1]),
            (&[3, 4, 5], &[1, 0, 0]),
            (&[2, 37, 3, 45], &[5000, 1, 37, 111]),
            (&[300, 257], &[1, 300]),
            (&[1, 6, 1, 7], &[0, 7, 0, 1]),
            (&[4, 5, 6], &[2, 300, 7]),
            (&[40_000, 3], &[3, 2]),
        ];
        for (view, strides) in cases {
            let got = gather_scaled(&x, view, strides, 0.5);
            assert_eq!(got, naive(&x, view, strides, 0.5), "{view:?} {strides:?}");
        }
    }
}
