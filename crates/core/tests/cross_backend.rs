//! The same random network, forward and backward, on the native CPU backend
//! and on the wgpu adapter: outputs and every gradient agree to 1e-4 relative.

mod common;

use std::sync::Arc;

use common::{cpu_device, data, device};
use spikeir_core::functional as f;
use spikeir_core::ops::conv::Conv2dArgs;
use spikeir_core::ops::neuron::NeuronConfig;
use spikeir_core::ops::{BinaryOp, UnaryOp};
use spikeir_core::{autograd, Device, Tensor};

struct Run {
    loss: Vec<f32>,
    output: Vec<f32>,
    grads: Vec<Vec<f32>>,
}

/// conv → batch norm → LIF over T = 2 → conv (stride 2) → bilinear ×2 →
/// concat with the input → 1×1 conv → max pool / avg pool / softmax / gelu
/// branches → L1 + 0.1·FFT + MSE losses.
fn run(dev: &Arc<Device>) -> Run {
    autograd::zero_grad();
    let t = |seed: u64, shape: &[usize], scale: f32| {
        let n: usize = shape.iter().product();
        let v: Vec<f32> = data(seed, n).iter().map(|x| x * scale).collect();
        Tensor::from_slice(dev, &v, shape).unwrap()
    };
    let p = |seed: u64, shape: &[usize], scale: f32| autograd::param(&t(seed, shape, scale));
    let (b, c, h, w) = (2usize, 3usize, 12usize, 10usize);
    let x = t(1, &[b, c, h, w], 1.0);
    let target = t(2, &[b, c, h, w], 1.0);
    let w1 = p(3, &[8, c, 3, 3], 0.3);
    let b1 = p(4, &[8], 0.1);
    let bn_w = p(5, &[8], 1.0);
    let bn_b = p(6, &[8], 0.2);
    let w2 = p(7, &[8, 8, 3, 3], 0.2);
    let w3 = p(8, &[c, 8 + c, 1, 1], 0.3);
    let same = Conv2dArgs {
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let down = Conv2dArgs {
        stride: [2, 2],
        ..same
    };
    let one = Conv2dArgs {
        padding: [0, 0],
        ..same
    };

    let h1 = f::conv2d(&x, &w1, None, &same).unwrap();
    let h1 = f::batch_norm(&h1, &bn_w, &bn_b, None, true, 1e-5).unwrap();
    // Two time steps of the same features, scaled differently, through LIF.
    let seq = f::concat(&[&h1, &f::unary(&h1, UnaryOp::MulScalar(0.7)).unwrap()], 0).unwrap();
    let seq = f::reshape(&seq, &[2, b, 8, h, w]).unwrap();
    let cfg = NeuronConfig {
        v_threshold: 0.3,
        ..NeuronConfig::default()
    };
    let spikes = f::neuron(&seq, &cfg, None).unwrap();
    let s = f::mean_axes(&spikes, &[0], false).unwrap();
    let mixed = f::add(&s, &f::gelu(&h1).unwrap()).unwrap();
    // (The bias sits here: before batch norm its gradient would be zero.)
    let h2 = f::conv2d(&mixed, &w2, Some(&b1), &down).unwrap();
    let up = f::upsample_bilinear2x(&h2).unwrap();
    let cat = f::concat(&[&up, &x], 1).unwrap();
    let y = f::conv2d(&cat, &w3, None, &one).unwrap();
    let pooled = f::max_pool2d(&y, [2, 2], [2, 2], [0, 0]).unwrap();
    let avg = f::avg_pool2d(&y, [2, 2], [2, 2], [0, 0]).unwrap();
    let sm = f::softmax(&f::add(&pooled, &avg).unwrap(), 1).unwrap();
    let l1 = f::l1_loss(&y, &target).unwrap();
    let fft = f::fft_loss(&y, &target).unwrap();
    let mse = f::mse_loss(
        &sm,
        &f::unary(&sm, UnaryOp::MulScalar(0.0)).unwrap().detach(),
    )
    .unwrap();
    let loss = f::add(
        &f::add(&l1, &f::unary(&fft, UnaryOp::MulScalar(0.1)).unwrap()).unwrap(),
        &mse,
    )
    .unwrap();
    let output = f::binary(&y, &y, BinaryOp::Mul).unwrap().to_vec().unwrap();
    autograd::backward(&loss, None).unwrap();
    let grads = [&w1, &b1, &bn_w, &bn_b, &w2, &w3]
        .iter()
        .map(|p| autograd::grad(p).unwrap().to_vec().unwrap())
        .collect();
    Run {
        loss: loss.to_vec().unwrap(),
        output,
        grads,
    }
}

fn assert_rel(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-4 * scale,
            "{what}[{i}]: cpu {x} vs wgpu {y}"
        );
    }
}

#[test]
fn a_random_network_agrees_on_cpu_and_wgpu() {
    let (cpu, gpu) = (run(&cpu_device()), run(&device()));
    assert_rel(&cpu.loss, &gpu.loss, "loss");
    assert_rel(&cpu.output, &gpu.output, "output");
    for (i, (a, b)) in cpu.grads.iter().zip(&gpu.grads).enumerate() {
        assert_rel(a, b, &format!("gradient of parameter {i}"));
    }
}
