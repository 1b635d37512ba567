//! Sums, means and maxima over any set of axes, and their backward (a
//! broadcast; for maxima, split evenly among tied elements).
//!
//! The input's dimensions are first simplified: size-1 dimensions are
//! dropped and neighbouring dimensions of the same kind (kept or reduced) are
//! merged, so a 5-D shape has at most three kept and three reduced segments
//! and per-channel sums of NCHW become `[N (reduced), C (kept), H·W (reduced)]`.
//! Each output then sums `r` values found at `base(o) + offset(i)`.
//!
//! Two kernels share that layout: `reduce_serial` (one invocation per
//! output, for short reductions over many outputs) and `reduce_tree` (one
//! workgroup per (output, chunk) that sums its chunk in a shared-memory tree).
//! When one chunk is not enough, the per-chunk partial sums `[outputs,
//! chunks]` are reduced again by the same kernels until one value is left.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::device::{Device, LINEAR_WORKGROUP};
use crate::error::{Error, Result};
use crate::shape;
use crate::tensor::Tensor;

/// Reductions of at most this many values always run one invocation per output.
const SERIAL_MAX: usize = 32;
/// With at least [`MANY_OUTPUTS`] outputs, invocation-per-output is already
/// parallel enough up to this reduction length.
const SERIAL_MAX_MANY: usize = 512;
const MANY_OUTPUTS: usize = 8192;
/// Values summed per invocation before the tree, at least: eight loads
/// amortise the eight barriers of the tree.
const MIN_PER_THREAD: usize = 8;
/// Chunks per output are capped so a second pass is one workgroup per output.
const MAX_CHUNKS: usize = 256;

/// Segment slots of each kind in the kernels' uniform (a simplified rank-5
/// shape needs at most three).
const MAX_SEGMENTS: usize = 4;

pub(crate) fn u32_arg(op: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::TooLarge(format!("{op}: {n} elements exceed 2^32")))
}

/// Workgroup counts for `groups` workgroups, wrapped like [`Device::linear_grid`];
/// kernels rebuild the workgroup index as `wid.x + wid.y * nwg.x`.
pub(crate) fn workgroup_grid(dev: &Device, groups: usize) -> [u32; 3] {
    dev.linear_grid(groups * LINEAR_WORKGROUP as usize)
}

/// Invocations that each sum at least [`MIN_PER_THREAD`] values, and at most
/// [`MAX_CHUNKS`] chunks: returns (chunk length, chunk count) for `r` values.
pub(crate) fn chunking(r: usize) -> (usize, usize) {
    let wg = LINEAR_WORKGROUP as usize;
    let per_thread = MIN_PER_THREAD.max(r.div_ceil(wg * MAX_CHUNKS));
    let chunk = per_thread * wg;
    (chunk, r.div_ceil(chunk).max(1))
}

/// Which axes of a shape are reduced, checked.
fn axis_mask(op: &str, x_shape: &[usize], axes: &[usize]) -> Result<Vec<bool>> {
    if axes.is_empty() {
        return Err(Error::InvalidArgument(format!(
            "{op}: no axes given for input {x_shape:?} (use sum_all to reduce everything)"
        )));
    }
    let mut mask = vec![false; x_shape.len()];
    for &a in axes {
        if a >= x_shape.len() {
            return Err(Error::InvalidArgument(format!(
                "{op}: axis {a} is out of range for input {x_shape:?} (rank {})",
                x_shape.len()
            )));
        }
        if mask[a] {
            return Err(Error::InvalidArgument(format!(
                "{op}: axis {a} is listed twice in {axes:?} for input {x_shape:?}"
            )));
        }
        mask[a] = true;
    }
    Ok(mask)
}

