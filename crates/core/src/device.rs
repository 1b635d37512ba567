//! The wgpu device: adapter choice, limits, the pipeline cache, the buffer
//! pool, and the one command encoder that dispatches are batched into.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::pool::{size_class, Pool};

/// Invocations per workgroup for one-dimensional kernels.
pub(crate) const LINEAR_WORKGROUP: u32 = 256;

/// Submit the pending encoder after this many dispatches, so a long graph
/// does not hold an unbounded command buffer.
const MAX_PENDING_DISPATCHES: u32 = 512;

/// Which device to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdapterChoice {
    /// A GPU adapter if one exists (discrete, then integrated, then virtual),
    /// else the native CPU backend.
    Auto,
    /// A GPU adapter; an error when there is none.
    Gpu,
    /// Any wgpu adapter, CPU adapters such as lavapipe included.
    Wgpu,
    /// The native CPU backend.
    Native,
    /// The first wgpu adapter of this type.
    Type(wgpu::DeviceType),
    /// The first wgpu adapter whose name contains this text (case-insensitive).
    Name(String),
}

impl AdapterChoice {
    /// Parses `auto`, `gpu`, `cpu` (the native backend), `wgpu`, `lavapipe`
    /// (Mesa's CPU Vulkan driver, whose adapter is named llvmpipe),
    /// `discrete`, `integrated`, `virtual`, `cpu-adapter`, or any other text
    /// as a substring of an adapter's name.
    pub fn parse(text: &str) -> AdapterChoice {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => AdapterChoice::Auto,
            "gpu" => AdapterChoice::Gpu,
            "wgpu" => AdapterChoice::Wgpu,
            "cpu" | "native" => AdapterChoice::Native,
            "discrete" | "discrete-gpu" => AdapterChoice::Type(wgpu::DeviceType::DiscreteGpu),
            "integrated" | "integrated-gpu" => AdapterChoice::Type(wgpu::DeviceType::IntegratedGpu),
            "virtual" | "virtual-gpu" => AdapterChoice::Type(wgpu::DeviceType::VirtualGpu),
            "cpu-adapter" => AdapterChoice::Type(wgpu::DeviceType::Cpu),
            "lavapipe" | "llvmpipe" => AdapterChoice::Name("llvmpipe".into()),
            other => AdapterChoice::Name(other.to_string()),
        }
    }
}

/// Kernel family for the GEMM-like kernels (matmul, conv). Shared-memory
/// tiles win on GPUs; on CPU adapters a workgroup barrier is very expensive,
/// so there each invocation computes a block of outputs from registers with
/// no shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelVariant {
    Tiled,
    Register,
}

/// How to open a device.
#[derive(Debug, Clone, Default)]
pub struct DeviceOptions {
    /// Device choice (see [`AdapterChoice::parse`]); `None` reads
    /// `SPIKEIR_DEVICE`, then `SPIKEIR_ADAPTER`, else `auto`.
    pub adapter: Option<String>,
    /// Kernel family override (for testing both on one adapter).
    pub kernel_variant: Option<KernelVariant>,
}

/// What `info()` reports.
#[derive(Debug, Clone)]
pub struct DeviceInfo {
    pub backend: String,
    pub adapter_name: String,
    pub device_type: String,
    pub driver: String,
    pub driver_info: String,
    pub max_storage_binding_bytes: u64,
    pub max_buffer_bytes: u64,
    pub max_workgroup_size: [u32; 3],
    pub max_invocations_per_workgroup: u32,
    pub max_workgroups_per_dimension: u32,
    pub shared_memory_bytes: u32,
    pub kernel_variant: KernelVariant,
}

/// The pending work: one encoder, and the compute pass that consecutive
/// dispatches share (ended only by a copy or a submit). wgpu inserts the
/// barriers between the dispatches of a pass, as WebGPU requires.
struct Batch {
    // Field order: the pass must end before its encoder is dropped.
    pass: Option<wgpu::ComputePass<'static>>,
    encoder: Option<wgpu::CommandEncoder>,
    dispatches: u32,
}

