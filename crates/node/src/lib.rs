//! napi-rs binding of spikeir-core. It only converts types: JS numbers and
//! typed arrays in, core calls, core errors out as JS exceptions. Every export
//! is `catch_unwind`, so even an engine bug surfaces as an exception, never a
//! crash of the Node process.

use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::Float32Array;
use napi::{Error, Result, Status};
use napi_derive::napi;
use spikeir_core as core;

fn js_err(e: core::Error) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
}

fn invalid(msg: String) -> Error {
    Error::new(Status::InvalidArg, msg)
}

/// The device that new tensors go to; opened on first use.
static DEVICE: Mutex<Option<Arc<core::Device>>> = Mutex::new(None);

fn default_device() -> Result<Arc<core::Device>> {
    let mut slot = DEVICE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = slot.as_ref() {
        return Ok(d.clone());
    }
    let d = core::Device::new(&core::DeviceOptions::default()).map_err(js_err)?;
    *slot = Some(d.clone());
    Ok(d)
}

/// Options for opening the device.
#[napi(object)]
pub struct DeviceOptions {
    /// `auto`, `discrete`, `integrated`, `cpu`, `lavapipe`, or a substring of
    /// the adapter name. Defaults to `SPIKEIR_ADAPTER`, else `auto`.
    pub adapter: Option<String>,
    /// `tiled` (shared-memory tiles) or `register` (no shared memory, for CPU
    /// adapters). Defaults by adapter type.
    pub kernel_variant: Option<String>,
}

/// What the device is and the limits that matter for kernels.
#[napi(object)]
pub struct DeviceInfo {
    pub backend: String,
    pub adapter_name: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_storage_binding_bytes: f64,
    pub max_buffer_bytes: f64,
    pub max_workgroup_size: Vec<u32>,
    pub max_invocations_per_workgroup: u32,
    pub max_workgroups_per_dimension: u32,
    pub shared_memory_bytes: u32,
    pub kernel_variant: String,
}

/// GPU memory held by live tensors, and cached for reuse.
#[napi(object)]
pub struct MemoryInfo {
    pub bytes: f64,
    pub buffers: f64,
    pub cached_bytes: f64,
}

/// Opens (or reopens) the device that new tensors go to. Tensors made on the
/// previous device stay valid but cannot be combined with new ones.
#[napi(catch_unwind)]
pub fn init_device(options: Option<DeviceOptions>) -> Result<DeviceInfo> {
    let options = options.unwrap_or(DeviceOptions {
        adapter: None,
        kernel_variant: None,
    });
    let kernel_variant = match options.kernel_variant.as_deref() {
        None => None,
        Some("tiled") => Some(core::KernelVariant::Tiled),
        Some("register") => Some(core::KernelVariant::Register),
        Some(other) => {
            return Err(invalid(format!(
                "unknown kernelVariant '{other}' (known: tiled, register)"
            )))
        }
    };
    let d = core::Device::new(&core::DeviceOptions {
        adapter: options.adapter,
        kernel_variant,
    })
    .map_err(js_err)?;
    let info = to_info(d.info());
    *DEVICE.lock().unwrap_or_else(|e| e.into_inner()) = Some(d);
    Ok(info)
}

fn to_info(i: &core::DeviceInfo) -> DeviceInfo {
    DeviceInfo {
        backend: i.backend.clone(),
        adapter_name: i.adapter_name.clone(),
        device_type: i.device_type.clone(),
        driver: i.driver.clone(),
        driver_info: i.driver_info.clone(),
        max_storage_binding_bytes: i.max_storage_binding_bytes as f64,
        max_buffer_bytes: i.max_buffer_bytes as f64,
        max_workgroup_size: i.max_workgroup_size.to_vec(),
        max_invocations_per_workgroup: i.max_invocations_per_workgroup,
        max_workgroups_per_dimension: i.max_workgroups_per_dimension,
        shared_memory_bytes: i.shared_memory_bytes,
        kernel_variant: match i.kernel_variant {
            core::KernelVariant::Tiled => "tiled".into(),
            core::KernelVariant::Register => "register".into(),
        },
    }
}

/// Backend, adapter and limits of the current device (opening it if needed).
#[napi(catch_unwind)]
pub fn device_info() -> Result<DeviceInfo> {
    Ok(to_info(default_device()?.info()))
}

/// Bytes and buffers held by live tensors on the current device.
#[napi(catch_unwind)]
pub fn memory() -> Result<MemoryInfo> {
    let (bytes, buffers, cached) = default_device()?.memory();
    Ok(MemoryInfo {
        bytes: bytes as f64,
        buffers: buffers as f64,
        cached_bytes: cached as f64,
    })
}

/// Waits until the device has finished all submitted work.
#[napi(catch_unwind)]
pub fn synchronize() -> Result<()> {
    default_device()?.synchronize().map_err(js_err)
}

