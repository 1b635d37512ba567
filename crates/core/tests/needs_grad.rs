//! The backward pass computes gradients only for inputs that take one: a
//! conv on a constant image runs no input-gradient kernel, and the gradients
//! it does compute are those of the kernels called directly. Gradients summed
//! from several uses (added in place when nothing else holds the sum) match
//! hand-derived values. One test per binary: the profile counters it reads
//! are process-wide.

mod common;

use common::{assert_close, data, f64s, upload};
use spikeir_core::functional as f;
use spikeir_core::ops::conv::{conv2d_backward_input, conv2d_backward_weight, Conv2dArgs};
use spikeir_core::{autograd, profile};

fn calls(name: &str) -> u64 {
    profile::totals()
        .iter()
        .find(|e| e.0 == name)
        .map_or(0, |e| e.2)
}

#[test]
fn gradients_only_for_inputs_that_take_them() {
    profile::set_enabled(true);
    let args = Conv2dArgs {
        padding: [1, 1],
        ..Default::default()
    };
    let (xs, ws) = ([2usize, 3, 6, 5], [4usize, 3, 3, 3]);
    let x_vals = data(1, xs.iter().product());
    let x = upload(&x_vals, &xs);
    let w = autograd::param(&upload(&data(2, ws.iter().product()), &ws));
    let g_vals = data(3, 2 * 4 * 6 * 5);
    let g = upload(&g_vals, &[2, 4, 6, 5]);

    // x is a constant: only the weight gradient runs.
    profile::reset();
    let y = f::conv2d(&x, &w, None, &args).unwrap();
    autograd::backward(&y, Some(&g)).unwrap();
    assert_eq!(calls("bwd conv2d input"), 0, "input gradient of a constant");
    assert_eq!(calls("bwd conv2d weight"), 1);
    let want = conv2d_backward_weight(&g, &x, &ws, &args).unwrap();
    let got = autograd::grad(&w).unwrap();
    assert_close(
        &got.to_vec().unwrap(),
        &f64s(&want.to_vec().unwrap()),
        0.0,
        0.0,
        "weight gradient",
    );
    autograd::zero_grad();

    // x a parameter too: both run, and x's gradient is the kernel's.
    let xp = autograd::param(&x);
    profile::reset();
    let y = f::conv2d(&xp, &w, None, &args).unwrap();
    autograd::backward(&y, Some(&g)).unwrap();
    assert_eq!(calls("bwd conv2d input"), 1);
    assert_eq!(calls("bwd conv2d weight"), 1);
    let want_x = conv2d_backward_input(&g, &w, &xs, &args).unwrap();
    assert_close(
        &autograd::grad(&xp).unwrap().to_vec().unwrap(),
        &f64s(&want_x.to_vec().unwrap()),
        0.0,
        0.0,
        "input gradient",
    );
    autograd::zero_grad();

    // A product with a constant: only the parameter's side, d(c·p)/dp = c.
    let c_vals = data(4, 40);
    let c = upload(&c_vals, &[40]);
    let p = autograd::param(&upload(&data(5, 40), &[40]));
    let y = f::mul(&c, &p).unwrap();
    autograd::backward(&y, None).unwrap();
    assert_close(
        &autograd::grad(&p).unwrap().to_vec().unwrap(),
        &f64s(&c_vals),
        0.0,
        0.0,
        "d(c·p)/dp",
    );
    autograd::zero_grad();

    // p used three times: u = 2p, v = u + u, z = v·p + 3p = 4p² + 3p, so
    // dz/dp = 8p + 3.
    // The pending sums of u (two uses sharing one gradient) and of p
    // (three uses) exercise the shared and the in-place accumulation.
    let p_vals = data(6, 1000);
    let p = autograd::param(&upload(&p_vals, &[1000]));
    let u = f::unary(&p, spikeir_core::ops::UnaryOp::MulScalar(2.0)).unwrap();
    let v = f::add(&u, &u).unwrap();
    let three_p = f::unary(&p, spikeir_core::ops::UnaryOp::MulScalar(3.0)).unwrap();
    let z = f::add(&f::mul(&v, &p).unwrap(), &three_p).unwrap();
    autograd::backward(&z, None).unwrap();
    let want: Vec<f64> = p_vals.iter().map(|&q| 8.0 * q as f64 + 3.0).collect();
    assert_close(
        &autograd::grad(&p).unwrap().to_vec().unwrap(),
        &want,
        1e-6,
        1e-6,
        "dz/dp",
    );
    // The gradient handed out is not changed by a later backward's
    // accumulation into the same parameter.
    let first = autograd::grad(&p).unwrap();
    let before = first.to_vec().unwrap();
    let z = f::unary(&p, spikeir_core::ops::UnaryOp::MulScalar(5.0)).unwrap();
    autograd::backward(&z, None).unwrap();
    assert_eq!(first.to_vec().unwrap(), before, "a gradient read earlier");
    let summed: Vec<f64> = want.iter().map(|w| w + 5.0).collect();
    assert_close(
        &autograd::grad(&p).unwrap().to_vec().unwrap(),
        &summed,
        1e-6,
        1e-6,
        "accumulated over two passes",
    );
    autograd::zero_grad();
    profile::set_enabled(false);
}