impl Batch {
    /// The encoder, with no pass open on it (for copies and for finishing).
    fn encoder(&mut self, device: &wgpu::Device) -> &mut wgpu::CommandEncoder {
        self.pass = None;
        self.encoder.get_or_insert_with(|| {
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("batch"),
            })
        })
    }

    /// The finished command buffer of the pending work, if any.
    fn finish(&mut self) -> Option<wgpu::CommandBuffer> {
        self.pass = None;
        self.dispatches = 0;
        self.encoder.take().map(|e| e.finish())
    }
}

/// Bytes of one uniform region: kernel parameters live in fixed slots of it.
const UNIFORM_REGION_BYTES: u64 = 1 << 20;

/// Cached bind groups beyond which the cache starts again (each one holds its buffers alive).
const MAX_BIND_GROUPS: usize = 8192;

/// Kernel parameters, content-addressed: each distinct parameter block gets
/// a slot in one uniform buffer, written once, so repeated dispatches (every
/// step of a training loop) bind the same slot and allocate nothing. When
/// the region is full it starts again from offset 0, after the work that
/// read the old contents has been submitted (queue writes are ordered after
/// earlier submissions).
struct Uniforms {
    buffer: Option<wgpu::Buffer>,
    slots: HashMap<Vec<u32>, u64>,
    next: u64,
    alignment: u64,
}

/// What identifies a bind group: the pipeline, the parameter slot and the buffers.
#[derive(PartialEq, Eq, Hash)]
struct BindKey {
    pipeline: wgpu::ComputePipeline,
    offset: u64,
    size: u64,
    buffers: Vec<wgpu::Buffer>,
}

/// Per-device counts of GPU work since the device opened, for benchmarks:
/// what a training step costs in dispatches, passes, buffer allocations and
/// host readbacks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GpuCounters {
    pub dispatches: u64,
    pub compute_passes: u64,
    pub submits: u64,
    /// wgpu buffers created: tensor storage the pool could not serve,
    /// readback staging, uniform regions.
    pub buffer_allocations: u64,
    pub bind_groups_created: u64,
    pub uniform_writes: u64,
    pub uploads: u64,
    pub readbacks: u64,
}

#[derive(Default)]
struct Counters {
    dispatches: AtomicU64,
    compute_passes: AtomicU64,
    submits: AtomicU64,
    buffer_allocations: AtomicU64,
    bind_groups_created: AtomicU64,
    uniform_writes: AtomicU64,
    uploads: AtomicU64,
    readbacks: AtomicU64,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// A compute device: a wgpu adapter, or the native CPU backend.
pub struct Device {
    info: DeviceInfo,
    gpu: Option<Gpu>,
    /// Bytes and buffers held by live CPU tensors.
    cpu_bytes: AtomicU64,
    cpu_buffers: AtomicU64,
    /// High-water mark of `cpu_bytes` since the last [`Device::reset_peak`].
    cpu_peak: AtomicU64,
}

/// The wgpu side of a device: queue, pipelines, pool and pending work.
pub(crate) struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    max_workgroups: u32,
    pipelines: Mutex<HashMap<String, Arc<wgpu::ComputePipeline>>>,
    batch: Mutex<Batch>,
    pool: Mutex<Pool>,
    uniforms: Mutex<Uniforms>,
    bind_groups: Mutex<HashMap<BindKey, wgpu::BindGroup>>,
    /// Readback staging buffers for reuse, by size class.
    staging: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    counters: Counters,
    /// Errors wgpu reports asynchronously; checked at every flush.
    gpu_error: Arc<Mutex<Option<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn type_rank(t: wgpu::DeviceType) -> u32 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Cpu => 3,
        wgpu::DeviceType::Other => 4,
    }
}

pub(crate) fn device_type_name(t: wgpu::DeviceType) -> &'static str {
    match t {
        wgpu::DeviceType::DiscreteGpu => "discrete-gpu",
        wgpu::DeviceType::IntegratedGpu => "integrated-gpu",
        wgpu::DeviceType::VirtualGpu => "virtual-gpu",
        wgpu::DeviceType::Cpu => "cpu",
        wgpu::DeviceType::Other => "other",
    }
}

