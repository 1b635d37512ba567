//! Batched matrix product.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::device::KernelVariant;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `a · b` over the last two dimensions: `[..., M, K] · [..., K, N] → [..., M, N]`.
/// Leading (batch) dimensions must match, or one side may have none (it is
/// then shared by every batch entry).
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    a.same_device(b, "matmul")?;
    let (sa, sb) = (a.shape(), b.shape());
    if sa.len() < 2 || sb.len() < 2 {
        return Err(Error::Shape(format!(
            "matmul: both operands need at least 2 dimensions, got {sa:?} and {sb:?}"
        )));
    }
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    if k != k2 {
        return Err(Error::Shape(format!(
            "matmul: inner dimensions differ: {sa:?} · {sb:?} ({k} vs {k2})"
        )));
    }
    let (ba, bb) = (&sa[..sa.len() - 2], &sb[..sb.len() - 2]);
    let batch_shape = match (ba.is_empty(), bb.is_empty()) {
        (_, true) => ba.to_vec(),
        (true, false) => bb.to_vec(),
        _ if ba == bb => ba.to_vec(),
        _ => {
            return Err(Error::Shape(format!(
                "matmul: batch dimensions differ: {sa:?} · {sb:?}"
            )))
        }
    };
    let batch: usize = batch_shape.iter().product();
    let mut out_shape = batch_shape.clone();
    out_shape.extend([m, n]);
    let dims = MatmulDims {
        batch,
        m,
        k,
        n,
        a_batched: !ba.is_empty(),
        b_batched: !bb.is_empty(),
    };
    kernels(a.device()).matmul(a, b, &dims, &out_shape)
}

/// The checked sizes of a batched product: `batch` products of
/// `[m, k] · [k, n]`; an operand without batch dimensions is shared.
pub(crate) struct MatmulDims {
    pub batch: usize,
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub a_batched: bool,
    pub b_batched: bool,
}

/// The matrix product of a backend, given checked operands.
pub(crate) trait MatmulKernels {
    fn matmul(
        &self,
        a: &Tensor,
        b: &Tensor,
        dims: &MatmulDims,
        out_shape: &[usize],
    ) -> Result<Tensor>;
}

impl MatmulKernels for Native {
    fn matmul(
        &self,
        a: &Tensor,
        b: &Tensor,
        dims: &MatmulDims,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let &MatmulDims {
            batch,
            m,
            k,
            n,
            a_batched,
            b_batched,
        } = dims;
        let c = cpu::gemm::matmul(&a.host(), &b.host(), batch, m, k, n, !a_batched, !b_batched);
        Tensor::from_vec(a.device(), c, out_shape)
    }
}

impl MatmulKernels for Wgpu {
    fn matmul(
        &self,
        a: &Tensor,
        b: &Tensor,
        dims: &MatmulDims,
        out_shape: &[usize],
    ) -> Result<Tensor> {
        let &MatmulDims {
            batch,
            m,
            k,
            n,
            a_batched,
            b_batched,
        } = dims;
        let dev = a.device();
        let c = Tensor::uninit(dev, out_shape, "matmul")?;
        if k == 0 {
            crate::ops::fill(&c, 0.0)?;
            return Ok(c);
        }
        let stride_a = if a_batched { m * k } else { 0 };
        let stride_b = if b_batched { k * n } else { 0 };
        let params = [m, n, k, stride_a, stride_b, m * n].map(|v| v as u32);
        let max = dev.info().max_workgroups_per_dimension as usize;
        let (pipeline, tile) = match dev.info().kernel_variant {
            KernelVariant::Tiled => (
                dev.pipeline("matmul/tiled", || {
                    include_str!("../shaders/matmul_tiled.wgsl").into()
                }),
                64,
            ),
            // vec4 loads need rows of A and B that start on 16-byte boundaries.
            KernelVariant::Register if k % 4 == 0 && n % 4 == 0 => (
                dev.pipeline("matmul/register_vec4", || {
                    include_str!("../shaders/matmul_register_vec4.wgsl").into()
                }),
                64,
            ),
            KernelVariant::Register => (
                dev.pipeline("matmul/register", || {
                    include_str!("../shaders/matmul_register.wgsl").into()
                }),
                64,
            ),
        };
        let grid = [n.div_ceil(tile), m.div_ceil(tile), batch];
        if grid.iter().any(|&g| g > max) {
            return Err(Error::TooLarge(format!(
                "matmul: {out_shape:?} needs a grid of {grid:?} workgroups; this adapter allows {max} per dimension"
            )));
        }
        dev.dispatch(
            &pipeline,
            &params,
            &[a.buffer(), b.buffer(), c.buffer()],
            grid.map(|g| g as u32),
        )?;
        Ok(c)
    }
}
