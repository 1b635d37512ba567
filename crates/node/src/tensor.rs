//! Tensors behind numeric handles, and every differentiable op as a function
//! `tensorOp(handle, …) → handle` (each goes through `core::functional`, so
//! the autograd tape sees it).
//!
//! A handle is a plain JS number naming an entry of a per-thread table, not a
//! napi object: a wrapped object per tensor leaves its native shell (and
//! V8's reference to it) alive until the garbage collector has run *and* the
//! event loop has turned to run its finalizer, which a synchronous training
//! loop never lets happen, so resident memory grew with every step. With
//! handles, `tensorDispose` frees everything at once; the JS side adds a
//! `FinalizationRegistry` only as a fallback for tensors never disposed.

use std::cell::RefCell;
use std::collections::HashMap;

use napi::bindgen_prelude::Float32Array;
use napi::Result;
use napi_derive::napi;
use spikeir_core as core;
use spikeir_core::functional as f;

use crate::{default_device, invalid, js_err};

struct Table {
    live: HashMap<u64, core::Tensor>,
    /// Handles are never reused, so a stale one is an error, not another tensor.
    next: u64,
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table { live: HashMap::new(), next: 1 });
}

/// A new handle for `t`.
pub(crate) fn put(t: core::Tensor) -> f64 {
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        let id = table.next;
        table.next += 1;
        table.live.insert(id, t);
        id as f64
    })
}

/// The tensor behind `handle` (a cheap clone: the buffer is shared).
pub(crate) fn get(handle: f64, op: &str) -> Result<core::Tensor> {
    TABLE.with(|table| {
        table
            .borrow()
            .live
            .get(&(handle as u64))
            .cloned()
            .ok_or_else(|| {
                js_err(core::Error::Disposed(format!(
                    "{op}: this tensor was disposed"
                )))
            })
    })
}

fn get_opt(handle: Option<f64>, op: &str) -> Result<Option<core::Tensor>> {
    handle.map(|h| get(h, op)).transpose()
}

/// Live handles (tensors not yet disposed), for `memory()`.
pub(crate) fn live_handles() -> usize {
    TABLE.with(|table| table.borrow().live.len())
}

fn out(r: core::Result<core::Tensor>) -> Result<f64> {
    r.map(put).map_err(js_err)
}

pub(crate) fn to_shape(op: &str, shape: &[f64]) -> Result<Vec<usize>> {
    shape.iter().map(|&d| to_usize(op, "shape", d)).collect()
}

pub(crate) fn to_usize(op: &str, what: &str, d: f64) -> Result<usize> {
    if d.is_finite() && d >= 0.0 && d.fract() == 0.0 && d <= u32::MAX as f64 {
        Ok(d as usize)
    } else {
        Err(invalid(format!(
            "{op}: {what} must hold non-negative integers, got {d}"
        )))
    }
}

