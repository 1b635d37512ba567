//! Shared helpers for the kernel tests: one device per test binary, and
//! independent CPU references in f64.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use spikeir_core::{Device, DeviceOptions, KernelVariant};

/// The device under test: `SPIKEIR_TEST_ADAPTER` (`cpu` for the native
/// backend, else a wgpu adapter's name), or the best wgpu adapter there is.
/// `npm run test:rust` (scripts/test-rust.mjs) runs the tests once on the
/// native backend and once on every usable wgpu adapter.
fn adapter() -> Option<String> {
    Some(std::env::var("SPIKEIR_TEST_ADAPTER").unwrap_or_else(|_| "wgpu".into()))
}

/// The device the kernel tests run on.
pub fn device() -> Arc<Device> {
    static DEV: OnceLock<Arc<Device>> = OnceLock::new();
    DEV.get_or_init(|| {
        Device::new(&DeviceOptions {
            adapter: adapter(),
            ..Default::default()
        })
        .unwrap_or_else(|e| {
            panic!("{e} (SPIKEIR_TEST_ADAPTER=cpu tests the native backend; `npm run test:rust` picks the devices)")
        })
    })
    .clone()
}

/// The native CPU backend.
pub fn cpu_device() -> Arc<Device> {
    static DEV: OnceLock<Arc<Device>> = OnceLock::new();
    DEV.get_or_init(Device::native_cpu).clone()
}

/// A device forced to one matmul kernel family, to test both on any adapter.
pub fn device_with(variant: KernelVariant) -> Arc<Device> {
    static TILED: OnceLock<Arc<Device>> = OnceLock::new();
    static REGISTER: OnceLock<Arc<Device>> = OnceLock::new();
    let cell = match variant {
        KernelVariant::Tiled => &TILED,
        KernelVariant::Register => &REGISTER,
    };
    cell.get_or_init(|| {
        Device::new(&DeviceOptions {
            adapter: adapter(),
            kernel_variant: Some(variant),
        })
        .expect("a wgpu adapter")
    })
    .clone()
}

/// Deterministic test data (a tiny LCG, independent of the engine's RNG).
pub fn data(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f64 / (1u64 << 31) as f64 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// Asserts |got − want| ≤ atol + rtol·|want| elementwise.
pub fn assert_close(got: &[f32], want: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = atol + rtol * w.abs();
        assert!(
            (g as f64 - w).abs() <= tol || (g.is_nan() && w.is_nan()),
            "{what}: element {i}: got {g}, want {w} (tol {tol})"
        );
    }
}

/// `v` widened to f64.
pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

/// `v` as a tensor of `shape` on the device under test.
pub fn upload(v: &[f32], shape: &[usize]) -> spikeir_core::Tensor {
    spikeir_core::Tensor::from_slice(&device(), v, shape).unwrap()
}

/// Central differences in f64 of L(x) = Σ g ⊙ f(x), with f a CPU reference
/// (exact up to rounding for the linear and piecewise-linear ops tested).
pub fn fd_grad(x: &[f64], g: &[f64], f: &dyn Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let eps = 1e-3;
    let loss = |v: &[f64]| -> f64 { f(v).iter().zip(g).map(|(a, b)| a * b).sum() };
    let mut xp = x.to_vec();
    (0..x.len())
        .map(|i| {
            let orig = xp[i];
            xp[i] = orig + eps;
            let up = loss(&xp);
            xp[i] = orig - eps;
            let down = loss(&xp);
            xp[i] = orig;
            (up - down) / (2.0 * eps)
        })
        .collect()
}

/// Small deterministic generator for test shapes (an LCG).
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
    /// A size in [lo, hi].
    pub fn size(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// A neuron configuration with the sigmoid surrogate and no detached reset.
pub fn neuron_cfg(
    kind: spikeir_core::ops::neuron::NeuronKind,
    v_th: f32,
    v_reset: Option<f32>,
    decay_input: bool,
) -> spikeir_core::ops::neuron::NeuronConfig {
    spikeir_core::ops::neuron::NeuronConfig {
        kind,
        v_threshold: v_th,
        v_reset,
        decay_input,
        detach_reset: false,
        surrogate: spikeir_core::ops::neuron::Surrogate::sigmoid(),
    }
}
