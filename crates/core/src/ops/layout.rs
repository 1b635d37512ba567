//! Layout kernels: concat/split, permute, pixel shuffle/unshuffle, broadcast
//! and its adjoint `sum_to_shape`. Each op's backward is another op of this
//! file: split ↔ concat, permute ↔ permute by the inverse, pixel shuffle ↔
//! unshuffle, broadcast_to ↔ sum_to_shape.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::shape;
use crate::tensor::Tensor;

/// Rank the gather kernel's uniform holds (two vec4 of dimensions).
const GATHER_MAX_RANK: usize = 8;

pub(crate) fn to_u32(op: &str, what: &str, v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::TooLarge(format!("{op}: {what} = {v} exceeds 2^32 - 1")))
}

fn words(op: &str, values: &[usize]) -> Result<Vec<u32>> {
    values.iter().map(|&v| to_u32(op, "index", v)).collect()
}

/// out[i] = x[Σ c_d · strides[d]] with c the multi-index of i over `view`;
/// the output has shape `out_shape` (same element count as `view`).
fn gather(
    x: &Tensor,
    view: &[usize],
    strides: &[usize],
    out_shape: &[usize],
    op: &str,
) -> Result<Tensor> {
    // Drop unit dimensions and merge neighbours that are contiguous in the
    // source: fewer divisions per element, identical index map.
    let mut dims: Vec<(usize, usize)> = Vec::with_capacity(view.len());
    for (&d, &s) in view.iter().zip(strides) {
        if d == 1 {
            continue;
        }
        match dims.last_mut() {
            Some(last) if last.1 == s * d => *last = (last.0 * d, s),
            _ => dims.push((d, s)),
        }
    }
    if dims.len() > GATHER_MAX_RANK {
        return Err(Error::Shape(format!(
            "{op}: index map over {view:?} has more than {GATHER_MAX_RANK} dimensions"
        )));
    }
    let dev = x.device();
    let out = Tensor::uninit(dev, out_shape, op)?;
    let n = out.numel();
    let mut params = vec![to_u32(op, "elements", n)?, dims.len() as u32, 0, 0];
    let mut dim_words: Vec<usize> = dims.iter().map(|d| d.0).collect();
    let mut stride_words: Vec<usize> = dims.iter().map(|d| d.1).collect();
    dim_words.resize(GATHER_MAX_RANK, 1);
    stride_words.resize(GATHER_MAX_RANK, 0);
    params.extend(words(op, &dim_words)?);
    params.extend(words(op, &stride_words)?);
    let pipeline = dev.pipeline("layout/gather", || {
        include_str!("../shaders/layout_gather.wgsl").into()
    });
    dev.dispatch(
        &pipeline,
        &params,
        &[x.buffer(), out.buffer()],
        dev.linear_grid(n),
    )?;
    Ok(out)
}

/// Copies `blocks` rows of `len` values from `src` (row stride `src_stride`,
/// offset `src_off`) into `dst` (row stride `dst_stride`, offset `dst_off`).
#[allow(clippy::too_many_arguments)]
fn copy_blocks(
    src: &Tensor,
    dst: &Tensor,
    blocks: usize,
    len: usize,
    src_stride: usize,
    src_off: usize,
    dst_stride: usize,
    dst_off: usize,
    op: &str,
) -> Result<()> {
    let n = blocks * len;
    if n == 0 {
        return Ok(());
    }
    let dev = src.device();
    let params = words(op, &[n, len, src_stride, src_off, dst_stride, dst_off])?;
    let pipeline = dev.pipeline("layout/copy_blocks", || {
        include_str!("../shaders/layout_copy_blocks.wgsl").into()
    });
    dev.dispatch(
        &pipeline,
        &params,
        &[src.buffer(), dst.buffer()],
        dev.linear_grid(n),
    )
}

/// Concatenates tensors of equal rank along `axis`; every other dimension
/// must agree.
pub fn concat(tensors: &[&Tensor], axis: usize) -> Result<Tensor> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::InvalidArgument("concat: needs at least one tensor".into()))?;
    let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
    let rank = first.shape().len();
    if axis >= rank {
        return Err(Error::InvalidArgument(format!(
            "concat: axis {axis} is out of range for shapes {shapes:?} (rank {rank})"
        )));
    }
    for (i, t) in tensors.iter().enumerate() {
        first.same_device(t, "concat")?;
        let s = t.shape();
        let agree = s.len() == rank && (0..rank).all(|d| d == axis || s[d] == first.shape()[d]);
        if !agree {
            return Err(Error::Shape(format!(
                "concat: tensor {i} has shape {s:?}, which does not match {:?} outside axis {axis} (shapes {shapes:?})",
                first.shape()
            )));
        }
    }
    let total: usize = shapes.iter().map(|s| s[axis]).sum();
    let mut out_shape = first.shape().to_vec();
    out_shape[axis] = total;
    kernels(first.device()).concat(tensors, axis, &out_shape)
}