/// The backends spikeir uses. wgpu's GL backend is left out on purpose: on
/// Mesa's OpenGL without a Vulkan driver its adapter context lock deadlocks
/// and panics ("Could not lock adapter context") as soon as two threads use
/// it, so a machine without Vulkan/Metal/DX12 gets the native CPU backend.
const BACKENDS: wgpu::Backends = wgpu::Backends::VULKAN
    .union(wgpu::Backends::METAL)
    .union(wgpu::Backends::DX12);

fn enumerate() -> Vec<wgpu::Adapter> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = BACKENDS;
    let instance = wgpu::Instance::new(desc);
    pollster::block_on(instance.enumerate_adapters(BACKENDS))
}

fn describe(a: &wgpu::Adapter) -> String {
    let i = a.get_info();
    format!(
        "{} ({}, {:?})",
        i.name,
        device_type_name(i.device_type),
        i.backend
    )
}

/// One wgpu adapter and whether it runs spikeir's kernels (see [`Device::probe_adapters`]).
#[derive(Debug, Clone)]
pub struct AdapterProbe {
    pub name: String,
    pub device_type: String,
    pub backend: String,
    /// `Ok` when a device opened and a kernel gave the right answer; else why not.
    pub usable: std::result::Result<(), String>,
}

const NO_ADAPTER_HELP: &str =
    "install a Vulkan, Metal or DX12 driver; on Linux without a GPU install Mesa's \
     CPU Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`)";

impl Device {
    /// The native CPU backend: host memory, rayon threads, SIMD GEMM.
    pub fn native_cpu() -> Arc<Device> {
        let threads = rayon::current_num_threads() as u32;
        Arc::new(Device {
            info: DeviceInfo {
                backend: "native".into(),
                adapter_name: format!("native CPU ({threads} threads)"),
                device_type: "cpu".into(),
                driver: "spikeir".into(),
                driver_info: String::new(),
                max_storage_binding_bytes: physical_memory(),
                max_buffer_bytes: physical_memory(),
                max_workgroup_size: [1, 1, 1],
                max_invocations_per_workgroup: 1,
                max_workgroups_per_dimension: u32::MAX,
                shared_memory_bytes: 0,
                kernel_variant: KernelVariant::Register,
            },
            gpu: None,
            cpu_bytes: AtomicU64::new(0),
            cpu_buffers: AtomicU64::new(0),
            cpu_peak: AtomicU64::new(0),
        })
    }

    /// Opens a device per `options` (and `SPIKEIR_DEVICE` / `SPIKEIR_ADAPTER`).
    pub fn new(options: &DeviceOptions) -> Result<Arc<Device>> {
        let wanted = options
            .adapter
            .clone()
            .or_else(|| std::env::var("SPIKEIR_DEVICE").ok())
            .or_else(|| std::env::var("SPIKEIR_ADAPTER").ok())
            .unwrap_or_default();
        let choice = AdapterChoice::parse(&wanted);
        if choice == AdapterChoice::Native {
            return Ok(Device::native_cpu());
        }

        let mut adapters = enumerate();
        let is_gpu = |a: &wgpu::Adapter| a.get_info().device_type != wgpu::DeviceType::Cpu;
        if choice == AdapterChoice::Auto && !adapters.iter().any(is_gpu) {
            // No GPU: the native backend is far faster than a CPU adapter.
            return Ok(Device::native_cpu());
        }
        adapters.sort_by_key(|a| type_rank(a.get_info().device_type));
        let available = if adapters.is_empty() {
            format!("no wgpu adapter on this machine ({NO_ADAPTER_HELP})")
        } else {
            adapters.iter().map(describe).collect::<Vec<_>>().join(", ")
        };
        let candidates: Vec<wgpu::Adapter> = adapters
            .into_iter()
            .filter(|a| {
                let i = a.get_info();
                match &choice {
                    AdapterChoice::Auto | AdapterChoice::Gpu => {
                        i.device_type != wgpu::DeviceType::Cpu
                    }
                    AdapterChoice::Wgpu => true,
                    AdapterChoice::Native => false,
                    AdapterChoice::Type(t) => i.device_type == *t,
                    AdapterChoice::Name(n) => i.name.to_ascii_lowercase().contains(n.as_str()),
                }
            })
            .collect();
        if candidates.is_empty() {
            return Err(Error::Device(format!(
                "no adapter matches '{wanted}' (from the device option, SPIKEIR_DEVICE or SPIKEIR_ADAPTER); available: {available}, or the native CPU backend ('cpu')"
            )));
        }
        // Take the first candidate that opens and passes the smoke test, so a
        // broken driver never becomes the device that later panics mid-run.
        let mut refusals = Vec::new();
        for adapter in candidates {
            let what = describe(&adapter);
            match Device::open_checked(adapter, options) {
                Ok(d) => return Ok(d),
                Err(e) => refusals.push(format!("{what}: {e}")),
            }
        }
        if choice == AdapterChoice::Auto {
            return Ok(Device::native_cpu());
        }
        Err(Error::Device(format!(
            "no usable adapter for '{wanted}': {}; or use the native CPU backend (SPIKEIR_DEVICE=cpu)",
            refusals.join("; ")
        )))
    }

