//! napi-rs binding of spikeir-core. It only converts types: JS numbers and
//! typed arrays in, core calls, core errors out as JS exceptions. Every export
//! is `catch_unwind`, so even an engine bug surfaces as an exception, never a
//! crash of the Node process.

use std::sync::{Arc, Mutex, Weak};

use napi::{Error, Result, Status};
use napi_derive::napi;
use spikeir_core as core;

mod data;
mod files;
mod optim;
mod signals;
mod tensor;

pub(crate) fn js_err(e: core::Error) -> Error {
    Error::new(Status::GenericFailure, e.to_string())
}

pub(crate) fn invalid(msg: String) -> Error {
    Error::new(Status::InvalidArg, msg)
}

/// The device that new tensors go to; opened on first use.
static DEVICE: Mutex<Option<Arc<core::Device>>> = Mutex::new(None);

/// Every device this process opened (a replaced one lives on while its
/// tensors do), so that `finishSubmittedWork` can wait for each.
static OPENED: Mutex<Vec<Weak<core::Device>>> = Mutex::new(Vec::new());

fn opened(d: &Arc<core::Device>) {
    let mut all = OPENED.lock().unwrap_or_else(|e| e.into_inner());
    all.retain(|w| w.strong_count() > 0);
    all.push(Arc::downgrade(d));
}

pub(crate) fn default_device() -> Result<Arc<core::Device>> {
    let mut slot = DEVICE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(d) = slot.as_ref() {
        return Ok(d.clone());
    }
    let d = core::Device::new(&core::DeviceOptions::default()).map_err(js_err)?;
    opened(&d);
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
    /// Tensor handles not yet disposed (several may share one buffer).
    pub handles: f64,
    /// The most bytes live tensors held at once since `resetPeakMemory()`.
    pub peak_bytes: f64,
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
    opened(&d);
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
    let dev = default_device()?;
    let (bytes, buffers, cached) = dev.memory();
    Ok(MemoryInfo {
        bytes: bytes as f64,
        buffers: buffers as f64,
        cached_bytes: cached as f64,
        handles: tensor::live_handles() as f64,
        peak_bytes: dev.peak_bytes() as f64,
    })
}

/// Counts of GPU work since the device opened (all zero on the native CPU backend).
#[napi(object)]
pub struct GpuCountersInfo {
    pub dispatches: f64,
    pub compute_passes: f64,
    pub submits: f64,
    /// wgpu buffers created: tensor storage the pool could not serve, readback staging, uniform regions.
    pub buffer_allocations: f64,
    pub bind_groups_created: f64,
    pub uniform_writes: f64,
    pub uploads: f64,
    pub readbacks: f64,
}

/// Counts of GPU work on the current device since it opened.
#[napi(catch_unwind)]
pub fn gpu_counters() -> Result<GpuCountersInfo> {
    let c = default_device()?.gpu_counters();
    Ok(GpuCountersInfo {
        dispatches: c.dispatches as f64,
        compute_passes: c.compute_passes as f64,
        submits: c.submits as f64,
        buffer_allocations: c.buffer_allocations as f64,
        bind_groups_created: c.bind_groups_created as f64,
        uniform_writes: c.uniform_writes as f64,
        uploads: c.uploads as f64,
        readbacks: c.readbacks as f64,
    })
}

/// Starts a new high-water mark of device memory at what is held now.
#[napi(catch_unwind)]
pub fn reset_peak_memory() -> Result<()> {
    default_device()?.reset_peak();
    Ok(())
}

/// One wgpu adapter and whether it runs spikeir's kernels.
#[napi(object)]
pub struct AdapterProbe {
    pub name: String,
    pub device_type: String,
    pub backend: String,
    pub usable: bool,
    /// Why the adapter is not usable (empty when it is).
    pub reason: String,
}

/// Every wgpu adapter of this machine, each opened and given a small kernel
/// to run; `auto` never picks one that failed.
#[napi(catch_unwind)]
pub fn probe_adapters() -> Vec<AdapterProbe> {
    core::Device::probe_adapters()
        .into_iter()
        .map(|p| AdapterProbe {
            name: p.name,
            device_type: p.device_type,
            backend: p.backend,
            usable: p.usable.is_ok(),
            reason: p.usable.err().unwrap_or_default(),
        })
        .collect()
}

/// Waits until the device has finished all submitted work.
#[napi(catch_unwind)]
pub fn synchronize() -> Result<()> {
    default_device()?.synchronize().map_err(js_err)
}

/// Waits until every device this process opened has finished the work
/// submitted to it, opening none. Called as the process exits: a driver
/// thread still running a kernel (lavapipe compiles them with LLVM as it runs
/// a submission) while the process's static destructors run can crash it.
/// Errors are dropped: at exit there is no one left to report them to.
#[napi(catch_unwind)]
pub fn finish_submitted_work() {
    let all: Vec<_> = OPENED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for d in all {
        let _ = d.synchronize();
    }
}

/// Runs the enclosed ops without recording them for autograd; calls nest.
#[napi(catch_unwind)]
pub fn enter_no_grad() {
    core::autograd::enter_no_grad();
}

/// Ends a region started by `enterNoGrad`.
#[napi(catch_unwind)]
pub fn exit_no_grad() {
    core::autograd::exit_no_grad();
}

/// Forgets every parameter's accumulated gradient.
#[napi(catch_unwind)]
pub fn zero_grad() {
    core::autograd::zero_grad();
}

/// Drops the recorded graph without a backward pass.
#[napi(catch_unwind)]
pub fn clear_tape() {
    core::autograd::clear_tape();
}

/// Recorded ops still holding saved tensors.
#[napi(catch_unwind)]
pub fn tape_length() -> u32 {
    core::autograd::tape_len() as u32
}

/// Time per op kind since the last reset, as a table (timed only while
/// `SPIKEIR_PROFILE` is set); `reset` clears the totals after reading them.
#[napi(catch_unwind)]
pub fn profile_report(reset: Option<bool>) -> String {
    let r = core::profile::report();
    if reset.unwrap_or(false) {
        core::profile::reset();
    }
    r
}
