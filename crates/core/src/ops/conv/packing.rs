//! How the wgpu kernels see a convolution's operands: the shared uniform
//! block, activations and weights packed into vec4 quads (`conv2d_pack*.wgsl`),
//! and the reduction of partial-sum rows (`conv2d_sum_rows.wgsl`).

use super::geometry::Geometry;
use super::{div4, MAX_LOOP};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The uniform block of `conv2d_common.wgsl`; fields a kernel does not use are 0.
pub(super) struct Params<'a> {
    pub(super) m: usize,
    pub(super) hout: usize,
    pub(super) wout: usize,
    pub(super) hin: usize,
    pub(super) win: usize,
    pub(super) zero_px: usize,
    pub(super) px_vec4: usize,
    pub(super) quads: usize,
    pub(super) geo: &'a Geometry,
    pub(super) cout: usize,
    pub(super) cog: usize,
    pub(super) wrow: usize,
    pub(super) tiles: usize,
    pub(super) blocks: usize,
    pub(super) total: usize,
    pub(super) has_bias: bool,
    pub(super) cig: usize,
    pub(super) gy_vec4: usize,
    pub(super) gy_quads: usize,
    pub(super) tiles_i: usize,
    pub(super) chunk: usize,
    pub(super) chunks: usize,
    pub(super) co_pad: usize,
    pub(super) ci_pad: usize,
}

impl Params<'_> {
    pub(super) fn words(&self) -> Vec<u32> {
        let a = &self.geo.args;
        let inverse = |s: usize| (1.0 / s as f32).to_bits();
        let u = |values: &[usize]| values.iter().map(|&v| v as u32).collect::<Vec<_>>();
        let mut words = u(&[
            self.m,
            self.hout,
            self.wout,
            self.hin,
            self.win,
            self.zero_px,
            self.px_vec4,
            self.quads,
            self.geo.kh,
            self.geo.kw,
            a.stride[0],
            a.stride[1],
            a.padding[0],
            a.padding[1],
            a.dilation[0],
            a.dilation[1],
            self.cout,
            self.cog,
            self.wrow,
            self.tiles,
            self.blocks,
            self.total,
        ]);
        words.extend([
            inverse(a.stride[0]),
            inverse(a.stride[1]),
            self.has_bias as u32,
        ]);
        words.extend(u(&[
            self.cig,
            self.gy_vec4,
            self.gy_quads,
            self.tiles_i,
            self.chunk,
            self.chunks,
            self.geo.groups,
            self.co_pad,
            self.ci_pad,
        ]));
        words
    }
}

/// A grid of `total` workgroups within the per-dimension limit; the kernels
/// rebuild the id as `x + nx·(y + ny·z)` and skip ids from `total` on.
pub(super) fn workgroup_grid(dev: &Device, op: &str, total: usize) -> Result<[u32; 3]> {
    let max = dev.info().max_workgroups_per_dimension.max(1) as usize;
    let x = total.clamp(1, max);
    let y = total.div_ceil(x).min(max);
    let z = total.div_ceil(x * y);
    if z > max || total > u32::MAX as usize {
        return Err(Error::TooLarge(format!(
            "{op}: {total} workgroups exceed this adapter's grid of {max}³"
        )));
    }
    Ok([x, y, z].map(|v| v as u32))
}

/// Packs `t` (`[N, C, H, W]`) as `[N·H·W + 1 pixels][groups][quads][4]`: each
/// group's channels zero-padded to `quads` vec4s, the last pixel all zero.
pub(super) fn pack_activation(t: &Tensor, groups: usize, quads: usize, op: &str) -> Result<Tensor> {
    let s = t.shape();
    let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
    let dev = t.device();
    let max = dev.info().max_workgroups_per_dimension as usize;
    if n + 1 > max {
        return Err(Error::TooLarge(format!(
            "{op}: a batch of {n} ({s:?}) needs {} workgroup rows; this adapter allows {max}",
            n + 1
        )));
    }
    let packed = Tensor::uninit(dev, &[(n * hw + 1) * groups * quads * 4], op)?;
    let pipeline = dev.pipeline("conv2d/pack", || {
        include_str!("../../shaders/conv2d_pack.wgsl").into()
    });
    let params = [n, c, hw, groups, c / groups, quads].map(|v| v as u32);
    let [gx, gy, _] = dev.linear_grid(groups * quads * hw);
    dev.dispatch(
        &pipeline,
        &params,
        &[t.buffer(), packed.buffer()],
        [gx, gy, n as u32 + 1],
    )?;
    Ok(packed)
}