fn output_shape(x_shape: &[usize], mask: &[bool], keepdim: bool) -> Vec<usize> {
    x_shape
        .iter()
        .zip(mask)
        .filter_map(|(&d, &m)| match (m, keepdim) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Dimensions of `x_shape` without size-1 ones, neighbours of the same kind
/// merged: (size, input stride, reduced).
fn segments(x_shape: &[usize], mask: &[bool]) -> Vec<(usize, usize, bool)> {
    let strides = shape::strides(x_shape);
    let mut segs: Vec<(usize, usize, bool)> = Vec::new();
    for i in 0..x_shape.len() {
        let d = x_shape[i];
        if d == 1 {
            continue;
        }
        match segs.last_mut() {
            // Only size-1 dimensions lie between, so the merged segment is
            // still a single stride apart.
            Some(last) if last.2 == mask[i] => {
                last.0 *= d;
                last.1 = strides[i];
            }
            _ => segs.push((d, strides[i], mask[i])),
        }
    }
    segs
}

/// A reduction of `r` values for each of `n_out` outputs.
struct Plan {
    n_out: usize,
    r: usize,
    /// (size, input stride) of the kept segments, outermost first.
    kept: Vec<(usize, usize)>,
    reduced: Vec<(usize, usize)>,
}

impl Plan {
    fn new(x_shape: &[usize], mask: &[bool]) -> Plan {
        let segs = segments(x_shape, mask);
        let pick = |red: bool| {
            segs.iter()
                .filter(|s| s.2 == red)
                .map(|s| (s.0, s.1))
                .collect::<Vec<_>>()
        };
        let (kept, reduced) = (pick(false), pick(true));
        Plan {
            n_out: kept.iter().map(|s| s.0).product(),
            r: reduced.iter().map(|s| s.0).product(),
            kept,
            reduced,
        }
    }

    /// `r` contiguous values per output, outputs `r` apart.
    fn rows(n_out: usize, r: usize) -> Plan {
        Plan {
            n_out,
            r,
            kept: vec![(n_out, r)],
            reduced: vec![(r, 1)],
        }
    }

    /// The uniform shared by both kernels (see reduce_tree.wgsl).
    fn params(&self, op: &str, chunk: usize, groups: usize, scale: f32) -> Result<Vec<u32>> {
        let pad = |segs: &[(usize, usize)]| {
            // Unused slots are size 1, stride 0: they contribute nothing.
            let mut dims = [1u32; MAX_SEGMENTS];
            let mut strides = [0u32; MAX_SEGMENTS];
            for (k, &(d, s)) in segs.iter().enumerate() {
                dims[k] = d as u32;
                strides[k] = s as u32;
            }
            (dims, strides)
        };
        let (kd, ks) = pad(&self.kept);
        let (rd, rs) = pad(&self.reduced);
        let mut p = vec![
            u32_arg(op, self.n_out)?,
            u32_arg(op, self.r)?,
            u32_arg(op, chunk)?,
            u32_arg(op, groups)?,
            scale.to_bits(),
            self.kept.len() as u32,
            self.reduced.len() as u32,
            0,
        ];
        u32_arg(op, self.n_out * groups)?;
        for arr in [kd, ks, rd, rs] {
            p.extend(arr);
        }
        Ok(p)
    }
}

/// How a reduction combines values: the WGSL expression and its identity.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Combine {
    Sum,
    Max,
}

impl Combine {
    fn key(self) -> &'static str {
        match self {
            Combine::Sum => "sum",
            Combine::Max => "max",
        }
    }

    fn specialise(self, source: &str) -> String {
        let (combine, init) = match self {
            Combine::Sum => ("add_f32", "0.0"),
            // -f32::MAX, so an all −inf input is not confused with "no values".
            Combine::Max => ("max", "-3.4028235e38"),
        };
        let helper = "fn add_f32(a: f32, b: f32) -> f32 { return a + b; }\n";
        format!(
            "{helper}{}",
            source.replace("COMBINE", combine).replace("INIT", init)
        )
    }
}

/// Runs `plan` on `x`'s buffer, writing `n_out` values times `scale` to `out`.
fn run(op: &str, x: &Tensor, plan: Plan, scale: f32, out: &Tensor) -> Result<()> {
    run_with(op, x, plan, scale, out, Combine::Sum)
}

fn run_with(
    op: &str,
    x: &Tensor,
    plan: Plan,
    scale: f32,
    out: &Tensor,
    combine: Combine,
) -> Result<()> {
    let dev = x.device();
    if plan.n_out == 0 {
        return Ok(());
    }
    let serial = plan.r <= SERIAL_MAX || (plan.n_out >= MANY_OUTPUTS && plan.r <= SERIAL_MAX_MANY);
    if serial {
        let pipeline = dev.pipeline(&format!("reduce/serial/{}", combine.key()), || {
            combine.specialise(include_str!("../shaders/reduce_serial.wgsl"))
        });
        let params = plan.params(op, 0, 1, scale)?;
        return dev.dispatch(
            &pipeline,
            &params,
            &[x.buffer(), out.buffer()],
            dev.linear_grid(plan.n_out),
        );
    }
    let pipeline = dev.pipeline(&format!("reduce/tree/{}", combine.key()), || {
        combine.specialise(include_str!("../shaders/reduce_tree.wgsl"))
    });
    let (chunk, groups) = chunking(plan.r);
    if groups == 1 {
        let params = plan.params(op, chunk, 1, scale)?;
        return dev.dispatch(
            &pipeline,
            &params,
            &[x.buffer(), out.buffer()],
            workgroup_grid(dev, plan.n_out),
        );
    }
    let partial = Tensor::uninit(dev, &[plan.n_out * groups], op)?;
    let params = plan.params(op, chunk, groups, 1.0)?;
    dev.dispatch(
        &pipeline,
        &params,
        &[x.buffer(), partial.buffer()],
        workgroup_grid(dev, plan.n_out * groups),
    )?;
    run_with(
        op,
        &partial,
        Plan::rows(plan.n_out, groups),
        scale,
        out,
        combine,
    )
}

