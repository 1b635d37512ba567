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