fn to_shape(op: &str, shape: &[f64]) -> Result<Vec<usize>> {
    shape
        .iter()
        .map(|&d| {
            if d.is_finite() && d >= 0.0 && d.fract() == 0.0 && d <= u32::MAX as f64 {
                Ok(d as usize)
            } else {
                Err(invalid(format!(
                    "{op}: shape {shape:?} must hold non-negative integers"
                )))
            }
        })
        .collect()
}

fn to_seed(seed: f64) -> Result<u64> {
    if seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= 9007199254740991.0 {
        Ok(seed as u64)
    } else {
        Err(invalid(format!(
            "seed {seed} must be a non-negative safe integer"
        )))
    }
}

/// A tensor on the device. `dispose()` frees its GPU memory at once; any
/// later use throws.
#[napi]
pub struct NativeTensor {
    inner: Option<core::Tensor>,
}

impl NativeTensor {
    fn wrap(t: core::Tensor) -> NativeTensor {
        NativeTensor { inner: Some(t) }
    }

    fn get(&self, op: &str) -> Result<&core::Tensor> {
        self.inner.as_ref().ok_or_else(|| {
            js_err(core::Error::Disposed(format!(
                "{op}: this tensor was disposed"
            )))
        })
    }
}

#[napi]
impl NativeTensor {
    /// Copies `data` to the device with the given shape.
    #[napi(factory, catch_unwind)]
    pub fn from_data(data: Float32Array, shape: Vec<f64>) -> Result<NativeTensor> {
        let shape = to_shape("fromData", &shape)?;
        core::Tensor::from_slice(&default_device()?, &data, &shape)
            .map(NativeTensor::wrap)
            .map_err(js_err)
    }

    /// A tensor filled with `value`.
    #[napi(factory, catch_unwind)]
    pub fn full(shape: Vec<f64>, value: f64) -> Result<NativeTensor> {
        let shape = to_shape("full", &shape)?;
        core::Tensor::full(&default_device()?, &shape, value as f32)
            .map(NativeTensor::wrap)
            .map_err(js_err)
    }

    /// Uniform values in [low, high) from `seed`.
    #[napi(factory, catch_unwind)]
    pub fn rand(shape: Vec<f64>, seed: f64, low: f64, high: f64) -> Result<NativeTensor> {
        let shape = to_shape("rand", &shape)?;
        core::Tensor::rand(&default_device()?, &shape, to_seed(seed)?, low as f32, high as f32)
            .map(NativeTensor::wrap)
            .map_err(js_err)
    }

    /// Normal values N(mean, std²) from `seed`.
    #[napi(factory, catch_unwind)]
    pub fn randn(shape: Vec<f64>, seed: f64, mean: f64, std: f64) -> Result<NativeTensor> {
        let shape = to_shape("randn", &shape)?;
        core::Tensor::randn(&default_device()?, &shape, to_seed(seed)?, mean as f32, std as f32)
            .map(NativeTensor::wrap)
            .map_err(js_err)
    }

    #[napi(getter, catch_unwind)]
    pub fn shape(&self) -> Result<Vec<u32>> {
        Ok(self.get("shape")?.shape().iter().map(|&d| d as u32).collect())
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }

    /// Reads the values back (waits for pending work).
    #[napi(catch_unwind)]
    pub fn to_float32_array(&self) -> Result<Float32Array> {
        let v = self.get("toFloat32Array")?.to_vec().map_err(js_err)?;
        Ok(Float32Array::new(v))
    }

    /// Frees the GPU buffer now (when no other tensor shares it). Idempotent.
    #[napi]
    pub fn dispose(&mut self) {
        self.inner = None;
    }

    #[napi(catch_unwind)]
    pub fn reshape(&self, shape: Vec<f64>) -> Result<NativeTensor> {
        let shape = to_shape("reshape", &shape)?;
        self.get("reshape")?
            .reshape(&shape)
            .map(NativeTensor::wrap)
            .map_err(js_err)
    }

    /// Elementwise `add`, `sub`, `mul`, `div` with broadcasting.
    #[napi(catch_unwind)]
    pub fn binary(&self, op: String, other: &NativeTensor) -> Result<NativeTensor> {
        let op = core::ops::BinaryOp::from_name(&op).map_err(js_err)?;
        let a = self.get(op.name())?;
        let b = other.get(op.name())?;
        core::ops::binary(a, b, op)
            .map(NativeTensor::wrap)
            .map_err(js_err)
    }

    /// Unary and tensor–scalar ops (`neg`, `exp`, `add` with `scalar`, …).
    #[napi(catch_unwind)]
    pub fn unary(&self, op: String, scalar: Option<f64>) -> Result<NativeTensor> {
        let u = core::ops::UnaryOp::from_name(&op, scalar.unwrap_or(0.0) as f32).map_err(js_err)?;
        core::ops::unary(self.get(&op)?, u)
            .map(NativeTensor::wrap)
            .map_err(js_err)
    }

    #[napi(catch_unwind)]
    pub fn matmul(&self, other: &NativeTensor) -> Result<NativeTensor> {
        core::ops::matmul(self.get("matmul")?, other.get("matmul")?)
            .map(NativeTensor::wrap)
            .map_err(js_err)
    }
}