/// Splits `x` along `axis` into pieces of `sizes` (which must add up to
/// `x.shape()[axis]`): the backward of [`concat`].
pub fn split(x: &Tensor, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor>> {
    let s = x.shape();
    if axis >= s.len() {
        return Err(Error::InvalidArgument(format!(
            "split: axis {axis} is out of range for shape {s:?}"
        )));
    }
    let sum: usize = sizes.iter().sum();
    if sum != s[axis] {
        return Err(Error::Shape(format!(
            "split: sizes {sizes:?} add up to {sum}, but shape {s:?} has {} along axis {axis}",
            s[axis]
        )));
    }
    kernels(x.device()).split(x, axis, sizes)
}

/// Output dimension `i` is input dimension `dims[i]` (NumPy `transpose`).
pub fn permute(x: &Tensor, dims: &[usize]) -> Result<Tensor> {
    let s = x.shape();
    let mut seen = vec![false; s.len()];
    let valid = dims.len() == s.len()
        && dims
            .iter()
            .all(|&d| d < s.len() && !std::mem::replace(&mut seen[d], true));
    if !valid {
        return Err(Error::InvalidArgument(format!(
            "permute: {dims:?} is not a permutation of the {} dimensions of {s:?}",
            s.len()
        )));
    }
    let out_shape: Vec<usize> = dims.iter().map(|&d| s[d]).collect();
    kernels(x.device()).permute(x, dims, &out_shape)
}

/// The permutation that undoes `dims`: `permute(permute(x, dims),
/// inverse_permutation(dims)) == x`, hence permute's backward. `dims` must be
/// a permutation of `0..dims.len()` (entries out of range are ignored).
pub fn inverse_permutation(dims: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; dims.len()];
    for (i, &d) in dims.iter().enumerate() {
        if let Some(slot) = inv.get_mut(d) {
            *slot = i;
        }
    }
    inv
}

fn check_image(op: &str, x: &Tensor) -> Result<[usize; 4]> {
    match *x.shape() {
        [n, c, h, w] => Ok([n, c, h, w]),
        _ => Err(Error::Shape(format!(
            "{op}: expected an NCHW tensor, got shape {:?}",
            x.shape()
        ))),
    }
}

/// [N, C·r², H, W] → [N, C, H·r, W·r] with PyTorch's channel order:
/// out[n, c, h·r + i, w·r + j] = x[n, c·r² + i·r + j, h, w].
pub fn pixel_shuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    let [n, cin, h, w] = check_image("pixel_shuffle", x)?;
    if r == 0 || cin % (r * r) != 0 {
        return Err(Error::InvalidArgument(format!(
            "pixel_shuffle: {cin} channels of {:?} are not divisible by r² = {} (r = {r})",
            x.shape(),
            r * r
        )));
    }
    let c = cin / (r * r);
    kernels(x.device()).pixel_shuffle(x, r, &[n, c, h * r, w * r])
}

/// [N, C, H·r, W·r] → [N, C·r², H, W], the inverse (and backward) of
/// [`pixel_shuffle`].
pub fn pixel_unshuffle(x: &Tensor, r: usize) -> Result<Tensor> {
    let [n, c, hr, wr] = check_image("pixel_unshuffle", x)?;
    if r == 0 || hr % r != 0 || wr % r != 0 {
        return Err(Error::InvalidArgument(format!(
            "pixel_unshuffle: height and width of {:?} are not divisible by r = {r}",
            x.shape()
        )));
    }
    let (h, w) = (hr / r, wr / r);
    kernels(x.device()).pixel_unshuffle(x, r, &[n, c * r * r, h, w])
}

/// Materialises `x` broadcast (NumPy rules) to `shape`.
pub fn broadcast_to(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let fits = shape.len() >= x.shape().len()
        && shape::broadcast("broadcast_to", x.shape(), shape).is_ok_and(|b| b == shape);
    if !fits {
        return Err(Error::Shape(format!(
            "broadcast_to: shape {:?} cannot be broadcast to {shape:?}",
            x.shape()
        )));
    }
    kernels(x.device()).broadcast_to(x, shape)
}

