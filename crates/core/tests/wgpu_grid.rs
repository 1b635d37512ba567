//! wgpu-only kernel tests: what exists only on a wgpu adapter (the
//! dispatch grid's per-dimension limit). `scripts/test-rust.mjs` runs this
//! file on wgpu adapters only.

mod common;

use common::device;
use spikeir_core::ops::neuron::{neuron_backward, neuron_forward, NeuronKind};
use spikeir_core::{Error, Tensor};

use common::neuron_cfg as cfg;

#[test]
fn more_neurons_than_one_grid_row_holds() {
    // Past max_workgroups_per_dimension·256 neurons linear_grid wraps into a
    // second row of workgroups; n is not a multiple of 256, so the last
    // workgroup has idle invocations that must not write.
    let dev = device();
    let per_row = dev.info().max_workgroups_per_dimension as usize * 256;
    let n = per_row + 300;
    let c = cfg(NeuronKind::If, 0.5, Some(0.0), false);
    // IF, one step: H = X and S = [X ≥ 0.5]; with grad_S = 1 the backward
    // is g_X = sg(X − 0.5). X takes 7 values, 7 not dividing the row length.
    let levels: Vec<f32> = (0..7).map(|v| v as f32 * 0.125).collect();
    let x: Vec<f32> = (0..n).map(|i| levels[i % 7]).collect();
    let xt = match Tensor::from_slice(&dev, &x, &[1, n]) {
        Ok(t) => t,
        Err(Error::TooLarge(m)) => return eprintln!("skipped: {m}"),
        Err(e) => panic!("{e}"),
    };
    drop(x);
    let (s, h) = neuron_forward(&xt, &c, None).unwrap();
    drop(xt);
    let gs = Tensor::ones(&dev, &[1, n]).unwrap();
    let (gx, _) = neuron_backward(&gs, &h, &c, None).unwrap();
    let sg = |v: f64| {
        let z = 1.0 / (1.0 + (-4.0 * (v - 0.5)).exp());
        4.0 * z * (1.0 - z)
    };
    let want_gx: Vec<f32> = levels.iter().map(|&v| sg(v as f64) as f32).collect();
    let (s, h, gx) = (
        s.to_vec().unwrap(),
        h.to_vec().unwrap(),
        gx.to_vec().unwrap(),
    );
    for i in 0..n {
        let v = levels[i % 7];
        assert_eq!(h[i], v, "H at neuron {i}");
        assert_eq!(s[i], if v >= 0.5 { 1.0 } else { 0.0 }, "S at neuron {i}");
        let w = want_gx[i % 7];
        assert!(
            (gx[i] - w).abs() <= 1e-5 * w.abs(),
            "grad_x at neuron {i}: {} vs {w}",
            gx[i]
        );
    }
}

/// A device of its own, so other tests' work does not show in its counters.
fn own_device() -> std::sync::Arc<spikeir_core::Device> {
    spikeir_core::Device::new(&spikeir_core::DeviceOptions {
        adapter: Some(std::env::var("SPIKEIR_TEST_ADAPTER").unwrap_or_else(|_| "wgpu".into())),
        ..Default::default()
    })
    .expect("a wgpu adapter")
}

#[test]
fn a_repeated_step_allocates_no_buffers_and_writes_no_parameters() {
    use spikeir_core::ops::{binary, unary, BinaryOp, UnaryOp};
    let dev = own_device();
    let x: Vec<f32> = (0..1000).map(|i| i as f32 * 0.01 - 3.0).collect();
    // The same small graph each "step": (x·2 + x)·0.5, read back once.
    let step = || {
        let t = Tensor::from_slice(&dev, &x, &[10, 100]).unwrap();
        let y = unary(&t, UnaryOp::MulScalar(2.0)).unwrap();
        let z = binary(&y, &t, BinaryOp::Add).unwrap();
        let w = unary(&z, UnaryOp::MulScalar(0.5)).unwrap();
        w.to_vec().unwrap()
    };
    let first = step();
    let before = dev.gpu_counters();
    for _ in 0..5 {
        assert_eq!(step(), first);
    }
    let after = dev.gpu_counters();
    // Hand value: (2x + x)/2 = 1.5x.
    for (i, v) in first.iter().enumerate() {
        assert!((*v as f64 - 1.5 * x[i] as f64).abs() < 1e-5, "{i}: {v}");
    }
    assert_eq!(
        after.dispatches - before.dispatches,
        15,
        "three kernels per step"
    );
    assert_eq!(after.readbacks - before.readbacks, 5);
    assert_eq!(
        after.buffer_allocations, before.buffer_allocations,
        "pool, staging and parameter slots are reused"
    );
    assert_eq!(
        after.uniform_writes, before.uniform_writes,
        "every parameter block was written once, in the first step"
    );
}

#[test]
fn parameters_stay_right_when_the_uniform_region_starts_over() {
    use spikeir_core::ops::{unary, UnaryOp};
    let dev = own_device();
    let x = Tensor::from_slice(&dev, &[1.0, -2.0, 0.5, 4.0], &[4]).unwrap();
    // More distinct parameter blocks than one region holds (1 MiB of slots of
    // at least 16 bytes): each scale is a new block. The results are read
    // only at the end, so the region starts over with dispatches pending.
    let scales: Vec<f32> = (0..70_000).map(|k| 1.0 + k as f32 * 1e-3).collect();
    let outs: Vec<Tensor> = scales
        .iter()
        .map(|&k| unary(&x, UnaryOp::MulScalar(k)).unwrap())
        .collect();
    let writes = dev.gpu_counters().uniform_writes;
    assert!(writes >= 70_000, "{writes} parameter writes");
    for (k, t) in scales.iter().zip(&outs).step_by(997) {
        let got = t.to_vec().unwrap();
        let want = [1.0 * k, -2.0 * k, 0.5 * k, 4.0 * k];
        assert_eq!(got, want, "scale {k}");
    }
    let last = outs.last().unwrap().to_vec().unwrap();
    let k = *scales.last().unwrap();
    assert_eq!(last, [1.0 * k, -2.0 * k, 0.5 * k, 4.0 * k]);
}
