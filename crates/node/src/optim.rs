//! Optimizer steps and gradient clipping over tensor handles.

use napi::Result;
use napi_derive::napi;
use spikeir_core as core;

use crate::js_err;
use crate::tensor::get;

/// Adam / AdamW hyper-parameters.
#[napi(object)]
pub struct AdamOptions {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay when true; L2 added to the gradient when false.
    pub decoupled: bool,
}

/// One fused Adam/AdamW step (step counts from 1), in place.
#[napi(catch_unwind)]
pub fn adam_step(
    param: f64,
    grad: f64,
    m: f64,
    v: f64,
    step: u32,
    options: AdamOptions,
) -> Result<()> {
    let c = core::optim::AdamConfig {
        lr: options.lr as f32,
        beta1: options.beta1 as f32,
        beta2: options.beta2 as f32,
        eps: options.eps as f32,
        weight_decay: options.weight_decay as f32,
        decoupled: options.decoupled,
    };
    core::optim::adam_step(
        &get(param, "adam")?,
        &get(grad, "adam")?,
        &get(m, "adam")?,
        &get(v, "adam")?,
        step,
        &c,
    )
    .map_err(js_err)
}

/// One SGD step (with momentum when `momentum > 0`, using `buffer`), in place.
#[napi(catch_unwind)]
pub fn sgd_step(
    param: f64,
    grad: f64,
    buffer: Option<f64>,
    lr: f64,
    momentum: f64,
    weight_decay: f64,
) -> Result<()> {
    let buf = buffer.map(|b| get(b, "sgd")).transpose()?;
    core::optim::sgd_step(
        &get(param, "sgd")?,
        &get(grad, "sgd")?,
        buf.as_ref(),
        lr as f32,
        momentum as f32,
        weight_decay as f32,
    )
    .map_err(js_err)
}

/// The global L2 norm of all gradients (one readback).
#[napi(catch_unwind)]
pub fn global_grad_norm(grads: Vec<f64>) -> Result<f64> {
    let gs = grads
        .iter()
        .map(|&g| get(g, "globalGradNorm"))
        .collect::<Result<Vec<_>>>()?;
    core::optim::global_norm(&gs)
        .map(|n| n as f64)
        .map_err(js_err)
}
