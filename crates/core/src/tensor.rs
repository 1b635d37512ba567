//! GPU tensors: f32, contiguous, row-major, up to 5-D.
//!
//! A tensor is a shape plus a reference-counted GPU buffer from the pool; the
//! buffer returns to the pool when the last tensor using it is dropped, so a
//! reshape costs nothing and nothing is freed twice.

use std::sync::Arc;

use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops;
use crate::random;
use crate::shape;

pub(crate) struct Storage {
    buffer: Option<wgpu::Buffer>,
    class: u64,
    device: Arc<Device>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Some(b) = self.buffer.take() {
            self.device.release(self.class, b);
        }
    }
}

/// How a tensor takes part in autograd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GradRef {
    /// A constant: no gradient flows to it.
    None,
    /// A parameter (leaf) whose gradient accumulates across backward passes.
    Param(u64),
    /// The output of a recorded op: node `index` of tape generation `generation`.
    Node { generation: u64, index: usize },
}

/// An f32 tensor on a device.
#[derive(Clone)]
pub struct Tensor {
    shape: Vec<usize>,
    storage: Arc<Storage>,
    pub(crate) grad: GradRef,
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor{:?}", self.shape)
    }
}

impl Tensor {
    /// An uninitialised tensor; `what` names the op in size errors.
    pub(crate) fn uninit(device: &Arc<Device>, shape: &[usize], what: &str) -> Result<Tensor> {
        let n = shape::validate(shape)?;
        let bytes = device.check_size(what, n)?;
        let (buffer, class) = device.alloc(bytes);
        Ok(Tensor {
            shape: shape.to_vec(),
            storage: Arc::new(Storage {
                buffer: Some(buffer),
                class,
                device: device.clone(),
            }),
            grad: GradRef::None,
        })
    }

    /// Copies `data` to the device as a tensor of `shape`.
    pub fn from_slice(device: &Arc<Device>, data: &[f32], shape: &[usize]) -> Result<Tensor> {
        let n = shape::validate(shape)?;
        if n != data.len() {
            return Err(Error::Shape(format!(
                "fromData: shape {shape:?} holds {n} values but {} were given",
                data.len()
            )));
        }
        let t = Tensor::uninit(device, shape, "fromData")?;
        device.upload(t.buffer(), data)?;
        Ok(t)
    }

    /// A tensor of `shape` filled with `value` on the device (no upload).
    pub fn full(device: &Arc<Device>, shape: &[usize], value: f32) -> Result<Tensor> {
        let t = Tensor::uninit(device, shape, "full")?;
        ops::fill(&t, value)?;
        Ok(t)
    }

    pub fn zeros(device: &Arc<Device>, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(device, shape, 0.0)
    }

    pub fn ones(device: &Arc<Device>, shape: &[usize]) -> Result<Tensor> {
        Tensor::full(device, shape, 1.0)
    }

    /// Uniform values in [low, high), reproducible from `seed` on every adapter
    /// (drawn on the host with a counter-based generator, then uploaded).
    pub fn rand(device: &Arc<Device>, shape: &[usize], seed: u64, low: f32, high: f32) -> Result<Tensor> {
        let n = shape::validate(shape)?;
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(Error::InvalidArgument(format!(
                "rand: need finite low < high, got low = {low}, high = {high}"
            )));
        }
        Tensor::from_slice(device, &random::uniform(seed, n, low, high), shape)
    }

    /// Normal values N(mean, std²), reproducible from `seed` on every adapter.
    pub fn randn(device: &Arc<Device>, shape: &[usize], seed: u64, mean: f32, std: f32) -> Result<Tensor> {
        let n = shape::validate(shape)?;
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(Error::InvalidArgument(format!(
                "randn: need finite mean and std >= 0, got mean = {mean}, std = {std}"
            )));
        }
        Tensor::from_slice(device, &random::normal(seed, n, mean, std), shape)
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn numel(&self) -> usize {
        shape::numel(&self.shape)
    }

    pub fn device(&self) -> &Arc<Device> {
        &self.storage.device
    }

    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        // Present until Storage is dropped, which cannot happen while &self lives.
        self.storage.buffer.as_ref().expect("live storage has a buffer")
    }

    /// Reads the values back to the host (submits pending work and waits).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        self.device().read(self.buffer(), self.numel())
    }

    /// The same data under another shape with the same element count, as a
    /// constant (use `functional::reshape` to keep the gradient path).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        let n = shape::validate(shape)?;
        if n != self.numel() {
            return Err(Error::Shape(format!(
                "reshape: cannot view {:?} ({} values) as {shape:?} ({n} values)",
                self.shape,
                self.numel()
            )));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            storage: self.storage.clone(),
            grad: GradRef::None,
        })
    }

    /// A copy with its own buffer.
    pub fn deep_clone(&self) -> Result<Tensor> {
        let t = Tensor::uninit(self.device(), &self.shape, "clone")?;
        self.device()
            .copy(self.buffer(), t.buffer(), (self.numel() * 4) as u64);
        Ok(t)
    }

    /// The same tensor cut off from autograd.
    pub fn detach(&self) -> Tensor {
        Tensor {
            grad: GradRef::None,
            ..self.clone()
        }
    }

    /// True when gradients flow to this tensor (a parameter or a recorded op's output).
    pub fn requires_grad(&self) -> bool {
        self.grad != GradRef::None
    }

    /// True when both tensors share one buffer.
    pub fn same_storage(&self, other: &Tensor) -> bool {
        Arc::ptr_eq(&self.storage, &other.storage)
    }

    /// True when both tensors live on the same device.
    pub(crate) fn same_device(&self, other: &Tensor, op: &str) -> Result<()> {
        if Arc::ptr_eq(self.device(), other.device()) {
            Ok(())
        } else {
            Err(Error::InvalidArgument(format!(
                "{op}: tensors live on different devices"
            )))
        }
    }
}