    /// Every wgpu adapter on this machine, each opened and given a small
    /// kernel to run (what the test runner and `info` use to say which
    /// adapters work, and why the others do not).
    pub fn probe_adapters() -> Vec<AdapterProbe> {
        enumerate()
            .into_iter()
            .map(|a| {
                let i = a.get_info();
                AdapterProbe {
                    name: i.name.clone(),
                    device_type: device_type_name(i.device_type).to_string(),
                    backend: format!("{:?}", i.backend).to_lowercase(),
                    usable: Device::open_checked(a, &DeviceOptions::default())
                        .map(|_| ())
                        .map_err(|e| e.to_string()),
                }
            })
            .collect()
    }

    /// Opens `adapter` and runs a small kernel on it, catching a driver panic.
    fn open_checked(adapter: wgpu::Adapter, options: &DeviceOptions) -> Result<Arc<Device>> {
        let run = std::panic::AssertUnwindSafe(|| -> Result<Arc<Device>> {
            let dev = Device::open(adapter, options)?;
            let x = crate::Tensor::from_slice(&dev, &[1.0, -2.0, 3.5, 0.25], &[4])?;
            let y = crate::ops::unary(&x, crate::ops::UnaryOp::MulScalar(2.0))?.to_vec()?;
            if y != [2.0, -4.0, 7.0, 0.5] {
                return Err(Error::Device(format!(
                    "its smoke test computed {y:?} for 2·[1, −2, 3.5, 0.25]"
                )));
            }
            Ok(dev)
        });
        match std::panic::catch_unwind(run) {
            Ok(r) => r,
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                Err(Error::Device(format!("the driver panicked: {msg}")))
            }
        }
    }

    /// Opens a wgpu device on `adapter`.
    fn open(adapter: wgpu::Adapter, options: &DeviceOptions) -> Result<Arc<Device>> {
        let ainfo = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("spikeir"),
            required_features: wgpu::Features::empty(),
            // Ask for everything the adapter offers: the defaults cap storage
            // bindings far below what real GPUs allow.
            required_limits: limits.clone(),
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| Error::Device(format!("could not open '{}': {e}", ainfo.name)))?;

        let gpu_error = Arc::new(Mutex::new(None));
        let sink = gpu_error.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = lock(&sink);
            if slot.is_none() {
                *slot = Some(e.to_string());
            }
        }));

        let kernel_variant =
            options
                .kernel_variant
                .unwrap_or(if ainfo.device_type == wgpu::DeviceType::Cpu {
                    KernelVariant::Register
                } else {
                    KernelVariant::Tiled
                });
        let info = DeviceInfo {
            backend: format!("{:?}", ainfo.backend).to_lowercase(),
            adapter_name: ainfo.name.clone(),
            device_type: device_type_name(ainfo.device_type).to_string(),
            driver: ainfo.driver.clone(),
            driver_info: ainfo.driver_info.clone(),
            max_storage_binding_bytes: limits.max_storage_buffer_binding_size,
            max_buffer_bytes: limits.max_buffer_size,
            max_workgroup_size: [
                limits.max_compute_workgroup_size_x,
                limits.max_compute_workgroup_size_y,
                limits.max_compute_workgroup_size_z,
            ],
            max_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
            max_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
            shared_memory_bytes: limits.max_compute_workgroup_storage_size,
            kernel_variant,
        };
        let max_workgroups = info.max_workgroups_per_dimension;
        Ok(Arc::new(Device {
            info,
            gpu: Some(Gpu {
                device,
                queue,
                max_workgroups,
                pipelines: Mutex::new(HashMap::new()),
                batch: Mutex::new(Batch {
                    pass: None,
                    encoder: None,
                    dispatches: 0,
                }),
                pool: Mutex::new(Pool::default()),
                uniforms: Mutex::new(Uniforms {
                    buffer: None,
                    slots: HashMap::new(),
                    next: 0,
                    alignment: u64::from(limits.min_uniform_buffer_offset_alignment.max(16)),
                }),
                bind_groups: Mutex::new(HashMap::new()),
                staging: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                gpu_error,
            }),
            cpu_bytes: AtomicU64::new(0),
            cpu_buffers: AtomicU64::new(0),
            cpu_peak: AtomicU64::new(0),
        }))
    }

    pub fn info(&self) -> &DeviceInfo {
        &self.info
    }

    /// True for the native CPU backend.
    pub fn is_cpu(&self) -> bool {
        self.gpu.is_none()
    }

    /// The wgpu side; only GPU code paths call this, for GPU tensors.
    pub(crate) fn gpu(&self) -> &Gpu {
        self.gpu
            .as_ref()
            .expect("a GPU kernel was reached for a tensor on the native CPU device")
    }

    /// Bytes and buffers currently held by live tensors, and bytes cached in the pool.
    pub fn memory(&self) -> (u64, u64, u64) {
        match &self.gpu {
            Some(g) => {
                let p = lock(&g.pool);
                (p.live_bytes, p.live_buffers, p.cached_bytes())
            }
            None => (
                self.cpu_bytes.load(Ordering::Relaxed),
                self.cpu_buffers.load(Ordering::Relaxed),
                crate::cpu::buffers::cached_bytes(),
            ),
        }
    }

    /// Counts a CPU allocation (positive) or its release (negative).
    pub(crate) fn note_cpu(&self, bytes: u64, alloc: bool) {
        if alloc {
            let now = self.cpu_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
            self.cpu_peak.fetch_max(now, Ordering::Relaxed);
            self.cpu_buffers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.cpu_bytes.fetch_sub(bytes, Ordering::Relaxed);
            self.cpu_buffers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The most bytes live tensors held at once since the last [`Device::reset_peak`]
    /// (or since the device opened): what sizes tiles and batches to the device.
    pub fn peak_bytes(&self) -> u64 {
        match &self.gpu {
            Some(g) => lock(&g.pool).peak_bytes,
            None => self.cpu_peak.load(Ordering::Relaxed),
        }
    }

    /// Starts a new high-water mark at the bytes held now.
    pub fn reset_peak(&self) {
        match &self.gpu {
            Some(g) => {
                let mut p = lock(&g.pool);
                p.peak_bytes = p.live_bytes;
            }
            None => self
                .cpu_peak
                .store(self.cpu_bytes.load(Ordering::Relaxed), Ordering::Relaxed),
        }
    }

    /// Frees the pool's cached buffers.
    pub fn trim(&self) {
        match &self.gpu {
            Some(g) => {
                lock(&g.pool).trim();
                // Cached bind groups and staging buffers hold memory alive too.
                lock(&g.bind_groups).clear();
                lock(&g.staging).clear();
            }
            None => crate::cpu::buffers::trim(),
        }
    }

    /// Counts of GPU work since the device opened (all zero on the native backend).
    pub fn gpu_counters(&self) -> GpuCounters {
        match &self.gpu {
            Some(g) => {
                let c = &g.counters;
                let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
                GpuCounters {
                    dispatches: r(&c.dispatches),
                    compute_passes: r(&c.compute_passes),
                    submits: r(&c.submits),
                    buffer_allocations: r(&c.buffer_allocations),
                    bind_groups_created: r(&c.bind_groups_created),
                    uniform_writes: r(&c.uniform_writes),
                    uploads: r(&c.uploads),
                    readbacks: r(&c.readbacks),
                }
            }
            None => GpuCounters::default(),
        }
    }

    pub(crate) fn alloc(&self, bytes: u64) -> (wgpu::Buffer, u64) {
        self.gpu().alloc(bytes)
    }

    pub(crate) fn release(&self, class: u64, buffer: wgpu::Buffer) {
        self.gpu().release(class, buffer)
    }

    pub(crate) fn pipeline(
        &self,
        key: &str,
        source: impl FnOnce() -> String,
    ) -> Arc<wgpu::ComputePipeline> {
        self.gpu().pipeline(key, source)
    }

    pub(crate) fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Result<()> {
        self.gpu().dispatch(pipeline, params, buffers, workgroups)
    }

    pub(crate) fn linear_grid(&self, threads: usize) -> [u32; 3] {
        self.gpu().linear_grid(threads)
    }

    pub(crate) fn upload(&self, dst: &wgpu::Buffer, data: &[f32]) -> Result<()> {
        self.gpu().upload(dst, data)
    }

    pub(crate) fn copy(&self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        self.gpu().copy(src, dst, bytes)
    }

    pub(crate) fn read(&self, src: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        self.gpu().read(src, len)
    }

    /// Refuses a tensor that cannot be bound as one storage buffer.
    pub(crate) fn check_size(&self, what: &str, elements: usize) -> Result<u64> {
        let bytes = (elements as u64) * 4;
        let limit = self
            .info
            .max_storage_binding_bytes
            .min(self.info.max_buffer_bytes);
        if bytes > limit {
            return Err(Error::TooLarge(format!(
                "{what}: {bytes} bytes ({elements} f32 values) exceeds this adapter's maximum storage \
                 binding of {limit} bytes ({} MiB, '{}'); use a smaller batch or tile the input",
                limit >> 20,
                self.info.adapter_name
            )));
        }
        Ok(bytes)
    }

    /// Submits pending GPU work (no-op on the CPU backend).
    pub fn submit(&self) {
        if let Some(g) = &self.gpu {
            g.submit();
        }
    }

    /// Waits until the device has finished all submitted work.
    pub fn synchronize(&self) -> Result<()> {
        match &self.gpu {
            Some(g) => g.synchronize(),
            None => Ok(()),
        }
    }
}

impl Gpu {
    /// A storage buffer of at least `bytes` from the pool.
    pub(crate) fn alloc(&self, bytes: u64) -> (wgpu::Buffer, u64) {
        let class = size_class(bytes);
        let mut pool = lock(&self.pool);
        if let Some(b) = pool.take(class) {
            return (b, class);
        }
        pool.note_new(class);
        drop(pool);
        bump(&self.counters.buffer_allocations);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tensor"),
            size: class,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        (buffer, class)
    }

    pub(crate) fn release(&self, class: u64, buffer: wgpu::Buffer) {
        if !lock(&self.pool).give_back(class, buffer) {
            // The pool let it go: so must the bind groups that hold it (a rare event; start afresh).
            lock(&self.bind_groups).clear();
        }
    }

    /// The cached pipeline for `key`, compiling `source()` on first use.
    pub(crate) fn pipeline(
        &self,
        key: &str,
        source: impl FnOnce() -> String,
    ) -> Arc<wgpu::ComputePipeline> {
        if let Some(p) = lock(&self.pipelines).get(key) {
            return p.clone();
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(key),
                source: wgpu::ShaderSource::Wgsl(source().into()),
            });
        let pipeline = Arc::new(self.device.create_compute_pipeline(
            &wgpu::ComputePipelineDescriptor {
                label: Some(key),
                layout: None,
                module: &module,
                entry_point: Some("main"),
                compilation_options: Default::default(),
                cache: None,
            },
        ));
        lock(&self.pipelines).insert(key.to_string(), pipeline.clone());
        pipeline
    }

    /// Records `f` on the pending encoder (outside any compute pass).
    fn with_encoder<R>(&self, f: impl FnOnce(&mut wgpu::CommandEncoder) -> R) -> R {
        let mut batch = lock(&self.batch);
        let r = f(batch.encoder(&self.device));
        self.count_pending(&mut batch);
        r
    }

    /// Submits once enough work is pending, so a long graph does not hold an
    /// unbounded command buffer.
    fn count_pending(&self, batch: &mut Batch) {
        batch.dispatches += 1;
        if batch.dispatches >= MAX_PENDING_DISPATCHES {
            if let Some(cb) = batch.finish() {
                bump(&self.counters.submits);
                self.queue.submit(Some(cb));
            }
        }
    }

    /// The uniform slot holding `words`: (buffer, offset), written on first use.
    fn uniform_slot(&self, words: &[u32]) -> (wgpu::Buffer, u64) {
        let mut u = lock(&self.uniforms);
        if let (Some(&offset), Some(buffer)) = (u.slots.get(words), &u.buffer) {
            return (buffer.clone(), offset);
        }
        let bytes = (words.len() * 4) as u64;
        let size = bytes.div_ceil(u.alignment) * u.alignment;
        if u.buffer.is_none() || u.next + size > UNIFORM_REGION_BYTES {
            // Full (or first use): every recorded dispatch that reads the old
            // contents goes to the queue before the region is written again.
            if u.buffer.is_some() {
                let mut batch = lock(&self.batch);
                if let Some(cb) = batch.finish() {
                    bump(&self.counters.submits);
                    self.queue.submit(Some(cb));
                }
            } else {
                bump(&self.counters.buffer_allocations);
                u.buffer = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("params"),
                    size: UNIFORM_REGION_BYTES,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }));
            }
            u.slots.clear();
            u.next = 0;
            // Bind groups name slots by offset: the old ones mean other contents now.
            lock(&self.bind_groups).clear();
        }
        let offset = u.next;
        u.next += size;
        let buffer = u.buffer.clone().expect("the uniform region exists");
        // Ordered after every earlier submission and before the pending encoder's commands.
        self.queue
            .write_buffer(&buffer, offset, bytemuck::cast_slice(words));
        bump(&self.counters.uniform_writes);
        u.slots.insert(words.to_vec(), offset);
        (buffer, offset)
    }

    /// Records one dispatch: binding 0 is the `params` uniform, bindings
    /// 1..=n are `buffers` in order. Consecutive dispatches share one
    /// compute pass, one parameter slot per distinct parameter block, and one
    /// bind group per distinct (pipeline, parameters, buffers).
    pub(crate) fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        params: &[u32],
        buffers: &[&wgpu::Buffer],
        workgroups: [u32; 3],
    ) -> Result<()> {
        if workgroups.contains(&0) {
            return Ok(());
        }
        let mut words = params.to_vec();
        words.resize(params.len().div_ceil(4).max(1) * 4, 0);
        let (uniform, offset) = self.uniform_slot(&words);
        let size = (words.len() * 4) as u64;
        let key = BindKey {
            pipeline: pipeline.clone(),
            offset,
            size,
            buffers: buffers.iter().map(|b| (*b).clone()).collect(),
        };
        let bind_group = {
            let mut cache = lock(&self.bind_groups);
            if let Some(g) = cache.get(&key) {
                g.clone()
            } else {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: &uniform,
                        offset,
                        size: std::num::NonZeroU64::new(size),
                    }),
                }];
                for (i, b) in buffers.iter().enumerate() {
                    entries.push(wgpu::BindGroupEntry {
                        binding: i as u32 + 1,
                        resource: b.as_entire_binding(),
                    });
                }
                let g = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &entries,
                });
                bump(&self.counters.bind_groups_created);
                if cache.len() >= MAX_BIND_GROUPS {
                    cache.clear();
                }
                cache.insert(key, g.clone());
                g
            }
        };
        let mut batch = lock(&self.batch);
        if batch.pass.is_none() {
            let encoder = batch.encoder(&self.device);
            let pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: None,
                    timestamp_writes: None,
                })
                .forget_lifetime();
            batch.pass = Some(pass);
            bump(&self.counters.compute_passes);
        }
        let pass = batch.pass.as_mut().expect("a compute pass is open");
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(workgroups[0], workgroups[1], workgroups[2]);
        bump(&self.counters.dispatches);
        self.count_pending(&mut batch);
        Ok(())
    }

    /// Workgroup counts for `threads` invocations of a 1-D kernel of
    /// [`LINEAR_WORKGROUP`]; rows of the grid wrap at the per-dimension limit,
    /// and kernels rebuild the index as `gid.x + gid.y * nwg.x * 256`.
    pub(crate) fn linear_grid(&self, threads: usize) -> [u32; 3] {
        let groups = (threads as u64).div_ceil(LINEAR_WORKGROUP as u64);
        let max = self.max_workgroups.max(1) as u64;
        if groups <= max {
            [groups as u32, 1, 1]
        } else {
            [max as u32, groups.div_ceil(max) as u32, 1]
        }
    }

    /// Uploads `data` into `dst`, ordered with the pending dispatches: the
    /// pending work is submitted first, so the write lands after every
    /// command recorded before it and before every command recorded after.
    pub(crate) fn upload(&self, dst: &wgpu::Buffer, data: &[f32]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let mut batch = lock(&self.batch);
        if let Some(cb) = batch.finish() {
            bump(&self.counters.submits);
            self.queue.submit(Some(cb));
        }
        self.queue.write_buffer(dst, 0, bytemuck::cast_slice(data));
        bump(&self.counters.uploads);
        Ok(())
    }

    /// Records a device-side copy.
    pub(crate) fn copy(&self, src: &wgpu::Buffer, dst: &wgpu::Buffer, bytes: u64) {
        if bytes > 0 {
            self.with_encoder(|enc| enc.copy_buffer_to_buffer(src, 0, dst, 0, bytes));
        }
    }

    /// Submits the pending encoder, if any.
    pub fn submit(&self) {
        // Submit under the lock: otherwise another thread could record and
        // submit a newer encoder first, reordering an upload after its reader.
        let mut batch = lock(&self.batch);
        if let Some(cb) = batch.finish() {
            bump(&self.counters.submits);
            self.queue.submit(Some(cb));
        }
    }

    fn take_gpu_error(&self) -> Result<()> {
        match lock(&self.gpu_error).take() {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    /// Submits pending work and waits until the GPU has finished it.
    pub fn synchronize(&self) -> Result<()> {
        self.submit();
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))?;
        self.take_gpu_error()
    }

    /// Reads `len` f32 values back from `src`: the only path from GPU to host.
    pub(crate) fn read(&self, src: &wgpu::Buffer, len: usize) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let bytes = (len * 4) as u64;
        bump(&self.counters.readbacks);
        // Staging buffers are reused by size class (a training step reads the same sizes every time).
        let class = size_class(bytes);
        let reused = lock(&self.staging).get_mut(&class).and_then(Vec::pop);
        let staging = reused.unwrap_or_else(|| {
            bump(&self.counters.buffer_allocations);
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: class,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        });
        self.copy(src, &staging, bytes);
        self.submit();
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.synchronize()?;
        rx.recv()
            .map_err(|_| Error::Gpu("readback was never completed".into()))?
            .map_err(|e| Error::Gpu(format!("readback failed: {e}")))?;
        let out = {
            let view = staging
                .get_mapped_range(..bytes)
                .map_err(|e| Error::Gpu(format!("readback mapping failed: {e:?}")))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        let mut pool = lock(&self.staging);
        let free = pool.entry(class).or_default();
        // A few per size are plenty: reads are synchronous.
        if free.len() < 2 {
            free.push(staging);
        }
        Ok(out)
    }
}

/// Physical memory in bytes (Linux `/proc/meminfo`; 16 GiB where unknown):
/// the native backend refuses single tensors larger than this with a clear
/// error instead of letting the allocator abort the process.
fn physical_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(16 << 30)
}
