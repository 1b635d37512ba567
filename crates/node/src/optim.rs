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

/// One fused Adam/AdamW step over all `params` that have a gradient, with
/// their moments `m` and `v` (same order), in place.
#[napi(catch_unwind)]
pub fn adam_step_params(
    params: Vec<f64>,
    m: Vec<f64>,
    v: Vec<f64>,
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
    let all = |hs: &[f64]| {
        hs.iter()
            .map(|&h| get(h, "adam"))
            .collect::<Result<Vec<_>>>()
    };
    core::optim::adam_step_params(&all(&params)?, &all(&m)?, &all(&v)?, step, &c).map_err(js_err)
}

/// Scales the parameters' gradients to a global norm of at most `max_norm`;
/// returns the norm before (a non-finite norm changes nothing).
#[napi(catch_unwind)]
pub fn clip_grad_norm_params(params: Vec<f64>, max_norm: f64) -> Result<f64> {
    let ps = params
        .iter()
        .map(|&p| get(p, "clipGradNorm"))
        .collect::<Result<Vec<_>>>()?;
    core::optim::clip_grad_norm_params(&ps, max_norm as f32)
        .map(|n| n as f64)
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