/// Sum over `axes` times `scale` (the engine's one reduction entry point).
pub(crate) fn reduce_scaled(
    op: &str,
    x: &Tensor,
    axes: &[usize],
    keepdim: bool,
    scale: f32,
) -> Result<Tensor> {
    let mask = axis_mask(op, x.shape(), axes)?;
    let out_shape = output_shape(x.shape(), &mask, keepdim);
    kernels(x.device()).sum_axes_scaled(op, x, axes, &mask, scale, &out_shape)
}

/// Maximum over `axes` (−f32::MAX for empty axes), shaped like [`sum_axes`].
pub fn max_axes(x: &Tensor, axes: &[usize], keepdim: bool) -> Result<Tensor> {
    let mask = axis_mask("max", x.shape(), axes)?;
    let out_shape = output_shape(x.shape(), &mask, keepdim);
    kernels(x.device()).max_axes(x, axes, &mask, &out_shape)
}

/// Backward of [`max_axes`], PyTorch's `amax` rule: the gradient of each
/// output is split evenly among the elements of `x` equal to its maximum.
/// `max_kept` is the forward's result with the axes kept (size 1); `grad`
/// holds one value per output, with or without the kept axes.
pub fn max_axes_backward(
    grad: &Tensor,
    x: &Tensor,
    max_kept: &Tensor,
    axes: &[usize],
) -> Result<Tensor> {
    let op = "max_backward";
    let mask = axis_mask(op, x.shape(), axes)?;
    let kept = output_shape(x.shape(), &mask, true);
    if max_kept.shape() != kept.as_slice() || grad.numel() != max_kept.numel() {
        return Err(Error::Shape(format!(
            "{op}: the maximum {:?} and gradient {:?} must hold one value per output of reducing {:?} over axes {axes:?} ({kept:?})",
            max_kept.shape(),
            grad.shape(),
            x.shape()
        )));
    }
    kernels(x.device()).max_axes_backward(grad, x, max_kept, axes, &mask)
}

/// Number of values each output of a reduction over `axes` combines.
fn reduced_count(x_shape: &[usize], axes: &[usize]) -> usize {
    axes.iter().map(|&a| x_shape[a]).product()
}

/// Σ over `axes`. Without `keepdim` the reduced axes are removed (all axes
/// removed gives shape `[]`); with it they stay as size 1.
pub fn sum_axes(x: &Tensor, axes: &[usize], keepdim: bool) -> Result<Tensor> {
    reduce_scaled("sum", x, axes, keepdim, 1.0)
}

/// Mean over `axes` (NaN where the reduced axes are empty).
pub fn mean_axes(x: &Tensor, axes: &[usize], keepdim: bool) -> Result<Tensor> {
    axis_mask("mean", x.shape(), axes)?;
    let r = reduced_count(x.shape(), axes);
    let scale = if r == 0 {
        f32::NAN
    } else {
        (1.0 / r as f64) as f32
    };
    reduce_scaled("mean", x, axes, keepdim, scale)
}

/// Σ of every element, as shape `[1]` (0 for an empty tensor).
pub fn sum_all(x: &Tensor) -> Result<Tensor> {
    let flat = x.reshape(&[x.numel()])?;
    reduce_scaled("sum_all", &flat, &[0], true, 1.0)
}

/// `output_index`, appended to both broadcast kernels (WGSL declarations
/// may come in any order).
const OUTPUT_INDEX: &str = include_str!("../shaders/reduce_output_index.wgsl");

