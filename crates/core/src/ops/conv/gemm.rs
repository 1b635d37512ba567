//! The forward convolution and its input gradient on wgpu: one implicit
//! GEMM each, the input gradient with the transposed tap map and re-packed
//! weights.

use super::geometry::Geometry;
use super::packing::{pack_activation, pack_weight, workgroup_grid, Params};
use super::source::{kernel_source, register_source};
use super::{
    div4, narrowest_tile, LLVMPIPE_LOOP_LIMIT, REGISTER_TILES, REGISTER_WORKGROUP, TILED_TILE,
};
use crate::device::KernelVariant;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `conv2d` on wgpu for checked operands.
pub(super) fn forward(
    x: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    geo: &Geometry,
    op: &str,
) -> Result<Tensor> {
    let geo = geo.folded();
    let gemm = Gemm {
        transposed: false,
        out_channels: geo.cout,
        out_hw: [geo.hout, geo.wout],
        src_hw: [geo.h, geo.w],
        src_quads: div4(geo.cig),
        out_per_group: geo.cog,
        geo,
    };
    gemm.run(x, w, bias, op)
}

/// `conv2d_backward_input` on wgpu for checked operands.
pub(super) fn backward_input(
    grad_out: &Tensor,
    w: &Tensor,
    geo: &Geometry,
    op: &str,
) -> Result<Tensor> {
    let geo = geo.folded();
    let gemm = Gemm {
        transposed: true,
        out_channels: geo.cin,
        out_hw: [geo.h, geo.w],
        src_hw: [geo.hout, geo.wout],
        src_quads: div4(geo.cog),
        out_per_group: geo.cig,
        geo,
    };
    gemm.run(grad_out, w, None, op)
}

/// A forward (or, `transposed`, input-gradient) implicit GEMM: one dispatch
/// over all pixels of the batch, all groups and output-channel tiles.
struct Gemm {
    transposed: bool,
    out_channels: usize,
    out_hw: [usize; 2],
    src_hw: [usize; 2],
    /// Quads of source channels per group.
    src_quads: usize,
    out_per_group: usize,
    geo: Geometry,
}

impl Gemm {
    fn run(&self, src: &Tensor, w: &Tensor, bias: Option<&Tensor>, op: &str) -> Result<Tensor> {
        let geo = &self.geo;
        let dev = src.device();
        let register = dev.info().kernel_variant == KernelVariant::Register;
        let (tile_p, tile_c) = if register {
            let c = narrowest_tile(&REGISTER_TILES.map(|t| t.1), self.out_per_group);
            *REGISTER_TILES
                .iter()
                .find(|t| t.1 == c)
                .expect("a listed tile")
        } else {
            (TILED_TILE, TILED_TILE)
        };
        let loops = geo.kh * (1 + geo.kw * (1 + self.src_quads));
        if register && loops > LLVMPIPE_LOOP_LIMIT {
            return Err(Error::InvalidArgument(format!(
                "{op}: a {}×{} kernel over {} source channels per group takes {loops} loop steps \
                 per invocation, more than the {LLVMPIPE_LOOP_LIMIT} that CPU adapters (llvmpipe) \
                 run (weight {:?})",
                geo.kh,
                geo.kw,
                4 * self.src_quads,
                geo.weight_shape()
            )));
        }
        let map = if self.transposed {
            "transposed"
        } else {
            "forward"
        };
        let (pipeline, pixels_per_workgroup) = if register {
            let p = dev.pipeline(&format!("conv2d/register/{map}/{tile_p}x{tile_c}"), || {
                register_source(map, tile_p, tile_c)
            });
            (p, REGISTER_WORKGROUP * tile_p)
        } else {
            let p = dev.pipeline(&format!("conv2d/tiled/{map}"), || {
                kernel_source(include_str!("../../shaders/conv2d_tiled.wgsl"))
                    .replace("SRC_PIXEL", &format!("src_pixel_{map}"))
            });
            (p, TILED_TILE)
        };
        let packed = pack_activation(src, geo.groups, self.src_quads, op)?;
        let wpk = pack_weight(w, geo, self.transposed, tile_c, op)?;

        let n = geo.n;
        let m = n * self.out_hw[0] * self.out_hw[1];
        let tiles = self.out_per_group.div_ceil(tile_c);
        let blocks = m.div_ceil(pixels_per_workgroup);
        let total = blocks * geo.groups * tiles;
        let params = Params {
            m,
            hout: self.out_hw[0],
            wout: self.out_hw[1],
            hin: self.src_hw[0],
            win: self.src_hw[1],
            zero_px: n * self.src_hw[0] * self.src_hw[1],
            px_vec4: geo.groups * self.src_quads,
            quads: self.src_quads,
            geo,
            cout: self.out_channels,
            cog: self.out_per_group,
            wrow: tiles * tile_c / 4,
            tiles,
            blocks,
            total,
            has_bias: bias.is_some(),
            cig: 0,
            gy_vec4: 0,
            gy_quads: 0,
            tiles_i: 0,
            chunk: 0,
            chunks: 0,
            co_pad: 0,
            ci_pad: 0,
        };
        let out = Tensor::uninit(
            dev,
            &[n, self.out_channels, self.out_hw[0], self.out_hw[1]],
            op,
        )?;
        let grid = workgroup_grid(dev, op, total)?;
        if !register {
            // Without a bias the kernel ignores binding 3; any buffer will do.
            let bias_buffer = bias.unwrap_or(&wpk).buffer();
            dev.dispatch(
                &pipeline,
                &params.words(),
                &[packed.buffer(), wpk.buffer(), bias_buffer, out.buffer()],
                grid,
            )?;
            return Ok(out);
        }
        // The register kernel writes pixel-major rows (one per pixel of every
        // invocation that has a pixel); conv2d_unpack.wgsl makes them NCHW.
        let rows = m.next_multiple_of(tile_p);
        let res = Tensor::uninit(dev, &[rows * geo.groups * params.wrow * 4], op)?;
        dev.dispatch(
            &pipeline,
            &params.words(),
            &[packed.buffer(), wpk.buffer(), res.buffer()],
            grid,
        )?;
        let quads = div4(self.out_per_group);
        let unpack = [
            m,
            self.out_hw[0] * self.out_hw[1],
            geo.groups,
            quads,
            params.wrow,
            self.out_per_group,
            self.out_channels,
            bias.is_some() as usize,
        ]
        .map(|v| v as u32);
        let pipeline = dev.pipeline("conv2d/unpack", || {
            include_str!("../../shaders/conv2d_unpack.wgsl").into()
        });
        dev.dispatch(
            &pipeline,
            &unpack,
            &[res.buffer(), bias.unwrap_or(&res).buffer(), out.buffer()],
            dev.linear_grid(m * geo.groups * quads),
        )?;
        Ok(out)
    }
}
