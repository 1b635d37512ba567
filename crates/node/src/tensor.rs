//! `NativeTensor`: a core tensor behind a JS handle, and every differentiable
//! op as a method (each goes through `core::functional`, so the autograd tape
//! sees it).

use napi::bindgen_prelude::Float32Array;
use napi::Result;
use napi_derive::napi;
use spikeir_core as core;
use spikeir_core::functional as f;

use crate::{default_device, invalid, js_err};

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

/// A tensor on the device. `dispose()` frees its GPU memory at once (when no
/// other tensor shares the buffer); any later use throws.
#[napi]
pub struct NativeTensor {
    inner: Option<core::Tensor>,
}

impl NativeTensor {
    pub(crate) fn wrap(t: core::Tensor) -> NativeTensor {
        NativeTensor { inner: Some(t) }
    }

    pub(crate) fn get(&self, op: &str) -> Result<&core::Tensor> {
        self.inner.as_ref().ok_or_else(|| {
            js_err(core::Error::Disposed(format!(
                "{op}: this tensor was disposed"
            )))
        })
    }
}

fn out(r: core::Result<core::Tensor>) -> Result<NativeTensor> {
    r.map(NativeTensor::wrap).map_err(js_err)
}

#[napi]
impl NativeTensor {
    /// Copies `data` to the device with the given shape.
    #[napi(factory, catch_unwind)]
    pub fn from_data(data: Float32Array, shape: Vec<f64>) -> Result<NativeTensor> {
        let shape = to_shape("fromData", &shape)?;
        out(core::Tensor::from_slice(&default_device()?, &data, &shape))
    }

    /// A tensor filled with `value`.
    #[napi(factory, catch_unwind)]
    pub fn full(shape: Vec<f64>, value: f64) -> Result<NativeTensor> {
        let shape = to_shape("full", &shape)?;
        out(core::Tensor::full(&default_device()?, &shape, value as f32))
    }