/// The uniform of the broadcast kernels (reduce_broadcast.wgsl,
/// reduce_max_backward.wgsl): `n`, the segment count, one kernel-specific
/// word, padding, then the simplified input segments' sizes and their output
/// strides (0 on reduced segments, row-major over the kept sizes otherwise).
fn broadcast_params(n: u32, x_shape: &[usize], mask: &[bool], word: u32) -> Vec<u32> {
    let segs = segments(x_shape, mask);
    let mut ostr = vec![0usize; segs.len()];
    let mut acc = 1;
    for (k, s) in segs.iter().enumerate().rev() {
        if !s.2 {
            ostr[k] = acc;
            acc *= s.0;
        }
    }
    let mut dims = [1u32; 8];
    let mut strides = [0u32; 8];
    for (k, s) in segs.iter().enumerate() {
        dims[k] = s.0 as u32;
        strides[k] = ostr[k] as u32;
    }
    let mut params = vec![n, segs.len() as u32, word, 0];
    params.extend(dims);
    params.extend(strides);
    params
}

/// g_x[i] = scale · grad[o(i)]: `grad` broadcast back over the reduced axes.
fn broadcast_back(
    op: &str,
    grad: &Tensor,
    x_shape: &[usize],
    axes: &[usize],
    keepdim: bool,
    scale: f32,
) -> Result<Tensor> {
    let mask = axis_mask(op, x_shape, axes)?;
    let want = output_shape(x_shape, &mask, keepdim);
    if grad.shape() != want.as_slice() {
        return Err(Error::Shape(format!(
            "{op}: gradient has shape {:?} but reducing {x_shape:?} over axes {axes:?} (keepdim {keepdim}) gives {want:?}",
            grad.shape()
        )));
    }
    kernels(grad.device()).broadcast_back(op, grad, x_shape, axes, &mask, scale)
}

/// Backward of [`sum_axes`]: `grad` (the output's shape) copied along the reduced axes.
pub fn sum_axes_backward(
    grad: &Tensor,
    x_shape: &[usize],
    axes: &[usize],
    keepdim: bool,
) -> Result<Tensor> {
    broadcast_back("sum_backward", grad, x_shape, axes, keepdim, 1.0)
}

/// Backward of [`mean_axes`]: `grad` / count, copied along the reduced axes.
pub fn mean_axes_backward(
    grad: &Tensor,
    x_shape: &[usize],
    axes: &[usize],
    keepdim: bool,
) -> Result<Tensor> {
    axis_mask("mean_backward", x_shape, axes)?;
    let r = reduced_count(x_shape, axes);
    let scale = if r == 0 { 0.0 } else { (1.0 / r as f64) as f32 };
    broadcast_back("mean_backward", grad, x_shape, axes, keepdim, scale)
}

/// Backward of [`sum_all`]: the `[1]` gradient copied to every element.
pub fn sum_all_backward(grad: &Tensor, x_shape: &[usize]) -> Result<Tensor> {
    let n = shape::validate(x_shape)?;
    if grad.numel() != 1 {
        return Err(Error::Shape(format!(
            "sum_all_backward: gradient must hold one value, got shape {:?} (input {x_shape:?})",
            grad.shape()
        )));
    }
    let g = grad.reshape(&[1])?;
    broadcast_back("sum_all_backward", &g, &[n], &[0], true, 1.0)?.reshape(x_shape)
}

/// The reductions of a backend, given checked axes (`mask` flags the
/// reduced dimensions of the input).
pub(crate) trait ReduceKernels {
    /// Σ over `axes` times `scale`, as `out_shape`.
    fn sum_axes_scaled(
        &self,
        op: &str,
        x: &Tensor,
        axes: &[usize],
        mask: &[bool],
        scale: f32,
        out_shape: &[usize],
    ) -> Result<Tensor>;
    /// Maximum over `axes`, as `out_shape`.
    fn max_axes(
        &self,
        x: &Tensor,
        axes: &[usize],
        mask: &[bool],
        out_shape: &[usize],
    ) -> Result<Tensor>;
    /// `max_kept` is the maximum with the axes kept, `grad` one value per output.
    fn max_axes_backward(
        &self,
        grad: &Tensor,
        x: &Tensor,
        max_kept: &Tensor,
        axes: &[usize],
        mask: &[bool],
    ) -> Result<Tensor>;
    /// g_x[i] = scale · grad[o(i)] over an input of `x_shape`.
    fn broadcast_back(
        &self,
        op: &str,
        grad: &Tensor,
        x_shape: &[usize],
        axes: &[usize],
        mask: &[bool],
        scale: f32,
    ) -> Result<Tensor>;
}

impl ReduceKernels for Native {
    fn sum_axes_scaled(
        &self,
        _op: &str,
        x: &Tensor,
        axes: &[usize],
        _mask: &[bool],
        scale: f32,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let mut y = cpu::reduce::sum_axes(&x.host(), x.shape(), axes);
        if scale != 1.0 {
            y.iter_mut().for_each(|v| *v *= scale);
        }
        Tensor::from_vec(x.device(), y, out_shape)
    }

