//! The weight and bias gradients on wgpu: chunks of pixels reduced into
//! partial sums that a second kernel adds, so that few weights and many
//! pixels still spread over many invocations.

use super::geometry::Geometry;
use super::packing::{pack_activation, sum_rows, workgroup_grid, Params, RowLayout};
use super::source::{kernel_source, wgrad_register_source};
use super::{
    div4, narrowest_tile, BIAS_CHUNK, MAX_LOOP, REGISTER_WORKGROUP, TILED_TILE, WGRAD_MIN_CHUNK,
    WGRAD_PARTIAL_FLOATS, WGRAD_REGISTER_TILES,
};
use crate::device::KernelVariant;
use crate::error::Result;
use crate::tensor::Tensor;

/// `conv2d_backward_weight` on wgpu for checked operands.
pub(super) fn backward_weight(
    grad_out: &Tensor,
    x: &Tensor,
    geo: &Geometry,
    op: &str,
) -> Result<Tensor> {
    let geo = geo.folded();
    let dev = grad_out.device();
    let register = dev.info().kernel_variant == KernelVariant::Register;
    let (tile_o, tile_i) = if register {
        (
            narrowest_tile(&WGRAD_REGISTER_TILES, geo.cog),
            narrowest_tile(&WGRAD_REGISTER_TILES, geo.cig),
        )
    } else {
        (TILED_TILE, TILED_TILE)
    };
    let pipeline = if register {
        dev.pipeline(&format!("conv2d/wgrad/register/{tile_o}x{tile_i}"), || {
            wgrad_register_source(tile_o, tile_i)
        })
    } else {
        dev.pipeline("conv2d/wgrad/tiled", || {
            kernel_source(include_str!("../../shaders/conv2d_wgrad_tiled.wgsl"))
        })
    };
    // Register tiles load and store whole tiles: the groups' channels are
    // padded to them (with zeros), so that no load reaches into the next
    // group and the partial sums need no conditional stores.
    let (co_pad, ci_pad) = if register {
        (
            geo.cog.next_multiple_of(tile_o),
            geo.cig.next_multiple_of(tile_i),
        )
    } else {
        (geo.cog, geo.cig)
    };
    let gy = pack_activation(grad_out, geo.groups, div4(co_pad), op)?;
    let src = pack_activation(x, geo.groups, div4(ci_pad), op)?;

    let m = geo.n * geo.hout * geo.wout;
    let row_len = geo.groups * geo.taps() * co_pad * ci_pad;
    // Chunks of at least WGRAD_MIN_CHUNK pixels, as many as the budget for
    // partial sums allows, none longer than MAX_LOOP pixels.
    let most_chunks = (WGRAD_PARTIAL_FLOATS / row_len).clamp(1, MAX_LOOP);
    let chunks = m.div_ceil(WGRAD_MIN_CHUNK).clamp(1, most_chunks);
    let chunk = m.div_ceil(chunks).next_multiple_of(16).min(MAX_LOOP);
    let chunks = m.div_ceil(chunk);
    let tiles_o = geo.cog.div_ceil(tile_o);
    let tiles_i = geo.cig.div_ceil(tile_i);
    let tiles = geo.groups * geo.taps() * tiles_o * tiles_i;
    // Register: the 32 invocations of a workgroup take 32 tiles of one chunk,
    // `blocks` workgroups per chunk. Tiled: one workgroup per (chunk, tile).
    let (blocks, total) = if register {
        let blocks = tiles.div_ceil(REGISTER_WORKGROUP);
        (blocks, blocks * chunks)
    } else {
        (chunks, chunks * tiles)
    };
    let params = Params {
        m,
        hout: geo.hout,
        wout: geo.wout,
        hin: geo.h,
        win: geo.w,
        zero_px: geo.n * geo.h * geo.w,
        px_vec4: geo.groups * div4(ci_pad),
        quads: div4(ci_pad),
        geo: &geo,
        cout: geo.cout,
        cog: geo.cog,
        wrow: 0,
        tiles: tiles_o,
        blocks,
        total,
        has_bias: false,
        cig: geo.cig,
        gy_vec4: geo.groups * div4(co_pad),
        gy_quads: div4(co_pad),
        tiles_i,
        chunk,
        chunks,
        co_pad,
        ci_pad,
    };
    let part = Tensor::uninit(dev, &[chunks * row_len], op)?;
    dev.dispatch(
        &pipeline,
        &params.words(),
        &[gy.buffer(), src.buffer(), part.buffer()],
        workgroup_grid(dev, op, total)?,
    )?;
    let dw = Tensor::uninit(dev, &geo.weight_shape(), op)?;
    let layout = RowLayout {
        row_len,
        taps: geo.taps(),
        cig: geo.weight_cig(),
        cog: geo.cog,
        co_pad,
        ci_pad,
        diagonal: geo.diagonal,
    };
    sum_rows(&part, chunks, &layout, &dw, op)?;
    Ok(dw)
}

/// `conv2d_backward_bias` on wgpu for a checked `[N, C, H, W]` gradient.
pub(super) fn backward_bias(grad_out: &Tensor, op: &str) -> Result<Tensor> {
    let s = grad_out.shape();
    let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
    let dev = grad_out.device();
    let chunks = hw.div_ceil(BIAS_CHUNK);
    let part = Tensor::uninit(dev, &[n * chunks * c], op)?;
    let total = n * c * chunks;
    let pipeline = dev.pipeline("conv2d/bias_partial", || {
        include_str!("../../shaders/conv2d_bias_partial.wgsl").into()
    });
    let params = [total, c, hw, chunks, BIAS_CHUNK].map(|v| v as u32);
    dev.dispatch(
        &pipeline,
        &params,
        &[grad_out.buffer(), part.buffer()],
        dev.linear_grid(total),
    )?;
    let db = Tensor::uninit(dev, &[c], op)?;
    sum_rows(&part, n * chunks, &RowLayout::plain(c), &db, op)?;
    Ok(db)
}