/// Sums `x` down to `shape`, a shape that broadcasts to `x.shape()`: over
/// the leading dimensions `shape` lacks and the dimensions where it has 1.
/// This is the backward of every broadcasting op (and of [`broadcast_to`]).
pub fn sum_to_shape(x: &Tensor, shape: &[usize]) -> Result<Tensor> {
    let xs = x.shape();
    let fits = shape.len() <= xs.len()
        && shape::broadcast("sum_to_shape", shape, xs).is_ok_and(|b| b == xs);
    if !fits {
        return Err(Error::Shape(format!(
            "sum_to_shape: {xs:?} cannot be summed to {shape:?} (it must broadcast to {xs:?})"
        )));
    }
    kernels(x.device()).sum_to_shape(x, shape)
}

/// out = scale · Σ of `x` over the dimensions flagged in `reduce`; `out_shape`
/// holds the kept dimensions in order (any shape of that element count).
/// The engine's one reduction (`ops::reduce`) does the work.
pub(crate) fn reduce_dims(
    x: &Tensor,
    reduce: &[bool],
    out_shape: &[usize],
    scale: f32,
    op: &str,
) -> Result<Tensor> {
    let axes: Vec<usize> = (0..reduce.len()).filter(|&d| reduce[d]).collect();
    if axes.is_empty() {
        return crate::ops::unary(x, crate::ops::UnaryOp::MulScalar(scale))?.reshape(out_shape);
    }
    crate::ops::reduce::reduce_scaled(op, x, &axes, true, scale)?.reshape(out_shape)
}

/// The layout kernels of a backend, given checked arguments.
pub(crate) trait LayoutKernels {
    /// `out_shape` is the concatenation's shape.
    fn concat(&self, tensors: &[&Tensor], axis: usize, out_shape: &[usize]) -> Result<Tensor>;
    /// `sizes` add up to `x.shape()[axis]`.
    fn split(&self, x: &Tensor, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor>>;
    /// `out_shape` is `x`'s shape permuted by `dims`.
    fn permute(&self, x: &Tensor, dims: &[usize], out_shape: &[usize]) -> Result<Tensor>;
    fn pixel_shuffle(&self, x: &Tensor, r: usize, out_shape: &[usize; 4]) -> Result<Tensor>;
    fn pixel_unshuffle(&self, x: &Tensor, r: usize, out_shape: &[usize; 4]) -> Result<Tensor>;
    /// `x`'s shape broadcasts to `shape`.
    fn broadcast_to(&self, x: &Tensor, shape: &[usize]) -> Result<Tensor>;
    /// `shape` broadcasts to `x`'s shape.
    fn sum_to_shape(&self, x: &Tensor, shape: &[usize]) -> Result<Tensor>;
}

impl LayoutKernels for Native {
    fn concat(&self, tensors: &[&Tensor], axis: usize, out_shape: &[usize]) -> Result<Tensor> {
        let shapes: Vec<&[usize]> = tensors.iter().map(|t| t.shape()).collect();
        let hosts: Vec<_> = tensors.iter().map(|t| t.host()).collect();
        let slices: Vec<&[f32]> = hosts.iter().map(|h| h.as_slice()).collect();
        let y = cpu::layout::concat(&slices, &shapes, axis);
        drop(hosts);
        Tensor::from_vec(tensors[0].device(), y, out_shape)
    }

