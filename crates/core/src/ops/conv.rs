//! 2-D convolution (PyTorch's cross-correlation), forward and backward, as
//! implicit GEMMs: M = output pixels, N = output channels, K = (tap, source
//! channel). im2col is never materialised; each kernel maps an output pixel
//! and a tap to the source pixel it reads (`conv2d_common.wgsl`).
//!
//! The kernels read activations packed (`conv2d_pack.wgsl`): pixel-major,
//! each group's channels in vec4 quads, plus one all-zero pixel that padding
//! taps read instead of branching. The input gradient is the forward kernel
//! with the transposed tap map and re-packed weights. The weight gradient
//! reduces chunks of pixels into partial sums that a second kernel adds, so
//! that few weights and many pixels still spread over many invocations. Every
//! call records a fixed handful of dispatches, whatever the batch.
//!
//! Two kernel families, picked by [`KernelVariant`]: shared-memory tiles for
//! GPUs, and for CPU adapters register tiles with no shared memory or barriers
//! (`conv2d_register.wgsl` says why).

use std::fmt::Write;

use crate::cpu;
use crate::device::{Device, KernelVariant};
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// Convolution hyper-parameters, `[height, width]` pairs as in PyTorch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Conv2dArgs {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

impl Default for Conv2dArgs {
    fn default() -> Self {
        Conv2dArgs {
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

/// Register kernels: (pixels, output channels) per invocation, the widest
/// tile first. On lavapipe, 64 → 64 channels ran at about 27 GFLOP/s of CPU
/// time with 16 × 32 and 21 with 8 × 16; 32 × 32 was hardly faster and takes
/// llvmpipe over ten seconds to compile. The narrower tiles keep layers with
/// few output channels per group from computing mostly padding.
const REGISTER_TILES: [(usize, usize); 3] = [(16, 32), (32, 16), (32, 4)];
/// Invocations per register-kernel workgroup (`@workgroup_size` in the WGSL).
const REGISTER_WORKGROUP: usize = 32;
/// Register weight-gradient tiles, for output and input channels alike.
const WGRAD_REGISTER_TILES: [usize; 2] = [16, 4];
/// Tiled kernels: pixels and channels per workgroup tile (`64u` in the WGSL).
const TILED_TILE: usize = 64;
/// Budget for the weight gradient's partial sums, in floats.
const WGRAD_PARTIAL_FLOATS: usize = 1 << 23;
/// Fewest grad_out pixels one weight-gradient partial sum covers.
const WGRAD_MIN_CHUNK: usize = 256;
/// grad_out values each first-stage bias-gradient invocation adds.
const BIAS_CHUNK: usize = 1024;
/// llvmpipe silently ends an invocation's loops after 65 535 iterations in
/// all (a guard against endless loops).
const LLVMPIPE_LOOP_LIMIT: usize = 65_535;
/// Most iterations of one data-dependent loop in these kernels, so that
/// nested loops stay below that limit.
const MAX_LOOP: usize = 16_384;

/// The shapes of one convolution, checked.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    cin: usize,
    h: usize,
    w: usize,
    cout: usize,
    kh: usize,
    kw: usize,
    hout: usize,
    wout: usize,
    groups: usize,
    /// Input channels per group (the weight's second dimension).
    cig: usize,
    /// Output channels per group.
    cog: usize,
    /// A depthwise convolution folded into groups of four channels whose
    /// weights are diagonal (see `folded`).
    diagonal: bool,
    args: Conv2dArgs,
}

impl Geometry {
    /// The kernels' view of a depthwise convolution (one input and one output
    /// channel per group, groups a multiple of 4): groups of four channels
    /// with diagonal 4 × 4 weights. Quads of channels then hold four real
    /// channels instead of one and three zeros, so the packed input is not four
    /// times the input, and each load feeds four times the useful work (the
    /// zeros off the diagonal are multiplied all the same).
    fn folded(self) -> Geometry {
        if self.cig == 1 && self.cog == 1 && self.groups % 4 == 0 {
            Geometry {
                groups: self.groups / 4,
                cig: 4,
                cog: 4,
                diagonal: true,
                ..self
            }
        } else {
            self
        }
    }

    /// Input channels per group of the weight tensor itself.
    fn weight_cig(&self) -> usize {
        if self.diagonal {
            1
        } else {
            self.cig
        }
    }

    fn taps(&self) -> usize {
        self.kh * self.kw
    }

    fn out_shape(&self) -> Vec<usize> {
        vec![self.n, self.cout, self.hout, self.wout]
    }

    fn weight_shape(&self) -> Vec<usize> {
        vec![self.cout, self.weight_cig(), self.kh, self.kw]
    }
}

fn geometry(op: &str, x: &[usize], w: &[usize], args: &Conv2dArgs) -> Result<Geometry> {
    if x.len() != 4 || w.len() != 4 {
        return Err(Error::Shape(format!(
            "{op}: input {x:?} must be [N, C, H, W] and weight {w:?} [Cout, Cin/groups, KH, KW]"
        )));
    }
    if x.contains(&0) || w.contains(&0) {
        return Err(Error::Shape(format!(
            "{op}: input {x:?} and weight {w:?} must have no zero-sized dimension"
        )));
    }
    let Conv2dArgs {
        stride,
        padding,
        dilation,
        groups,
    } = *args;
    if stride.contains(&0) || dilation.contains(&0) || groups == 0 {
        return Err(Error::InvalidArgument(format!(
            "{op}: stride {stride:?}, dilation {dilation:?} and groups {groups} must be at least 1 \
             (input {x:?}, weight {w:?})"
        )));
    }
    let (n, cin, h, wd) = (x[0], x[1], x[2], x[3]);
    let (cout, cig, kh, kw) = (w[0], w[1], w[2], w[3]);
    if cin % groups != 0 || cout % groups != 0 {
        return Err(Error::InvalidArgument(format!(
            "{op}: groups = {groups} must divide the input channels ({cin}, input {x:?}) and the \
             output channels ({cout}, weight {w:?})"
        )));
    }
    if cig != cin / groups {
        return Err(Error::Shape(format!(
            "{op}: weight {w:?} expects {cig} input channels per group, but input {x:?} has \
             {cin} channels in {groups} group(s), {} per group",
            cin / groups
        )));
    }
    // The dilated kernel spans d·(k − 1) + 1 pixels; it must fit the padded input.
    let span = [dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1];
    let padded = [h + 2 * padding[0], wd + 2 * padding[1]];
    if span[0] > padded[0] || span[1] > padded[1] {
        return Err(Error::Shape(format!(
            "{op}: kernel {w:?} spans {}×{} pixels (dilation {dilation:?}), more than the padded \
             input's {}×{} (input {x:?}, padding {padding:?})",
            span[0], span[1], padded[0], padded[1]
        )));
    }
    Ok(Geometry {
        n,
        cin,
        h,
        w: wd,
        cout,
        kh,
        kw,
        hout: (padded[0] - span[0]) / stride[0] + 1,
        wout: (padded[1] - span[1]) / stride[1] + 1,
        groups,
        cig,
        cog: cout / groups,
        diagonal: false,
        args: *args,
    })
}

/// The shape `[N, Cout, Hout, Wout]` of `conv2d(x, w)` after checking that
/// the shapes and arguments fit together, with
/// `Hout = ⌊(H + 2·padding − dilation·(KH − 1) − 1) / stride⌋ + 1` (likewise Wout).
pub fn conv2d_output_shape(x: &[usize], w: &[usize], args: &Conv2dArgs) -> Result<Vec<usize>> {
    Ok(geometry("conv2d", x, w, args)?.out_shape())
}

/// `y[n, o, i, j] = bias[o] + Σ_{c, ky, kx} x[n, g·Cin/G + c, i·s + ky·d − p, j·s + kx·d − p] · w[o, c, ky, kx]`
/// with `g = o / (Cout/G)` and taps outside the input contributing zero.
/// `x`: `[N, Cin, H, W]`, `w`: `[Cout, Cin/groups, KH, KW]`, `bias`: `[Cout]`.
/// A validated 4-D shape as an array.
fn four(s: &[usize]) -> [usize; 4] {
    [s[0], s[1], s[2], s[3]]
}

pub fn conv2d(x: &Tensor, w: &Tensor, bias: Option<&Tensor>, args: &Conv2dArgs) -> Result<Tensor> {
    let op = "conv2d";
    x.same_device(w, op)?;
    let geo = geometry(op, x.shape(), w.shape(), args)?;
    if let Some(b) = bias {
        x.same_device(b, op)?;
        if b.shape() != [geo.cout] {
            return Err(Error::Shape(format!(
                "{op}: bias {:?} must be [{}] for weight {:?}",
                b.shape(),
                geo.cout,
                w.shape()
            )));
        }
    }
    if x.is_cpu() {
        let out_shape = conv2d_output_shape(x.shape(), w.shape(), args)?;
        let b = bias.map(|b| b.host());
        let y = cpu::conv::conv2d(
            &x.host(),
            four(x.shape()),
            &w.host(),
            four(w.shape()),
            b.as_deref().map(|v| v.as_slice()),
            args.stride,
            args.padding,
            args.dilation,
            args.groups,
        );
        return Tensor::from_vec(x.device(), y, &out_shape);
    }
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

/// The gradient of `conv2d` with respect to its input (`x_shape`,
/// `[N, Cin, H, W]`): a transposed convolution in gather form, each input
/// pixel summing `grad_out · w` over the output pixels and taps that read it.
pub fn conv2d_backward_input(
    grad_out: &Tensor,
    w: &Tensor,
    x_shape: &[usize],
    args: &Conv2dArgs,
) -> Result<Tensor> {
    let op = "conv2d_backward_input";
    grad_out.same_device(w, op)?;
    let geo = geometry(op, x_shape, w.shape(), args)?;
    check_grad_out(op, grad_out, &geo)?;
    if grad_out.is_cpu() {
        let gx = cpu::conv::conv2d_backward_input(
            &grad_out.host(),
            four(grad_out.shape()),
            &w.host(),
            four(w.shape()),
            four(x_shape),
            args.stride,
            args.padding,
            args.dilation,
            args.groups,
        );
        return Tensor::from_vec(grad_out.device(), gx, x_shape);
    }
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

/// The gradient of `conv2d` with respect to its weight (`w_shape`,
/// `[Cout, Cin/groups, KH, KW]`): `Σ_{n, i, j} grad_out[n, o, i, j] · x[n, c, tap(i, j)]`,
/// reduced per chunk of pixels and then over the chunks.
pub fn conv2d_backward_weight(
    grad_out: &Tensor,
    x: &Tensor,
    w_shape: &[usize],
    args: &Conv2dArgs,
) -> Result<Tensor> {
    let op = "conv2d_backward_weight";
    grad_out.same_device(x, op)?;
    let geo = geometry(op, x.shape(), w_shape, args)?;
    check_grad_out(op, grad_out, &geo)?;
    if grad_out.is_cpu() {
        let gw = cpu::conv::conv2d_backward_weight(
            &grad_out.host(),
            four(grad_out.shape()),
            &x.host(),
            four(x.shape()),
            four(w_shape),
            args.stride,
            args.padding,
            args.dilation,
            args.groups,
        );
        return Tensor::from_vec(grad_out.device(), gw, w_shape);
    }
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
            kernel_source(include_str!("../shaders/conv2d_wgrad_tiled.wgsl"))
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

/// The gradient of `conv2d` with respect to its bias: `grad_out`
/// (`[N, Cout, H, W]`) summed over N, H and W, `[Cout]`.
pub fn conv2d_backward_bias(grad_out: &Tensor) -> Result<Tensor> {
    let op = "conv2d_backward_bias";
    let s = grad_out.shape();
    if s.len() != 4 || s.contains(&0) {
        return Err(Error::Shape(format!(
            "{op}: grad_out {s:?} must be [N, Cout, H, W] with no zero-sized dimension"
        )));
    }
    let (n, c, hw) = (s[0], s[1], s[2] * s[3]);
    let dev = grad_out.device();
    if grad_out.is_cpu() {
        return Tensor::from_vec(
            dev,
            cpu::conv::conv2d_backward_bias(&grad_out.host(), four(s)),
            &[c],
        );
    }
    let chunks = hw.div_ceil(BIAS_CHUNK);
    let part = Tensor::uninit(dev, &[n * chunks * c], op)?;
    let total = n * c * chunks;
    let pipeline = dev.pipeline("conv2d/bias_partial", || {
        include_str!("../shaders/conv2d_bias_partial.wgsl").into()
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

fn check_grad_out(op: &str, grad_out: &Tensor, geo: &Geometry) -> Result<()> {
    let want = geo.out_shape();
    if grad_out.shape() != want {
        return Err(Error::Shape(format!(
            "{op}: grad_out {:?} must be the convolution's output shape {want:?} (input [{}, {}, \
             {}, {}], weight {:?})",
            grad_out.shape(),
            geo.n,
            geo.cin,
            geo.h,
            geo.w,
            geo.weight_shape()
        )));
    }
    Ok(())
}

fn div4(c: usize) -> usize {
    c.div_ceil(4)
}

/// The narrowest of `tiles` (widest first) that still covers `channels`,
/// else the widest.
fn narrowest_tile(tiles: &[usize], channels: usize) -> usize {
    tiles
        .iter()
        .copied()
        .rfind(|&t| t >= channels)
        .unwrap_or(tiles[0])
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
                kernel_source(include_str!("../shaders/conv2d_tiled.wgsl"))
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
            include_str!("../shaders/conv2d_unpack.wgsl").into()
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

/// The uniform block of `conv2d_common.wgsl`; fields a kernel does not use are 0.
struct Params<'a> {
    m: usize,
    hout: usize,
    wout: usize,
    hin: usize,
    win: usize,
    zero_px: usize,
    px_vec4: usize,
    quads: usize,
    geo: &'a Geometry,
    cout: usize,
    cog: usize,
    wrow: usize,
    tiles: usize,
    blocks: usize,
    total: usize,
    has_bias: bool,
    cig: usize,
    gy_vec4: usize,
    gy_quads: usize,
    tiles_i: usize,
    chunk: usize,
    chunks: usize,
    co_pad: usize,
    ci_pad: usize,
}

impl Params<'_> {
    fn words(&self) -> Vec<u32> {
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
fn workgroup_grid(dev: &Device, op: &str, total: usize) -> Result<[u32; 3]> {
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
fn pack_activation(t: &Tensor, groups: usize, quads: usize, op: &str) -> Result<Tensor> {
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
        include_str!("../shaders/conv2d_pack.wgsl").into()
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
fn pack_weight(
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
        include_str!("../shaders/conv2d_pack_weight.wgsl").into()
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
struct RowLayout {
    row_len: usize,
    taps: usize,
    cig: usize,
    cog: usize,
    co_pad: usize,
    ci_pad: usize,
    /// Folded depthwise weights: output channel c reads its own column.
    diagonal: bool,
}

impl RowLayout {
    /// Rows already in output order.
    fn plain(len: usize) -> RowLayout {
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
fn sum_rows(part: &Tensor, rows: usize, layout: &RowLayout, out: &Tensor, op: &str) -> Result<()> {
    let dev = part.device();
    let pipeline = dev.pipeline("conv2d/sum_rows", || {
        include_str!("../shaders/conv2d_sum_rows.wgsl").into()
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

/// A kernel's text after the shared uniform block and tap maps.
fn kernel_source(body: &str) -> String {
    format!("{}\n{body}", include_str!("../shaders/conv2d_common.wgsl"))
}

/// `template` with each `//#name` line replaced by `parts[name]`.
fn expand(template: &str, parts: &[(&str, String)]) -> String {
    let mut out = String::new();
    for line in template.lines() {
        match parts
            .iter()
            .find(|(name, _)| line.trim() == format!("//#{name}"))
        {
            Some((_, text)) => out.push_str(text),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

const LANES: [&str; 4] = ["x", "y", "z", "w"];

/// `conv2d_register.wgsl` for `tile_p` pixels × `tile_c` output channels.
fn register_source(map: &str, tile_p: usize, tile_c: usize) -> String {
    let quads = tile_c / 4;
    let mut parts: [(&str, String); 6] = [
        ("pixels", String::new()),
        ("zero", String::new()),
        ("taps", String::new()),
        ("loads", String::new()),
        ("fma", String::new()),
        ("store", String::new()),
    ];
    let [pixels, zero, taps, loads, fma, store] = parts.each_mut().map(|p| &mut p.1);
    store.push_str("    if (ok0) {\n        let first = (m0 * p.groups + g) * p.wrow + c0 / 4u;\n");
    for j in 0..tile_p {
        let _ = writeln!(
            pixels,
            "    let n{j} = n; let y{j} = y; let x{j} = x; let ok{j} = m0 + {j}u < p.m;"
        );
        if j + 1 < tile_p {
            let _ = writeln!(
                pixels,
                "    x += 1u; y += select(0u, 1u, x == p.wout); x = select(x, 0u, x == p.wout); \
                 n += select(0u, 1u, y == p.hout); y = select(y, 0u, y == p.hout);"
            );
        }
        let _ = writeln!(
            taps,
            "            let s{j} = select(p.zero_px, src_pixel_{map}(n{j}, y{j}, x{j}, ky, kx), ok{j}) \
             * p.px_vec4 + g * p.quads;"
        );
        let _ = writeln!(loads, "                let v{j} = src[s{j} + q];");
        for t in 0..quads {
            let _ = writeln!(zero, "    var a{j}_{t} = vec4<f32>(0.0);");
            let _ = writeln!(
                fma,
                "                a{j}_{t} = fma(vec4<f32>(v{j}.w), w3_{t}, fma(vec4<f32>(v{j}.z), w2_{t}, \
                 fma(vec4<f32>(v{j}.y), w1_{t}, fma(vec4<f32>(v{j}.x), w0_{t}, a{j}_{t}))));"
            );
            let _ = writeln!(
                store,
                "        res[first + {j}u * p.groups * p.wrow + {t}u] = a{j}_{t};"
            );
        }
    }
    store.push_str("    }\n");
    for e in 0..4 {
        let row = if e == 0 {
            String::new()
        } else {
            format!(" + wr{e}")
        };
        for t in 0..quads {
            let _ = writeln!(loads, "                let w{e}_{t} = wpk[wi{row} + {t}u];");
        }
    }
    let template = kernel_source(include_str!("../shaders/conv2d_register.wgsl"))
        .replace("TILE_P", &format!("{tile_p}u"))
        .replace("TILE_C", &format!("{tile_c}u"));
    expand(&template, &parts)
}

/// `conv2d_wgrad_register.wgsl` for `tile_o` × `tile_i` weights.
fn wgrad_register_source(tile_o: usize, tile_i: usize) -> String {
    let (qo, qi) = (tile_o / 4, tile_i / 4);
    let mut parts: [(&str, String); 5] = [
        ("zero", String::new()),
        ("pixels", String::new()),
        ("loads", String::new()),
        ("fma", String::new()),
        ("store", String::new()),
    ];
    let [zero, pixels, loads, fma, store] = parts.each_mut().map(|p| &mut p.1);
    // Row `chunk` of the partial sums is [groups][taps][co_pad][ci_pad], in vec4s here.
    store.push_str(
        "    let ci4 = p.ci_pad / 4u;\n    \
         let row = (((chunk * p.groups + g) * taps + tap) * p.co_pad + o0) * ci4 + i0 / 4u;\n",
    );
    for u in 0..4 {
        let _ = writeln!(
            pixels,
            "        let ok{u} = m + {u}u < end;\n        \
             let gp{u} = select(p.m, m + {u}u, ok{u}) * p.gy_vec4 + gq;\n        \
             let sp{u} = select(p.zero_px, src_pixel_forward(n, y, x, ky, kx), ok{u}) * p.px_vec4 + sq;\n        \
             x += 1u; y += select(0u, 1u, x == p.wout); x = select(x, 0u, x == p.wout); \
             n += select(0u, 1u, y == p.hout); y = select(y, 0u, y == p.hout);"
        );
        for a in 0..qo {
            let _ = writeln!(loads, "        let g{u}_{a} = gy[gp{u} + {a}u];");
        }
        for b in 0..qi {
            let _ = writeln!(loads, "        let v{u}_{b} = src[sp{u} + {b}u];");
        }
    }
    for o in 0..tile_o {
        let (a, lane) = (o / 4, LANES[o % 4]);
        for b in 0..qi {
            let _ = writeln!(zero, "    var a{o}_{b} = vec4<f32>(0.0);");
            let mut chain = format!("a{o}_{b}");
            for u in 0..4 {
                chain = format!("fma(vec4<f32>(g{u}_{a}.{lane}), v{u}_{b}, {chain})");
            }
            let _ = writeln!(fma, "        a{o}_{b} = {chain};");
            let _ = writeln!(store, "    part[row + {o}u * ci4 + {b}u] = a{o}_{b};");
        }
    }
    let template = kernel_source(include_str!("../shaders/conv2d_wgrad_register.wgsl"))
        .replace("TILE_O", &format!("{tile_o}u"))
        .replace("TILE_I", &format!("{tile_i}u"));
    expand(&template, &parts)
}