/// Packs `w` into rows of output-channel quads (`conv2d_pack_weight.wgsl`),
/// the output channels of a group padded to a multiple of `tile_c`.
/// `transposed` swaps the roles of Cin and Cout, for the input gradient.
pub(super) fn pack_weight(
    w: &Tensor,
    geo: &Geometry,
    transposed: bool,
    tile_c: usize,
    op: &str,
) -> Result<Tensor> {
    let taps = geo.taps();
    let (s_count, o_count, s_stride, o_stride) = if geo.diagonal {
        // Channel o of a folded group is weight row o; it only feeds itself.
        (4, 4, 0, taps)
    } else if transposed {
        (geo.cog, geo.cig, geo.cig * taps, taps)
    } else {
        (geo.cig, geo.cog, taps, geo.cig * taps)
    };
    let quads = div4(s_count);
    let wrow = o_count.div_ceil(tile_c) * tile_c / 4;
    let total = geo.groups * taps * quads * 4 * wrow;
    let dev = w.device();
    let packed = Tensor::uninit(dev, &[total * 4], op)?;
    let pipeline = dev.pipeline("conv2d/pack_weight", || {
        include_str!("../../shaders/conv2d_pack_weight.wgsl").into()
    });
    let params = [
        total,
        taps,
        quads,
        wrow,
        s_count,
        o_count,
        s_stride,
        o_stride,
        geo.cog * geo.weight_cig() * taps,
        geo.diagonal as usize,
    ]
    .map(|v| v as u32);
    dev.dispatch(
        &pipeline,
        &params,
        &[w.buffer(), packed.buffer()],
        dev.linear_grid(total),
    )?;
    Ok(packed)
}

/// How a row of partial sums maps onto the reduced output
/// (`conv2d_sum_rows.wgsl`).
pub(super) struct RowLayout {
    pub(super) row_len: usize,
    pub(super) taps: usize,
    pub(super) cig: usize,
    pub(super) cog: usize,
    pub(super) co_pad: usize,
    pub(super) ci_pad: usize,
    /// Folded depthwise weights: output channel c reads its own column.
    pub(super) diagonal: bool,
}

impl RowLayout {
    /// Rows already in output order.
    pub(super) fn plain(len: usize) -> RowLayout {
        RowLayout {
            row_len: len,
            taps: 1,
            cig: 1,
            cog: len,
            co_pad: len,
            ci_pad: 1,
            diagonal: false,
        }
    }

    /// Values in the output: groups · taps · cog · cig.
    fn len(&self) -> usize {
        self.row_len / (self.co_pad * self.ci_pad) * self.cog * self.cig
    }
}

/// `out` = the sum of the `rows` rows of `part`, mapped by `layout`; in
/// passes of at most MAX_LOOP rows.
pub(super) fn sum_rows(
    part: &Tensor,
    rows: usize,
    layout: &RowLayout,
    out: &Tensor,
    op: &str,
) -> Result<()> {
    let dev = part.device();
    let pipeline = dev.pipeline("conv2d/sum_rows", || {
        include_str!("../../shaders/conv2d_sum_rows.wgsl").into()
    });
    let (mut part, mut rows) = (part.clone(), rows);
    loop {
        let blocks = rows.div_ceil(MAX_LOOP);
        let plain = RowLayout::plain(layout.row_len);
        let (dst, map) = if blocks == 1 {
            (out.clone(), layout)
        } else {
            (Tensor::uninit(dev, &[blocks * layout.row_len], op)?, &plain)
        };
        let len = map.len();
        let params = [
            len,
            rows,
            MAX_LOOP.min(rows),
            blocks * len,
            map.row_len,
            map.taps,
            map.cig,
            map.cog,
            map.co_pad,
            map.ci_pad,
            map.diagonal as usize,
        ]
        .map(|v| v as u32);
        dev.dispatch(
            &pipeline,
            &params,
            &[part.buffer(), dst.buffer()],
            dev.linear_grid(blocks * len),
        )?;
        if blocks == 1 {
            return Ok(());
        }
        (part, rows) = (dst, blocks);
    }
}