    fn split(&self, x: &Tensor, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor>> {
        let s = x.shape();
        let parts = cpu::layout::split(&x.host(), s, axis, sizes);
        parts
            .into_iter()
            .zip(sizes)
            .map(|(v, &size)| {
                let mut piece_shape = s.to_vec();
                piece_shape[axis] = size;
                Tensor::from_vec(x.device(), v, &piece_shape)
            })
            .collect()
    }

    fn permute(&self, x: &Tensor, dims: &[usize], out_shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(
            x.device(),
            cpu::layout::permute(&x.host(), x.shape(), dims),
            out_shape,
        )
    }

    fn pixel_shuffle(&self, x: &Tensor, r: usize, out_shape: &[usize; 4]) -> Result<Tensor> {
        Tensor::from_vec(
            x.device(),
            cpu::layout::pixel_shuffle(&x.host(), x.shape(), r),
            out_shape,
        )
    }

    fn pixel_unshuffle(&self, x: &Tensor, r: usize, out_shape: &[usize; 4]) -> Result<Tensor> {
        Tensor::from_vec(
            x.device(),
            cpu::layout::pixel_unshuffle(&x.host(), x.shape(), r),
            out_shape,
        )
    }

    fn broadcast_to(&self, x: &Tensor, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(
            x.device(),
            cpu::layout::broadcast_to(&x.host(), x.shape(), shape),
            shape,
        )
    }

    fn sum_to_shape(&self, x: &Tensor, shape: &[usize]) -> Result<Tensor> {
        Tensor::from_vec(
            x.device(),
            cpu::layout::sum_to_shape(&x.host(), x.shape(), shape),
            shape,
        )
    }
}

impl LayoutKernels for Wgpu {
    fn concat(&self, tensors: &[&Tensor], axis: usize, out_shape: &[usize]) -> Result<Tensor> {
        let first = tensors[0];
        let total = out_shape[axis];
        let out = Tensor::uninit(first.device(), out_shape, "concat")?;
        let outer = shape::numel(&out_shape[..axis]);
        let inner = shape::numel(&out_shape[axis + 1..]);
        let mut offset = 0;
        for t in tensors {
            let len = t.shape()[axis] * inner;
            copy_blocks(
                t,
                &out,
                outer,
                len,
                len,
                0,
                total * inner,
                offset * inner,
                "concat",
            )?;
            offset += t.shape()[axis];
        }
        Ok(out)
    }

    fn split(&self, x: &Tensor, axis: usize, sizes: &[usize]) -> Result<Vec<Tensor>> {
        let s = x.shape();
        let outer = shape::numel(&s[..axis]);
        let inner = shape::numel(&s[axis + 1..]);
        let mut offset = 0;
        let mut pieces = Vec::with_capacity(sizes.len());
        for &size in sizes {
            let mut piece_shape = s.to_vec();
            piece_shape[axis] = size;
            let piece = Tensor::uninit(x.device(), &piece_shape, "split")?;
            let len = size * inner;
            copy_blocks(
                x,
                &piece,
                outer,
                len,
                s[axis] * inner,
                offset * inner,
                len,
                0,
                "split",
            )?;
            offset += size;
            pieces.push(piece);
        }
        Ok(pieces)
    }

    fn permute(&self, x: &Tensor, dims: &[usize], out_shape: &[usize]) -> Result<Tensor> {
        let own = shape::strides(x.shape());
        let strides: Vec<usize> = dims.iter().map(|&d| own[d]).collect();
        gather(x, out_shape, &strides, out_shape, "permute")
    }

    fn pixel_shuffle(&self, x: &Tensor, r: usize, out_shape: &[usize; 4]) -> Result<Tensor> {
        let [n, c, hr, wr] = *out_shape;
        let (h, w) = (hr / r, wr / r);
        // x as [N·C, i, j, h, w]; the output walks [N·C, h, i, w, j].
        let view = [n * c, h, r, w, r];
        let strides = [r * r * h * w, w, r * h * w, 1, h * w];
        gather(x, &view, &strides, out_shape, "pixel_shuffle")
    }

    fn pixel_unshuffle(&self, x: &Tensor, r: usize, out_shape: &[usize; 4]) -> Result<Tensor> {
        let [n, c, hr, wr] = check_image("pixel_unshuffle", x)?;
        let (h, w) = (hr / r, wr / r);
        // x as [N·C, h, i, w, j]; the output walks [N·C, i, j, h, w].
        let view = [n * c, r, r, h, w];
        let strides = [hr * wr, wr, 1, r * wr, r];
        gather(x, &view, &strides, out_shape, "pixel_unshuffle")
    }

    fn broadcast_to(&self, x: &Tensor, shape: &[usize]) -> Result<Tensor> {
        let strides = shape::broadcast_strides(x.shape(), shape);
        gather(x, shape, &strides, shape, "broadcast_to")
    }

    fn sum_to_shape(&self, x: &Tensor, shape: &[usize]) -> Result<Tensor> {
        let xs = x.shape();
        let pad = xs.len() - shape.len();
        let reduce: Vec<bool> = (0..xs.len())
            .map(|d| d < pad || (shape[d - pad] == 1 && xs[d] != 1))
            .collect();
        reduce_dims(x, &reduce, shape, 1.0, "sum_to_shape")
    }
}