    /// Uniform values in [low, high) from `seed`.
    #[napi(factory, catch_unwind)]
    pub fn rand(shape: Vec<f64>, seed: f64, low: f64, high: f64) -> Result<NativeTensor> {
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
    #[napi(factory, catch_unwind)]
    pub fn randn(shape: Vec<f64>, seed: f64, mean: f64, std: f64) -> Result<NativeTensor> {
        let shape = to_shape("randn", &shape)?;
        out(core::Tensor::randn(
            &default_device()?,
            &shape,
            to_seed(seed)?,
            mean as f32,
            std as f32,
        ))
    }

    #[napi(getter, catch_unwind)]
    pub fn shape(&self) -> Result<Vec<u32>> {
        Ok(self
            .get("shape")?
            .shape()
            .iter()
            .map(|&d| d as u32)
            .collect())
    }

    #[napi(getter)]
    pub fn disposed(&self) -> bool {
        self.inner.is_none()
    }

    /// Reads the values back (waits for pending work).
    #[napi(catch_unwind)]
    pub fn to_float32_array(&self) -> Result<Float32Array> {
        let v = self.get("toFloat32Array")?.to_vec().map_err(js_err)?;
        Ok(Float32Array::new(v))
    }

    /// Drops this handle's reference to the GPU buffer. Idempotent.
    #[napi]
    pub fn dispose(&mut self) {
        self.inner = None;
    }

    /// True when both handles share one GPU buffer.
    #[napi(catch_unwind)]
    pub fn shares_storage(&self, other: &NativeTensor) -> Result<bool> {
        Ok(self
            .get("sharesStorage")?
            .same_storage(other.get("sharesStorage")?))
    }

    /// Copies `source`'s values into this tensor's buffer (same shape), in place.
    #[napi(catch_unwind)]
    pub fn assign(&self, source: &NativeTensor) -> Result<()> {
        self.get("assign")?
            .assign(source.get("assign")?)
            .map_err(js_err)
    }

    // ---- autograd -------------------------------------------------------

    /// True for parameters and for outputs of recorded ops.
    #[napi(getter, catch_unwind)]
    pub fn requires_grad(&self) -> Result<bool> {
        Ok(self.get("requiresGrad")?.requires_grad())
    }

    /// A parameter handle on the same buffer: gradients flow to it and accumulate.
    #[napi(catch_unwind)]
    pub fn to_param(&self) -> Result<NativeTensor> {
        Ok(NativeTensor::wrap(core::autograd::param(
            self.get("toParam")?,
        )))
    }

    /// The same values, cut off from autograd.
    #[napi(catch_unwind)]
    pub fn detach(&self) -> Result<NativeTensor> {
        Ok(NativeTensor::wrap(self.get("detach")?.detach()))
    }

    /// The accumulated gradient of this parameter, or null.
    #[napi(getter, catch_unwind)]
    pub fn grad(&self) -> Result<Option<NativeTensor>> {
        Ok(core::autograd::grad(self.get("grad")?).map(NativeTensor::wrap))
    }

    /// Replaces (or with null clears) this parameter's gradient.
    #[napi(catch_unwind)]
    pub fn set_grad(&self, grad: Option<&NativeTensor>) -> Result<()> {
        let g = match grad {
            Some(g) => Some(g.get("setGrad")?.clone()),
            None => None,
        };
        core::autograd::set_grad(self.get("setGrad")?, g).map_err(js_err)
    }

    /// Back-propagates from this tensor (seeded with ones unless `seed` is
    /// given) into the parameters' gradients, consuming the recorded graph.
    #[napi(catch_unwind)]
    pub fn backward(&self, seed: Option<&NativeTensor>) -> Result<()> {
        let seed = match seed {
            Some(s) => Some(s.get("backward")?.clone()),
            None => None,
        };
        core::autograd::backward(self.get("backward")?, seed.as_ref()).map_err(js_err)
    }

    // ---- elementwise and shape -----------------------------------------

    /// Elementwise `add`, `sub`, `mul`, `div` with broadcasting.
    #[napi(catch_unwind)]
    pub fn binary(&self, op: String, other: &NativeTensor) -> Result<NativeTensor> {
        let op = core::ops::BinaryOp::from_name(&op).map_err(js_err)?;
        out(f::binary(self.get(op.name())?, other.get(op.name())?, op))
    }

    /// Unary and tensor–scalar ops (`neg`, `exp`, `add` with `scalar`, …).
    #[napi(catch_unwind)]
    pub fn unary(&self, op: String, scalar: Option<f64>) -> Result<NativeTensor> {
        let u = core::ops::UnaryOp::from_name(&op, scalar.unwrap_or(0.0) as f32).map_err(js_err)?;
        out(f::unary(self.get(&op)?, u))
    }

    #[napi(catch_unwind)]
    pub fn matmul(&self, other: &NativeTensor) -> Result<NativeTensor> {
        out(f::matmul(self.get("matmul")?, other.get("matmul")?))
    }

    #[napi(catch_unwind)]
    pub fn reshape(&self, shape: Vec<f64>) -> Result<NativeTensor> {
        let shape = to_shape("reshape", &shape)?;
        out(f::reshape(self.get("reshape")?, &shape))
    }

    #[napi(catch_unwind)]
    pub fn permute(&self, dims: Vec<f64>) -> Result<NativeTensor> {
        let dims = to_shape("permute", &dims)?;
        out(f::permute(self.get("permute")?, &dims))
    }

    #[napi(factory, catch_unwind)]
    pub fn concat(tensors: Vec<&NativeTensor>, axis: f64) -> Result<NativeTensor> {
        let axis = to_usize("concat", "axis", axis)?;
        let ts = tensors
            .iter()
            .map(|t| t.get("concat"))
            .collect::<Result<Vec<_>>>()?;
        out(f::concat(&ts, axis))
    }

    #[napi(catch_unwind)]
    pub fn split(&self, axis: f64, sizes: Vec<f64>) -> Result<Vec<NativeTensor>> {
        let axis = to_usize("split", "axis", axis)?;
        let sizes = to_shape("split", &sizes)?;
        f::split(self.get("split")?, axis, &sizes)
            .map(|v| v.into_iter().map(NativeTensor::wrap).collect())
            .map_err(js_err)
    }

    #[napi(catch_unwind)]
    pub fn sum(&self, axes: Vec<f64>, keepdim: bool) -> Result<NativeTensor> {
        let axes = to_shape("sum", &axes)?;
        out(f::sum_axes(self.get("sum")?, &axes, keepdim))
    }

    #[napi(catch_unwind)]
    pub fn mean(&self, axes: Vec<f64>, keepdim: bool) -> Result<NativeTensor> {
        let axes = to_shape("mean", &axes)?;
        out(f::mean_axes(self.get("mean")?, &axes, keepdim))
    }

    #[napi(catch_unwind)]
    pub fn max(&self, axes: Vec<f64>, keepdim: bool) -> Result<NativeTensor> {
        let axes = to_shape("max", &axes)?;
        out(f::max_axes(self.get("max")?, &axes, keepdim))
    }

    // ---- activations ----------------------------------------------------

    /// `relu`, `gelu`, `sigmoid`, `tanh`, or `leakyRelu` with `slope`.
    #[napi(catch_unwind)]
    pub fn activation(&self, name: String, slope: Option<f64>) -> Result<NativeTensor> {
        let x = self.get(&name)?;
        out(match name.as_str() {
            "relu" => f::relu(x),
            "gelu" => f::gelu(x),
            "sigmoid" => f::sigmoid(x),
            "tanh" => f::tanh(x),
            "leakyRelu" => f::leaky_relu(x, slope.unwrap_or(0.01) as f32),
            other => {
                return Err(invalid(format!(
                    "unknown activation '{other}' (known: relu, leakyRelu, gelu, sigmoid, tanh)"
                )))
            }
        })
    }

    #[napi(catch_unwind)]
    pub fn softmax(&self, axis: f64) -> Result<NativeTensor> {
        out(f::softmax(
            self.get("softmax")?,
            to_usize("softmax", "axis", axis)?,
        ))
    }

    // ---- convolution, pooling, resampling ------------------------------

    #[napi(catch_unwind, js_name = "conv2d")]
    pub fn conv2d(
        &self,
        weight: &NativeTensor,
        bias: Option<&NativeTensor>,
        options: Conv2dOptions,
    ) -> Result<NativeTensor> {
        let args = core::ops::conv::Conv2dArgs {
            stride: to_pair("conv2d", "stride", &options.stride)?,
            padding: to_pair("conv2d", "padding", &options.padding)?,
            dilation: to_pair("conv2d", "dilation", &options.dilation)?,
            groups: to_usize("conv2d", "groups", options.groups)?,
        };
        let b = match bias {
            Some(b) => Some(b.get("conv2d")?),
            None => None,
        };
        out(f::conv2d(
            self.get("conv2d")?,
            weight.get("conv2d")?,
            b,
            &args,
        ))
    }

    #[napi(catch_unwind, js_name = "avgPool2d")]
    pub fn avg_pool2d(&self, options: PoolOptions) -> Result<NativeTensor> {
        let (k, s, p) = pool_args("avgPool2d", &options)?;
        out(f::avg_pool2d(self.get("avgPool2d")?, k, s, p))
    }

    #[napi(catch_unwind, js_name = "maxPool2d")]
    pub fn max_pool2d(&self, options: PoolOptions) -> Result<NativeTensor> {
        let (k, s, p) = pool_args("maxPool2d", &options)?;
        out(f::max_pool2d(self.get("maxPool2d")?, k, s, p))
    }

    #[napi(catch_unwind, js_name = "adaptiveAvgPool1x1")]
    pub fn adaptive_avg_pool1x1(&self) -> Result<NativeTensor> {
        out(f::adaptive_avg_pool_1x1(self.get("adaptiveAvgPool1x1")?))
    }

    /// `nearest` or `bilinear` ×2 up-sampling.
    #[napi(catch_unwind, js_name = "upsample2x")]
    pub fn upsample2x(&self, mode: String) -> Result<NativeTensor> {
        let x = self.get("upsample2x")?;
        out(match mode.as_str() {
            "nearest" => f::upsample_nearest2x(x),
            "bilinear" => f::upsample_bilinear2x(x),
            other => {
                return Err(invalid(format!(
                    "upsample2x: unknown mode '{other}' (nearest, bilinear)"
                )))
            }
        })
    }

    #[napi(catch_unwind)]
    pub fn pixel_shuffle(&self, factor: f64) -> Result<NativeTensor> {
        out(f::pixel_shuffle(
            self.get("pixelShuffle")?,
            to_usize("pixelShuffle", "factor", factor)?,
        ))
    }

    #[napi(catch_unwind)]
    pub fn pixel_unshuffle(&self, factor: f64) -> Result<NativeTensor> {
        out(f::pixel_unshuffle(
            self.get("pixelUnshuffle")?,
            to_usize("pixelUnshuffle", "factor", factor)?,
        ))
    }

    // ---- normalisation ---------------------------------------------------

    /// Batch norm over NCHW. Training uses batch statistics and updates the
    /// running ones in place; evaluation uses the running ones.
    // One argument per JS parameter: class handles cannot ride in an options object.
    #[allow(clippy::too_many_arguments)]
    #[napi(catch_unwind)]
    pub fn batch_norm(
        &self,
        weight: &NativeTensor,
        bias: &NativeTensor,
        running_mean: &NativeTensor,
        running_var: &NativeTensor,
        training: bool,
        momentum: f64,
        eps: f64,
    ) -> Result<NativeTensor> {
        let running = f::RunningStats {
            mean: running_mean.get("batchNorm")?,
            var: running_var.get("batchNorm")?,
            momentum: momentum as f32,
        };
        out(f::batch_norm(
            self.get("batchNorm")?,
            weight.get("batchNorm")?,
            bias.get("batchNorm")?,
            Some(running),
            training,
            eps as f32,
        ))
    }

    #[napi(catch_unwind)]
    pub fn layer_norm(
        &self,
        weight: &NativeTensor,
        bias: &NativeTensor,
        eps: f64,
    ) -> Result<NativeTensor> {
        out(f::layer_norm(
            self.get("layerNorm")?,
            weight.get("layerNorm")?,
            bias.get("layerNorm")?,
            eps as f32,
        ))
    }

    // ---- spiking -----------------------------------------------------------

    /// Multi-step neurons over a time-major `[T, ...]` input; returns spikes.
    #[napi(catch_unwind)]
    pub fn neuron(
        &self,
        options: NeuronOptions,
        plif_w: Option<&NativeTensor>,
    ) -> Result<NativeTensor> {
        let cfg = neuron_config(&options)?;
        let w = match plif_w {
            Some(w) => Some(w.get("neuron")?),
            None => None,
        };
        out(f::neuron(self.get("neuron")?, &cfg, w))
    }

    /// Θ(x) (1 where x ≥ 0) whose backward is the named surrogate derivative.
    #[napi(catch_unwind)]
    pub fn heaviside(&self, surrogate: String, alpha: f64) -> Result<NativeTensor> {
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
        out(f::heaviside(self.get("heaviside")?, s))
    }

    /// Repeats along size-1 (or missing leading) dimensions; the gradient sums back.
    #[napi(catch_unwind)]
    pub fn broadcast_to(&self, shape: Vec<f64>) -> Result<NativeTensor> {
        let shape = to_shape("broadcastTo", &shape)?;
        out(f::broadcast_to(self.get("broadcastTo")?, &shape))
    }

    // ---- losses ----------------------------------------------------------

    /// `l1`, `mse`, `charbonnier` (with `eps`) or `fft` loss against `target`.
    #[napi(catch_unwind)]
    pub fn loss(
        &self,
        kind: String,
        target: &NativeTensor,
        eps: Option<f64>,
    ) -> Result<NativeTensor> {
        let (p, t) = (self.get(&kind)?, target.get(&kind)?);
        out(match kind.as_str() {
            "l1" => f::l1_loss(p, t),
            "mse" => f::mse_loss(p, t),
            "charbonnier" => f::charbonnier_loss(p, t, eps.unwrap_or(1e-3) as f32),
            "fft" => f::fft_loss(p, t),
            other => {
                return Err(invalid(format!(
                    "unknown loss '{other}' (known: l1, mse, charbonnier, fft)"
                )))
            }
        })
    }
}

fn pool_args(op: &str, o: &PoolOptions) -> Result<([usize; 2], [usize; 2], [usize; 2])> {
    Ok((
        to_pair(op, "kernel", &o.kernel)?,
        to_pair(op, "stride", &o.stride)?,
        to_pair(op, "padding", &o.padding)?,
    ))
}
