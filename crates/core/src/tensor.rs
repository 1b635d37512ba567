//! GPU tensors: f32, contiguous, row-major, up to 5-D.
//!
//! A tensor is a shape plus a reference-counted GPU buffer from the pool; the
//! buffer returns to the pool when the last tensor using it is dropped, so a
//! reshape costs nothing and nothing is freed twice.
//!
//! Kernels never look at the storage kind: `backend::kernels` picks them by
//! device. The only other code that asks where a tensor lives is here, in
//! the storage methods (allocation, upload, readback, copies and the CPU's
//! in-place gradient accumulation), because they are about where the bytes
//! are rather than about computing with them.

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::device::Device;
use crate::error::{Error, Result};
use crate::ops;
use crate::random;
use crate::shape;

/// Where a tensor's values live.
pub(crate) enum Data {
    /// A pooled GPU buffer of `class` bytes.
    Gpu { buffer: wgpu::Buffer, class: u64 },
    /// Host memory of the native CPU backend (written in place by optimizers).
    Cpu(RwLock<Vec<f32>>),
}

pub(crate) struct Storage {
    data: Option<Data>,
    device: Arc<Device>,
}

impl Drop for Storage {
    fn drop(&mut self) {
        match self.data.take() {
            Some(Data::Gpu { buffer, class }) => self.device.release(class, buffer),
            Some(Data::Cpu(v)) => {
                let v = v.into_inner().unwrap_or_else(|e| e.into_inner());
                self.device.note_cpu(4 * v.len() as u64, false);
                crate::cpu::buffers::recycle(v);
            }
            None => {}
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
        let data = if device.is_cpu() {
            // Sizes up to the physical memory pass check_size; refuse what
            // the allocator cannot give instead of aborting the process.
            let v = crate::cpu::buffers::try_zeroed(n).ok_or_else(|| {
                Error::TooLarge(format!(
                    "{what}: cannot allocate {bytes} bytes of host memory for {shape:?}"
                ))
            })?;
            device.note_cpu(bytes, true);
            Data::Cpu(RwLock::new(v))
        } else {
            let (buffer, class) = device.alloc(bytes);
            Data::Gpu { buffer, class }
        };
        Ok(Tensor::wrap(device, shape, data))
    }

    fn wrap(device: &Arc<Device>, shape: &[usize], data: Data) -> Tensor {
        Tensor {
            shape: shape.to_vec(),
            storage: Arc::new(Storage {
                data: Some(data),
                device: device.clone(),
            }),
            grad: GradRef::None,
        }
    }

    /// A CPU-backend tensor that takes ownership of `values` (no copy).
    pub(crate) fn from_vec(
        device: &Arc<Device>,
        values: Vec<f32>,
        shape: &[usize],
    ) -> Result<Tensor> {
        let n = shape::validate(shape)?;
        if n != values.len() {
            return Err(Error::Shape(format!(
                "fromData: shape {shape:?} holds {n} values but {} were given",
                values.len()
            )));
        }
        if !device.is_cpu() {
            return Tensor::from_slice(device, &values, shape);
        }
        device.note_cpu(4 * n as u64, true);
        Ok(Tensor::wrap(device, shape, Data::Cpu(RwLock::new(values))))
    }

    /// True when the tensor lives on the native CPU backend.
    pub fn is_cpu(&self) -> bool {
        matches!(self.storage.data, Some(Data::Cpu(_)))
    }

    /// The host values of a CPU tensor, for reading.
    pub(crate) fn host(&self) -> RwLockReadGuard<'_, Vec<f32>> {
        match &self.storage.data {
            Some(Data::Cpu(v)) => v.read().unwrap_or_else(|e| e.into_inner()),
            _ => panic!("host() on a GPU tensor"),
        }
    }

    /// The host values of a CPU tensor, for writing in place.
    pub(crate) fn host_mut(&self) -> RwLockWriteGuard<'_, Vec<f32>> {
        match &self.storage.data {
            Some(Data::Cpu(v)) => v.write().unwrap_or_else(|e| e.into_inner()),
            _ => panic!("host_mut() on a GPU tensor"),
        }
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
        if device.is_cpu() {
            return Tensor::from_vec(device, data.to_vec(), shape);
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
    pub fn rand(
        device: &Arc<Device>,
        shape: &[usize],
        seed: u64,
        low: f32,
        high: f32,
    ) -> Result<Tensor> {
        let n = shape::validate(shape)?;
        if !(low.is_finite() && high.is_finite() && low < high) {
            return Err(Error::InvalidArgument(format!(
                "rand: need finite low < high, got low = {low}, high = {high}"
            )));
        }
        Tensor::from_slice(device, &random::uniform(seed, n, low, high), shape)
    }

    /// Normal values N(mean, std²), reproducible from `seed` on every adapter.
    pub fn randn(
        device: &Arc<Device>,
        shape: &[usize],
        seed: u64,
        mean: f32,
        std: f32,
    ) -> Result<Tensor> {
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
        // Present until Storage is dropped, which cannot happen while &self
        // lives; GPU kernels are only reached for GPU tensors.
        match &self.storage.data {
            Some(Data::Gpu { buffer, .. }) => buffer,
            _ => panic!("a GPU kernel was reached for a CPU tensor"),
        }
    }

    /// Reads the values back to the host (submits pending work and waits).
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        if self.is_cpu() {
            return Ok(self.host().clone());
        }
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
        if self.is_cpu() {
            return Tensor::from_vec(self.device(), self.host().clone(), &self.shape);
        }
        let t = Tensor::uninit(self.device(), &self.shape, "clone")?;
        self.device()
            .copy(self.buffer(), t.buffer(), (self.numel() * 4) as u64);
        Ok(t)
    }

    /// Overwrites this tensor's values with `src`'s (same shape), in place on
    /// the device: for loading weights into existing parameters.
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        if src.shape() != self.shape() {
            return Err(Error::Shape(format!(
                "assign: source {:?} does not match destination {:?}",
                src.shape(),
                self.shape()
            )));
        }
        self.same_device(src, "assign")?;
        if self.is_cpu() {
            if !self.same_storage(src) {
                let values = src.host().clone();
                self.host_mut().copy_from_slice(&values);
            }
            return Ok(());
        }
        self.device()
            .copy(src.buffer(), self.buffer(), (self.numel() * 4) as u64);
        Ok(())
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

    /// `self += other` in place when both are CPU tensors of one shape and no
    /// other handle shares `self`'s storage (so nobody can see the change);
    /// returns whether it did.
    pub(crate) fn add_assign_if_unique(&self, other: &Tensor) -> bool {
        if !self.is_cpu()
            || !other.is_cpu()
            || self.shape != other.shape
            || Arc::strong_count(&self.storage) != 1
            || Arc::weak_count(&self.storage) != 0
        {
            return false;
        }
        crate::cpu::elementwise::add_assign(&mut self.host_mut(), &other.host());
        true
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