    fn max_axes(
        &self,
        x: &Tensor,
        axes: &[usize],
        _mask: &[bool],
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let y = cpu::reduce::max_axes(&x.host(), x.shape(), axes);
        Tensor::from_vec(x.device(), y, out_shape)
    }

    fn max_axes_backward(
        &self,
        grad: &Tensor,
        x: &Tensor,
        max_kept: &Tensor,
        axes: &[usize],
        _mask: &[bool],
    ) -> Result<Tensor> {
        let dev = x.device();
        let gx = cpu::reduce::max_axes_backward(
            &grad.host(),
            &x.host(),
            &max_kept.host(),
            x.shape(),
            axes,
        );
        Tensor::from_vec(dev, gx, x.shape())
    }

    fn broadcast_back(
        &self,
        _op: &str,
        grad: &Tensor,
        x_shape: &[usize],
        _axes: &[usize],
        mask: &[bool],
        scale: f32,
    ) -> Result<Tensor> {
        let gx = cpu::reduce::broadcast_back(&grad.host(), x_shape, mask, scale);
        Tensor::from_vec(grad.device(), gx, x_shape)
    }
}

impl ReduceKernels for Wgpu {
    fn sum_axes_scaled(
        &self,
        op: &str,
        x: &Tensor,
        _axes: &[usize],
        mask: &[bool],
        scale: f32,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        // Strides and offsets are u32 in the kernels.
        u32_arg(op, x.numel())?;
        let out = Tensor::uninit(x.device(), out_shape, op)?;
        run(op, x, Plan::new(x.shape(), mask), scale, &out)?;
        Ok(out)
    }

    fn max_axes(
        &self,
        x: &Tensor,
        _axes: &[usize],
        mask: &[bool],
        out_shape: &[usize],
    ) -> Result<Tensor> {
        u32_arg("max", x.numel())?;
        let out = Tensor::uninit(x.device(), out_shape, "max")?;
        run_with(
            "max",
            x,
            Plan::new(x.shape(), mask),
            1.0,
            &out,
            Combine::Max,
        )?;
        Ok(out)
    }

    fn max_axes_backward(
        &self,
        grad: &Tensor,
        x: &Tensor,
        max_kept: &Tensor,
        axes: &[usize],
        mask: &[bool],
    ) -> Result<Tensor> {
        let op = "max_backward";
        let kept = output_shape(x.shape(), mask, true);
        let dev = x.device();
        let n = u32_arg(op, x.numel())?;
        let pipeline = dev.pipeline("reduce/max_backward", || {
            format!(
                "{}{}",
                include_str!("../shaders/reduce_max_backward.wgsl"),
                OUTPUT_INDEX
            )
        });
        // Pass 1 marks the elements at their maximum; their count per output
        // (exact in f32) comes from the sum reduction; pass 2 writes each marked
        // element its share g / count.
        let at_max = Tensor::uninit(dev, x.shape(), op)?;
        dev.dispatch(
            &pipeline,
            &broadcast_params(n, x.shape(), mask, 1),
            &[
                x.buffer(),
                max_kept.buffer(),
                max_kept.buffer(),
                at_max.buffer(),
            ],
            dev.linear_grid(n as usize),
        )?;
        let ties = reduce_scaled(op, &at_max, axes, true, 1.0)?;
        drop(at_max);
        let share = super::binary(&grad.reshape(&kept)?, &ties, super::BinaryOp::Div)?;
        let gx = Tensor::uninit(dev, x.shape(), op)?;
        dev.dispatch(
            &pipeline,
            &broadcast_params(n, x.shape(), mask, 0),
            &[x.buffer(), max_kept.buffer(), share.buffer(), gx.buffer()],
            dev.linear_grid(n as usize),
        )?;
        Ok(gx)
    }

    fn broadcast_back(
        &self,
        op: &str,
        grad: &Tensor,
        x_shape: &[usize],
        _axes: &[usize],
        mask: &[bool],
        scale: f32,
    ) -> Result<Tensor> {
        let dev = grad.device();
        let gx = Tensor::uninit(dev, x_shape, op)?;
        let n = u32_arg(op, gx.numel())?;
        let params = broadcast_params(n, x_shape, mask, scale.to_bits());
        let pipeline = dev.pipeline("reduce/broadcast", || {
            format!(
                "{}{}",
                include_str!("../shaders/reduce_broadcast.wgsl"),
                OUTPUT_INDEX
            )
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[grad.buffer(), gx.buffer()],
            dev.linear_grid(n as usize),
        )?;
        Ok(gx)
    }
}