fn to_pair(op: &str, what: &str, v: &[f64]) -> Result<[usize; 2]> {
    match v {
        [a, b] => Ok([to_usize(op, what, *a)?, to_usize(op, what, *b)?]),
        _ => Err(invalid(format!(
            "{op}: {what} must be [height, width], got {v:?}"
        ))),
    }
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

/// Convolution settings; each pair is [height, width].
#[napi(object)]
pub struct Conv2dOptions {
    pub stride: Vec<f64>,
    pub padding: Vec<f64>,
    pub dilation: Vec<f64>,
    pub groups: f64,
}

/// Pooling settings; each pair is [height, width].
#[napi(object)]
pub struct PoolOptions {
    pub kernel: Vec<f64>,
    pub stride: Vec<f64>,
    pub padding: Vec<f64>,
}

/// Spiking neuron settings (DESIGN §3).
#[napi(object)]
pub struct NeuronOptions {
    /// `if`, `lif` or `plif`.
    pub kind: String,
    /// Membrane time constant of LIF.
    pub tau: f64,
    pub v_threshold: f64,
    /// Hard reset to this value; absent (or null) for soft reset.
    pub v_reset: Option<f64>,
    pub decay_input: bool,
    pub detach_reset: bool,
    /// `sigmoid`, `atan` or `triangle`.
    pub surrogate: String,
    pub alpha: f64,
}

pub(crate) fn neuron_config(o: &NeuronOptions) -> Result<core::ops::neuron::NeuronConfig> {
    use core::ops::neuron::{NeuronConfig, NeuronKind, Surrogate};
    let kind = match o.kind.as_str() {
        "if" => NeuronKind::If,
        "lif" => NeuronKind::Lif { tau: o.tau as f32 },
        "plif" => NeuronKind::Plif,
        other => {
            return Err(invalid(format!(
                "neuron: unknown kind '{other}' (if, lif, plif)"
            )))
        }
    };
    let alpha = o.alpha as f32;
    let surrogate = match o.surrogate.as_str() {
        "sigmoid" => Surrogate::Sigmoid { alpha },
        "atan" => Surrogate::Atan { alpha },
        "triangle" => Surrogate::Triangle { alpha },
        other => {
            return Err(invalid(format!(
                "neuron: unknown surrogate '{other}' (sigmoid, atan, triangle)"
            )))
        }
    };
    Ok(NeuronConfig {
        kind,
        v_threshold: o.v_threshold as f32,
        v_reset: o.v_reset.map(|v| v as f32),
        decay_input: o.decay_input,
        detach_reset: o.detach_reset,
        surrogate,
    })
}

/// Copies `data` to the device with the given shape.
#[napi(catch_unwind)]
pub fn tensor_from_data(data: Float32Array, shape: Vec<f64>) -> Result<f64> {
    let shape = to_shape("fromData", &shape)?;
    out(core::Tensor::from_slice(&default_device()?, &data, &shape))
}

/// A tensor filled with `value`.
#[napi(catch_unwind)]
pub fn tensor_full(shape: Vec<f64>, value: f64) -> Result<f64> {
    let shape = to_shape("full", &shape)?;
    out(core::Tensor::full(&default_device()?, &shape, value as f32))
}

/// Uniform values in [low, high) from `seed`.
#[napi(catch_unwind)]
pub fn tensor_rand(shape: Vec<f64>, seed: f64, low: f64, high: f64) -> Result<f64> {
    let shape = to_shape("rand", &shape)?;
    out(core::Tensor::rand(
        &default_device()?,
        &shape,
        to_seed(seed)?,
        low as f32,
        high as f32,
    ))
}

/// Normal values N(mean, std²) from `seed`.
#[napi(catch_unwind)]
pub fn tensor_randn(shape: Vec<f64>, seed: f64, mean: f64, std: f64) -> Result<f64> {
    let shape = to_shape("randn", &shape)?;
    out(core::Tensor::randn(
        &default_device()?,
        &shape,
        to_seed(seed)?,
        mean as f32,
        std as f32,
    ))
}

#[napi(catch_unwind)]
pub fn tensor_shape(x: f64) -> Result<Vec<u32>> {
    Ok(get(x, "shape")?.shape().iter().map(|&d| d as u32).collect())
}

#[napi(catch_unwind)]
pub fn tensor_disposed(x: f64) -> bool {
    TABLE.with(|table| !table.borrow().live.contains_key(&(x as u64)))
}

/// Reads the values back (waits for pending work).
#[napi(catch_unwind)]
pub fn tensor_to_float32_array(x: f64) -> Result<Float32Array> {
    let v = get(x, "toFloat32Array")?.to_vec().map_err(js_err)?;
    Ok(Float32Array::new(v))
}

/// Drops this handle's reference to the buffer (freed when no other tensor
/// shares it). Idempotent.
#[napi(catch_unwind)]
pub fn tensor_dispose(x: f64) {
    // Take the tensor out before dropping it, so the table is not borrowed
    // while the buffer goes back to the pool.
    let t = TABLE.with(|table| table.borrow_mut().live.remove(&(x as u64)));
    drop(t);
}

/// True when both handles share one buffer.
#[napi(catch_unwind)]
pub fn tensor_shares_storage(x: f64, other: f64) -> Result<bool> {
    Ok(get(x, "sharesStorage")?.same_storage(&get(other, "sharesStorage")?))
}

/// Copies `source`'s values into `x`'s buffer (same shape), in place.
#[napi(catch_unwind)]
pub fn tensor_assign(x: f64, source: f64) -> Result<()> {
    get(x, "assign")?
        .assign(&get(source, "assign")?)
        .map_err(js_err)
}

// ---- autograd -------------------------------------------------------

/// True for parameters and for outputs of recorded ops.
#[napi(catch_unwind)]
pub fn tensor_requires_grad(x: f64) -> Result<bool> {
    Ok(get(x, "requiresGrad")?.requires_grad())
}

/// A parameter handle on the same buffer: gradients flow to it and accumulate.
#[napi(catch_unwind)]
pub fn tensor_to_param(x: f64) -> Result<f64> {
    Ok(put(core::autograd::param(&get(x, "toParam")?)))
}

/// The same values, cut off from autograd.
#[napi(catch_unwind)]
pub fn tensor_detach(x: f64) -> Result<f64> {
    Ok(put(get(x, "detach")?.detach()))
}

/// The accumulated gradient of this parameter, or null.
#[napi(catch_unwind)]
pub fn tensor_grad(x: f64) -> Result<Option<f64>> {
    Ok(core::autograd::grad(&get(x, "grad")?).map(put))
}

/// Replaces (or with null clears) this parameter's gradient.
#[napi(catch_unwind)]
pub fn tensor_set_grad(x: f64, grad: Option<f64>) -> Result<()> {
    let g = get_opt(grad, "setGrad")?;
    core::autograd::set_grad(&get(x, "setGrad")?, g).map_err(js_err)
}

/// Back-propagates from `x` (seeded with ones unless `seed` is given) into
/// the parameters' gradients, consuming the recorded graph.
#[napi(catch_unwind)]
pub fn tensor_backward(x: f64, seed: Option<f64>) -> Result<()> {
    let seed = get_opt(seed, "backward")?;
    core::autograd::backward(&get(x, "backward")?, seed.as_ref()).map_err(js_err)
}

// ---- elementwise and shape -----------------------------------------

/// Elementwise `add`, `sub`, `mul`, `div` with broadcasting.
#[napi(catch_unwind)]
pub fn tensor_binary(x: f64, op: String, other: f64) -> Result<f64> {
    let op = core::ops::BinaryOp::from_name(&op).map_err(js_err)?;
    out(f::binary(&get(x, op.name())?, &get(other, op.name())?, op))
}

/// Unary and tensor–scalar ops (`neg`, `exp`, `add` with `scalar`, …).
#[napi(catch_unwind)]
pub fn tensor_unary(x: f64, op: String, scalar: Option<f64>) -> Result<f64> {
    let u = core::ops::UnaryOp::from_name(&op, scalar.unwrap_or(0.0) as f32).map_err(js_err)?;
    out(f::unary(&get(x, &op)?, u))
}

#[napi(catch_unwind)]
pub fn tensor_matmul(x: f64, other: f64) -> Result<f64> {
    out(f::matmul(&get(x, "matmul")?, &get(other, "matmul")?))
}

#[napi(catch_unwind)]
pub fn tensor_reshape(x: f64, shape: Vec<f64>) -> Result<f64> {
    let shape = to_shape("reshape", &shape)?;
    out(f::reshape(&get(x, "reshape")?, &shape))
}

#[napi(catch_unwind)]
pub fn tensor_permute(x: f64, dims: Vec<f64>) -> Result<f64> {
    let dims = to_shape("permute", &dims)?;
    out(f::permute(&get(x, "permute")?, &dims))
}

#[napi(catch_unwind)]
pub fn tensor_concat(tensors: Vec<f64>, axis: f64) -> Result<f64> {
    let axis = to_usize("concat", "axis", axis)?;
    let ts = tensors
        .iter()
        .map(|&t| get(t, "concat"))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&core::Tensor> = ts.iter().collect();
    out(f::concat(&refs, axis))
}

#[napi(catch_unwind)]
pub fn tensor_split(x: f64, axis: f64, sizes: Vec<f64>) -> Result<Vec<f64>> {
    let axis = to_usize("split", "axis", axis)?;
    let sizes = to_shape("split", &sizes)?;
    f::split(&get(x, "split")?, axis, &sizes)
        .map(|v| v.into_iter().map(put).collect())
        .map_err(js_err)
}

#[napi(catch_unwind)]
pub fn tensor_sum(x: f64, axes: Vec<f64>, keepdim: bool) -> Result<f64> {
    let axes = to_shape("sum", &axes)?;
    out(f::sum_axes(&get(x, "sum")?, &axes, keepdim))
}

#[napi(catch_unwind)]
pub fn tensor_mean(x: f64, axes: Vec<f64>, keepdim: bool) -> Result<f64> {
    let axes = to_shape("mean", &axes)?;
    out(f::mean_axes(&get(x, "mean")?, &axes, keepdim))
}

#[napi(catch_unwind)]
pub fn tensor_max(x: f64, axes: Vec<f64>, keepdim: bool) -> Result<f64> {
    let axes = to_shape("max", &axes)?;
    out(f::max_axes(&get(x, "max")?, &axes, keepdim))
}

// ---- activations ----------------------------------------------------

/// `relu`, `gelu`, `sigmoid`, `tanh`, or `leakyRelu` with `slope`.
#[napi(catch_unwind)]
pub fn tensor_activation(x: f64, name: String, slope: Option<f64>) -> Result<f64> {
    let x = get(x, &name)?;
    out(match name.as_str() {
        "relu" => f::relu(&x),
        "gelu" => f::gelu(&x),
        "sigmoid" => f::sigmoid(&x),
        "tanh" => f::tanh(&x),
        "leakyRelu" => f::leaky_relu(&x, slope.unwrap_or(0.01) as f32),
        other => {
            return Err(invalid(format!(
                "unknown activation '{other}' (known: relu, leakyRelu, gelu, sigmoid, tanh)"
            )))
        }
    })
}

#[napi(catch_unwind)]
pub fn tensor_softmax(x: f64, axis: f64) -> Result<f64> {
    out(f::softmax(
        &get(x, "softmax")?,
        to_usize("softmax", "axis", axis)?,
    ))
}

// ---- convolution, pooling, resampling ------------------------------

#[napi(catch_unwind, js_name = "tensorConv2d")]
pub fn tensor_conv2d(
    x: f64,
    weight: f64,
    bias: Option<f64>,
    options: Conv2dOptions,
) -> Result<f64> {
    let args = core::ops::conv::Conv2dArgs {
        stride: to_pair("conv2d", "stride", &options.stride)?,
        padding: to_pair("conv2d", "padding", &options.padding)?,
        dilation: to_pair("conv2d", "dilation", &options.dilation)?,
        groups: to_usize("conv2d", "groups", options.groups)?,
    };
    let b = get_opt(bias, "conv2d")?;
    out(f::conv2d(
        &get(x, "conv2d")?,
        &get(weight, "conv2d")?,
        b.as_ref(),
        &args,
    ))
}

#[napi(catch_unwind, js_name = "tensorAvgPool2d")]
pub fn tensor_avg_pool2d(x: f64, options: PoolOptions) -> Result<f64> {
    let (k, s, p) = pool_args("avgPool2d", &options)?;
    out(f::avg_pool2d(&get(x, "avgPool2d")?, k, s, p))
}

#[napi(catch_unwind, js_name = "tensorMaxPool2d")]
pub fn tensor_max_pool2d(x: f64, options: PoolOptions) -> Result<f64> {
    let (k, s, p) = pool_args("maxPool2d", &options)?;
    out(f::max_pool2d(&get(x, "maxPool2d")?, k, s, p))
}

#[napi(catch_unwind, js_name = "tensorAdaptiveAvgPool1x1")]
pub fn tensor_adaptive_avg_pool1x1(x: f64) -> Result<f64> {
    out(f::adaptive_avg_pool_1x1(&get(x, "adaptiveAvgPool1x1")?))
}

/// `nearest` or `bilinear` ×2 up-sampling.
#[napi(catch_unwind, js_name = "tensorUpsample2x")]
pub fn tensor_upsample2x(x: f64, mode: String) -> Result<f64> {
    let x = get(x, "upsample2x")?;
    out(match mode.as_str() {
        "nearest" => f::upsample_nearest2x(&x),
        "bilinear" => f::upsample_bilinear2x(&x),
        other => {
            return Err(invalid(format!(
                "upsample2x: unknown mode '{other}' (nearest, bilinear)"
            )))
        }
    })
}

#[napi(catch_unwind)]
pub fn tensor_pixel_shuffle(x: f64, factor: f64) -> Result<f64> {
    out(f::pixel_shuffle(
        &get(x, "pixelShuffle")?,
        to_usize("pixelShuffle", "factor", factor)?,
    ))
}

#[napi(catch_unwind)]
pub fn tensor_pixel_unshuffle(x: f64, factor: f64) -> Result<f64> {
    out(f::pixel_unshuffle(
        &get(x, "pixelUnshuffle")?,
        to_usize("pixelUnshuffle", "factor", factor)?,
    ))
}

/// Reflect padding of NCHW by [top, bottom, left, right].
#[napi(catch_unwind)]
pub fn tensor_pad_reflect(x: f64, padding: Vec<f64>) -> Result<f64> {
    let op = "padReflect";
    let pad = match padding[..] {
        [t, b, l, r] => [
            to_usize(op, "padding", t)?,
            to_usize(op, "padding", b)?,
            to_usize(op, "padding", l)?,
            to_usize(op, "padding", r)?,
        ],
        _ => {
            return Err(invalid(format!(
                "{op}: padding must be [top, bottom, left, right], got {padding:?}"
            )))
        }
    };
    out(f::pad2d_reflect(&get(x, op)?, pad))
}

// ---- normalisation ---------------------------------------------------

/// Batch norm over NCHW. Training uses batch statistics and updates the
/// running ones in place; evaluation uses the running ones.
#[allow(clippy::too_many_arguments)]
#[napi(catch_unwind)]
pub fn tensor_batch_norm(
    x: f64,
    weight: f64,
    bias: f64,
    running_mean: f64,
    running_var: f64,
    training: bool,
    momentum: f64,
    eps: f64,
) -> Result<f64> {
    let (mean, var) = (
        get(running_mean, "batchNorm")?,
        get(running_var, "batchNorm")?,
    );
    let running = f::RunningStats {
        mean: &mean,
        var: &var,
        momentum: momentum as f32,
    };
    out(f::batch_norm(
        &get(x, "batchNorm")?,
        &get(weight, "batchNorm")?,
        &get(bias, "batchNorm")?,
        Some(running),
        training,
        eps as f32,
    ))
}

#[napi(catch_unwind)]
pub fn tensor_layer_norm(x: f64, weight: f64, bias: f64, eps: f64) -> Result<f64> {
    out(f::layer_norm(
        &get(x, "layerNorm")?,
        &get(weight, "layerNorm")?,
        &get(bias, "layerNorm")?,
        eps as f32,
    ))
}

// ---- spiking -----------------------------------------------------------

/// Multi-step neurons over a time-major `[T, ...]` input; returns spikes.
#[napi(catch_unwind)]
pub fn tensor_neuron(x: f64, options: NeuronOptions, plif_w: Option<f64>) -> Result<f64> {
    let cfg = neuron_config(&options)?;
    let w = get_opt(plif_w, "neuron")?;
    out(f::neuron(&get(x, "neuron")?, &cfg, w.as_ref()))
}

/// Θ(x) (1 where x ≥ 0) whose backward is the named surrogate derivative.
#[napi(catch_unwind)]
pub fn tensor_heaviside(x: f64, surrogate: String, alpha: f64) -> Result<f64> {
    use core::ops::neuron::Surrogate;
    let alpha = alpha as f32;
    let s = match surrogate.as_str() {
        "sigmoid" => Surrogate::Sigmoid { alpha },
        "atan" => Surrogate::Atan { alpha },
        "triangle" => Surrogate::Triangle { alpha },
        other => {
            return Err(invalid(format!(
                "heaviside: unknown surrogate '{other}' (sigmoid, atan, triangle)"
            )))
        }
    };
    out(f::heaviside(&get(x, "heaviside")?, s))
}

/// Repeats along size-1 (or missing leading) dimensions; the gradient sums back.
#[napi(catch_unwind)]
pub fn tensor_broadcast_to(x: f64, shape: Vec<f64>) -> Result<f64> {
    let shape = to_shape("broadcastTo", &shape)?;
    out(f::broadcast_to(&get(x, "broadcastTo")?, &shape))
}

// ---- losses ----------------------------------------------------------

/// `l1`, `mse`, `charbonnier` (with `eps`) or `fft` loss against `target`.
#[napi(catch_unwind)]
pub fn tensor_loss(x: f64, kind: String, target: f64, eps: Option<f64>) -> Result<f64> {
    let (p, t) = (get(x, &kind)?, get(target, &kind)?);
    out(match kind.as_str() {
        "l1" => f::l1_loss(&p, &t),
        "mse" => f::mse_loss(&p, &t),
        "charbonnier" => f::charbonnier_loss(&p, &t, eps.unwrap_or(1e-3) as f32),
        "fft" => f::fft_loss(&p, &t),
        other => {
            return Err(invalid(format!(
                "unknown loss '{other}' (known: l1, mse, charbonnier, fft)"
            )))
        }
    })
}

fn pool_args(op: &str, o: &PoolOptions) -> Result<([usize; 2], [usize; 2], [usize; 2])> {
    Ok((
        to_pair(op, "kernel", &o.kernel)?,
        to_pair(op, "stride", &o.stride)?,
        to_pair(op, "padding", &o.padding)?,
    ))
}
