//! Reverse-mode autograd: a tape of recorded ops and one `backward` match.
//!
//! Every differentiable op (see `functional.rs`) runs its forward kernel and,
//! when an input needs a gradient and recording is on, appends a [`Node`]
//! holding an [`Op`] with exactly the tensors its backward needs. Node ids are
//! created in execution order, so walking them backwards is a topological
//! order. `backward` consumes the tape: each node, with its saved tensors, is
//! dropped as soon as its gradients are pushed to its inputs, and each pending
//! gradient is dropped as soon as it has been used.
//!
//! Parameters are leaves with a persistent id; their gradients accumulate
//! (`+=`) across backward passes until `zero_grad`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};
use crate::ops::neuron::{NeuronConfig, Surrogate};
use crate::ops::{self, conv::Conv2dArgs, BinaryOp, UnaryOp};
use crate::tensor::{GradRef, Tensor};

/// A recorded op and what its backward needs. Inputs are listed in the order
/// the forward took them; `backward` returns one gradient per input.
pub(crate) enum Op {
    /// Elementwise a ∘ b with broadcasting.
    Add {
        a_shape: Vec<usize>,
        b_shape: Vec<usize>,
    },
    Sub {
        a_shape: Vec<usize>,
        b_shape: Vec<usize>,
    },
    Mul {
        a: Tensor,
        b: Tensor,
    },
    Div {
        a: Tensor,
        b: Tensor,
    },
    /// Elementwise maximum (or minimum): the gradient goes to the selected
    /// operand (to `a` on ties).
    Select {
        a: Tensor,
        b: Tensor,
        max: bool,
    },
    /// Unary op on x (saves x, and y where the derivative is cheaper from it).
    Unary {
        op: UnaryOp,
        x: Tensor,
        y: Tensor,
    },
    Matmul {
        a: Tensor,
        b: Tensor,
    },
    Reshape {
        shape: Vec<usize>,
    },
    Permute {
        dims: Vec<usize>,
    },
    Conv2d {
        x: Tensor,
        w: Tensor,
        has_bias: bool,
        args: Conv2dArgs,
    },
    UpsampleNearest2x,
    UpsampleBilinear2x {
        x_shape: Vec<usize>,
    },
    PixelShuffle {
        r: usize,
    },
    PixelUnshuffle {
        r: usize,
    },
    /// Reflect padding [top, bottom, left, right] of an input of `x_shape`.
    PadReflect {
        x_shape: Vec<usize>,
        pad: [usize; 4],
    },
    AvgPool2d {
        x_shape: Vec<usize>,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    },
    MaxPool2d {
        x_shape: Vec<usize>,
        indices: Tensor,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
    },
    AdaptiveAvgPool1x1 {
        x_shape: Vec<usize>,
    },
    Concat {
        axis: usize,
        sizes: Vec<usize>,
    },
    /// A slice `[start, start + len)` along `axis` of an input of `x_shape`.
    Slice {
        axis: usize,
        start: usize,
        x_shape: Vec<usize>,
    },
    SumAxes {
        x_shape: Vec<usize>,
        axes: Vec<usize>,
        keepdim: bool,
    },
    MeanAxes {
        x_shape: Vec<usize>,
        axes: Vec<usize>,
        keepdim: bool,
    },
    /// Maximum over axes: saves x and the maximum with the axes kept (size 1).
    MaxAxes {
        x: Tensor,
        max_kept: Tensor,
        axes: Vec<usize>,
    },
    Relu {
        x: Tensor,
    },
    LeakyRelu {
        x: Tensor,
        slope: f32,
    },
    Gelu {
        x: Tensor,
    },
    Sigmoid {
        y: Tensor,
    },
    Tanh {
        y: Tensor,
    },
    Softmax {
        y: Tensor,
        axis: usize,
    },
    /// Batch norm in training mode over NCHW: inputs x, weight, bias.
    BatchNorm {
        x: Tensor,
        weight: Tensor,
        mean: Tensor,
        invstd: Tensor,
    },
    /// Layer norm over channels: inputs x, weight, bias.
    LayerNorm {
        x: Tensor,
        weight: Tensor,
        mean: Tensor,
        invstd: Tensor,
    },
    L1Loss {
        pred: Tensor,
        target: Tensor,
    },
    MseLoss {
        pred: Tensor,
        target: Tensor,
    },
    CharbonnierLoss {
        pred: Tensor,
        target: Tensor,
        eps: f32,
    },
    FftLoss {
        pred: Tensor,
        target: Tensor,
    },
    /// Multi-step spiking neurons: inputs x (and PLIF's w); saves only H.
    Neuron {
        h: Tensor,
        cfg: NeuronConfig,
        w: Option<Tensor>,
    },
    /// Θ(x) = 1 if x ≥ 0: forward a step, backward the surrogate g'(x).
    Heaviside {
        x: Tensor,
        surrogate: Surrogate,
    },
    /// A materialised broadcast (e.g. direct encoding repeats an image T times).
    BroadcastTo {
        x_shape: Vec<usize>,
    },
}

/// `g` summed over the dimensions that `shape` broadcast: `g` itself (shared,
/// not copied) where there are none, as for most elementwise ops' operands.
fn sum_to_shape(g: &Tensor, shape: &[usize]) -> Result<Tensor> {
    if g.shape() == shape {
        return Ok(g.detach());
    }
    ops::layout::sum_to_shape(g, shape)
}

fn g_unary(g: &Tensor, op: UnaryOp) -> Result<Tensor> {
    ops::unary(g, op)
}

fn mul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    ops::binary(a, b, BinaryOp::Mul)
}

/// xᵀ over the last two dimensions.
fn transpose_last(x: &Tensor) -> Result<Tensor> {
    let r = x.shape().len();
    let mut dims: Vec<usize> = (0..r).collect();
    dims.swap(r - 2, r - 1);
    ops::layout::permute(x, &dims)
}

/// Gradients of `a · b` (see `ops::matmul` for the batch rules): when one
/// side is a shared 2-D matrix its gradient sums over the batch, done as one
/// matmul over the flattened batch.
fn matmul_backward(g: &Tensor, a: &Tensor, b: &Tensor) -> Result<(Tensor, Tensor)> {
    let (sa, sb) = (a.shape(), b.shape());
    let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
    let ga = ops::matmul(g, &transpose_last(b)?)?;
    let gb = if sb.len() == 2 && sa.len() > 2 {
        let rows = a.numel() / k;
        let a2 = a.reshape(&[rows, k])?;
        let g2 = g.reshape(&[rows, n])?;
        ops::matmul(&transpose_last(&a2)?, &g2)?
    } else {
        ops::matmul(&transpose_last(a)?, g)?
    };
    let ga = if sa.len() == 2 && sb.len() > 2 {
        // A shared by the batch: sum its per-batch gradients.
        let batch = ga.numel() / (m * k);
        ops::reduce::sum_axes(&ga.reshape(&[batch, m, k])?, &[0], false)?
    } else {
        ga
    };
    Ok((ga, gb))
}

/// g'(x) of DESIGN §3, composed from elementwise kernels (the fused neuron
/// kernels compute the same in-register; this path exists to check them).
fn surrogate_derivative(x: &Tensor, s: Surrogate) -> Result<Tensor> {
    let u = |t: &Tensor, op| ops::unary(t, op);
    match s {
        // α·σ(αx)·(1 − σ(αx))
        Surrogate::Sigmoid { alpha } => {
            let sg = ops::activation::sigmoid(&u(x, UnaryOp::MulScalar(alpha))?)?;
            let one_minus = u(&sg, UnaryOp::RsubScalar(1.0))?;
            u(&mul(&sg, &one_minus)?, UnaryOp::MulScalar(alpha))
        }
        // α / (2·(1 + (π/2·α·x)²))
        Surrogate::Atan { alpha } => {
            let z = u(x, UnaryOp::MulScalar(std::f32::consts::FRAC_PI_2 * alpha))?;
            let den = u(
                &u(&mul(&z, &z)?, UnaryOp::AddScalar(1.0))?,
                UnaryOp::MulScalar(2.0),
            )?;
            u(&den, UnaryOp::RdivScalar(alpha))
        }
        // max(0, α − α²·|x|)
        Surrogate::Triangle { alpha } => {
            let v = u(
                &u(&u(x, UnaryOp::Abs)?, UnaryOp::MulScalar(-alpha * alpha))?,
                UnaryOp::AddScalar(alpha),
            )?;
            let zero = Tensor::zeros(x.device(), &[1])?;
            ops::binary(&v, &zero, BinaryOp::Maximum)
        }
    }
}

impl Op {
    /// The op's name in profiles.
    fn kind(&self) -> &'static str {
        match self {
            Op::Add { .. } => "bwd Add",
            Op::Sub { .. } => "bwd Sub",
            Op::Mul { .. } => "bwd Mul",
            Op::Div { .. } => "bwd Div",
            Op::Select { .. } => "bwd Select",
            Op::Unary { .. } => "bwd Unary",
            Op::Matmul { .. } => "bwd Matmul",
            Op::Reshape { .. } => "bwd Reshape",
            Op::Permute { .. } => "bwd Permute",
            Op::Conv2d { .. } => "bwd Conv2d",
            Op::UpsampleNearest2x => "bwd UpsampleNearest2x",
            Op::UpsampleBilinear2x { .. } => "bwd UpsampleBilinear2x",
            Op::PixelShuffle { .. } => "bwd PixelShuffle",
            Op::PixelUnshuffle { .. } => "bwd PixelUnshuffle",
            Op::AvgPool2d { .. } => "bwd AvgPool2d",
            Op::MaxPool2d { .. } => "bwd MaxPool2d",
            Op::AdaptiveAvgPool1x1 { .. } => "bwd AdaptiveAvgPool1x1",
            Op::Concat { .. } => "bwd Concat",
            Op::Slice { .. } => "bwd Slice",
            Op::SumAxes { .. } => "bwd SumAxes",
            Op::MeanAxes { .. } => "bwd MeanAxes",
            Op::MaxAxes { .. } => "bwd MaxAxes",
            Op::Relu { .. } => "bwd Relu",
            Op::LeakyRelu { .. } => "bwd LeakyRelu",
            Op::Gelu { .. } => "bwd Gelu",
            Op::Sigmoid { .. } => "bwd Sigmoid",
            Op::Tanh { .. } => "bwd Tanh",
            Op::Softmax { .. } => "bwd Softmax",
            Op::BatchNorm { .. } => "bwd BatchNorm",
            Op::LayerNorm { .. } => "bwd LayerNorm",
            Op::L1Loss { .. } => "bwd L1Loss",
            Op::MseLoss { .. } => "bwd MseLoss",
            Op::CharbonnierLoss { .. } => "bwd CharbonnierLoss",
            Op::FftLoss { .. } => "bwd FftLoss",
            Op::Neuron { .. } => "bwd Neuron",
            Op::Heaviside { .. } => "bwd Heaviside",
            Op::BroadcastTo { .. } => "bwd BroadcastTo",
            Op::PadReflect { .. } => "bwd PadReflect",
        }
    }

    /// Gradients of the inputs given the gradient `g` of the output; `None`
    /// for inputs that take none (such as a target). `needs[i]` says whether
    /// input `i` is a parameter or a recorded op's output: the gradient of a
    /// constant input (an image, a target, a teacher's feature) is never
    /// used, and the ops below skip computing it where that saves a kernel.
    fn backward(self, g: &Tensor, needs: &[bool]) -> Result<Vec<Option<Tensor>>> {
        let need = |i: usize| needs.get(i).copied().unwrap_or(true);
        // Runs `f` only for an input that takes a gradient.
        let opt = |i: usize, f: &dyn Fn() -> Result<Tensor>| -> Result<Option<Tensor>> {
            if need(i) {
                f().map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(match self {
            Op::Add { a_shape, b_shape } => vec![
                opt(0, &|| sum_to_shape(g, &a_shape))?,
                opt(1, &|| sum_to_shape(g, &b_shape))?,
            ],
            Op::Sub { a_shape, b_shape } => vec![
                opt(0, &|| sum_to_shape(g, &a_shape))?,
                opt(1, &|| sum_to_shape(&g_unary(g, UnaryOp::Neg)?, &b_shape))?,
            ],
            // d(ab)/da = b, d(ab)/db = a
            Op::Mul { a, b } => vec![
                opt(0, &|| sum_to_shape(&mul(g, &b)?, a.shape()))?,
                opt(1, &|| sum_to_shape(&mul(g, &a)?, b.shape()))?,
            ],
            // d(a/b)/da = 1/b, d(a/b)/db = −a/b²
            Op::Div { a, b } => {
                let ga = ops::binary(g, &b, BinaryOp::Div)?;
                let gb = ops::binary(&mul(&ga, &a)?, &b, BinaryOp::Div)?;
                vec![
                    Some(sum_to_shape(&ga, a.shape())?),
                    Some(sum_to_shape(&g_unary(&gb, UnaryOp::Neg)?, b.shape())?),
                ]
            }
            Op::Select { a, b, max } => {
                // mask = 1 where a is selected: a ≥ b for max, a ≤ b for min.
                let b_wins = if max {
                    ops::binary(&a, &b, BinaryOp::Less)?
                } else {
                    ops::binary(&b, &a, BinaryOp::Less)?
                };
                vec![
                    opt(0, &|| {
                        let a_wins = ops::unary(&b_wins, UnaryOp::RsubScalar(1.0))?;
                        sum_to_shape(&mul(g, &a_wins)?, a.shape())
                    })?,
                    opt(1, &|| sum_to_shape(&mul(g, &b_wins)?, b.shape()))?,
                ]
            }
            Op::Unary { op, x, y } => {
                let gx = match op {
                    UnaryOp::Neg => g_unary(g, UnaryOp::Neg)?,
                    UnaryOp::Abs => mul(g, &g_unary(&x, UnaryOp::Sign)?)?,
                    UnaryOp::Sign => ops::unary(g, UnaryOp::MulScalar(0.0))?,
                    UnaryOp::Exp => mul(g, &y)?, // (eˣ)' = eˣ
                    UnaryOp::Log => ops::binary(g, &x, BinaryOp::Div)?, // (ln x)' = 1/x
                    UnaryOp::Sqrt => {
                        ops::binary(&g_unary(g, UnaryOp::MulScalar(0.5))?, &y, BinaryOp::Div)?
                    } // 1/(2√x)
                    UnaryOp::AddScalar(_) | UnaryOp::SubScalar(_) => g.detach(),
                    UnaryOp::RsubScalar(_) => g_unary(g, UnaryOp::Neg)?,
                    UnaryOp::MulScalar(s) => g_unary(g, UnaryOp::MulScalar(s))?,
                    UnaryOp::DivScalar(s) => g_unary(g, UnaryOp::DivScalar(s))?,
                    // (s/x)' = −s/x² = −y/x
                    UnaryOp::RdivScalar(_) => {
                        g_unary(&mul(g, &ops::binary(&y, &x, BinaryOp::Div)?)?, UnaryOp::Neg)?
                    }
                    // (xˢ)' = s·xˢ⁻¹
                    UnaryOp::PowScalar(s) => mul(
                        g,
                        &g_unary(
                            &g_unary(&x, UnaryOp::PowScalar(s - 1.0))?,
                            UnaryOp::MulScalar(s),
                        )?,
                    )?,
                };
                vec![Some(gx)]
            }
            Op::Matmul { a, b } => {
                let (ga, gb) = matmul_backward(g, &a, &b)?;
                vec![need(0).then_some(ga), need(1).then_some(gb)]
            }
            Op::Reshape { shape } => vec![Some(g.reshape(&shape)?)],
            Op::Permute { dims } => {
                vec![Some(ops::layout::permute(
                    g,
                    &ops::layout::inverse_permutation(&dims),
                )?)]
            }
            Op::Conv2d {
                x,
                w,
                has_bias,
                args,
            } => {
                // The input gradient of a conv on a constant (the first conv
                // of a network, on the image) is as costly as its forward.
                let gx = opt(0, &|| {
                    let _p = crate::profile::span("bwd conv2d input");
                    ops::conv::conv2d_backward_input(g, &w, x.shape(), &args)
                })?;
                let gw = opt(1, &|| {
                    let _p = crate::profile::span("bwd conv2d weight");
                    ops::conv::conv2d_backward_weight(g, &x, w.shape(), &args)
                })?;
                let mut v = vec![gx, gw];
                if has_bias {
                    v.push(opt(2, &|| ops::conv::conv2d_backward_bias(g))?);
                }
                v
            }
            Op::UpsampleNearest2x => vec![Some(ops::resample::upsample_nearest2x_backward(g)?)],
            Op::UpsampleBilinear2x { x_shape } => {
                vec![Some(ops::resample::upsample_bilinear2x_backward(
                    g, &x_shape,
                )?)]
            }
            Op::PixelShuffle { r } => vec![Some(ops::layout::pixel_unshuffle(g, r)?)],
            Op::PixelUnshuffle { r } => vec![Some(ops::layout::pixel_shuffle(g, r)?)],
            Op::PadReflect { x_shape, pad } => {
                vec![Some(ops::pad::pad2d_reflect_backward(g, &x_shape, pad)?)]
            }
            Op::AvgPool2d {
                x_shape,
                kernel,
                stride,
                padding,
            } => vec![Some(ops::pool::avg_pool2d_backward(
                g, &x_shape, kernel, stride, padding,
            )?)],
            Op::MaxPool2d {
                x_shape,
                indices,
                kernel,
                stride,
                padding,
            } => vec![Some(ops::pool::max_pool2d_backward(
                g, &indices, &x_shape, kernel, stride, padding,
            )?)],
            Op::AdaptiveAvgPool1x1 { x_shape } => {
                vec![Some(ops::pool::adaptive_avg_pool_1x1_backward(
                    g, &x_shape,
                )?)]
            }
            Op::Concat { axis, sizes } => ops::layout::split(g, axis, &sizes)?
                .into_iter()
                .map(Some)
                .collect(),
            // The gradient of a slice is g in place and zeros around it.
            Op::Slice {
                axis,
                start,
                x_shape,
            } => {
                let after = x_shape[axis] - start - g.shape()[axis];
                let zeros = |n: usize| {
                    let mut s = x_shape.clone();
                    s[axis] = n;
                    Tensor::zeros(g.device(), &s)
                };
                let before = if start > 0 { Some(zeros(start)?) } else { None };
                let behind = if after > 0 { Some(zeros(after)?) } else { None };
                let parts: Vec<&Tensor> = before.iter().chain([g]).chain(behind.iter()).collect();
                vec![Some(ops::layout::concat(&parts, axis)?)]
            }
            Op::SumAxes {
                x_shape,
                axes,
                keepdim,
            } => {
                vec![Some(ops::reduce::sum_axes_backward(
                    g, &x_shape, &axes, keepdim,
                )?)]
            }
            Op::MeanAxes {
                x_shape,
                axes,
                keepdim,
            } => {
                vec![Some(ops::reduce::mean_axes_backward(
                    g, &x_shape, &axes, keepdim,
                )?)]
            }
            // Split evenly among the elements equal to their maximum, as
            // PyTorch's amax: tied elements are treated alike.
            Op::MaxAxes { x, max_kept, axes } => {
                vec![Some(ops::reduce::max_axes_backward(
                    g, &x, &max_kept, &axes,
                )?)]
            }
            Op::Relu { x } => vec![Some(ops::activation::relu_backward(g, &x)?)],
            Op::LeakyRelu { x, slope } => {
                vec![Some(ops::activation::leaky_relu_backward(g, &x, slope)?)]
            }
            Op::Gelu { x } => vec![Some(ops::activation::gelu_backward(g, &x)?)],
            Op::Sigmoid { y } => vec![Some(ops::activation::sigmoid_backward(g, &y)?)],
            Op::Tanh { y } => vec![Some(ops::activation::tanh_backward(g, &y)?)],
            Op::Softmax { y, axis } => vec![Some(ops::activation::softmax_backward(g, &y, axis)?)],
            Op::BatchNorm {
                x,
                weight,
                mean,
                invstd,
            } => {
                let (gx, gw, gb) = ops::norm::batch_norm_backward(g, &x, &weight, &mean, &invstd)?;
                vec![Some(gx), Some(gw), Some(gb)]
            }
            Op::LayerNorm {
                x,
                weight,
                mean,
                invstd,
            } => {
                let (gx, gw, gb) = ops::norm::layer_norm_backward(g, &x, &weight, &mean, &invstd)?;
                vec![Some(gx), Some(gw), Some(gb)]
            }
            Op::L1Loss { pred, target } => {
                vec![Some(ops::loss::l1_loss_backward(g, &pred, &target)?), None]
            }
            Op::MseLoss { pred, target } => {
                vec![Some(ops::loss::mse_loss_backward(g, &pred, &target)?), None]
            }
            Op::CharbonnierLoss { pred, target, eps } => vec![
                Some(ops::loss::charbonnier_loss_backward(
                    g, &pred, &target, eps,
                )?),
                None,
            ],
            Op::FftLoss { pred, target } => {
                vec![Some(ops::loss::fft_loss_backward(g, &pred, &target)?), None]
            }
            Op::Neuron { h, cfg, w } => {
                let (gx, gw) = ops::neuron::neuron_backward(g, &h, &cfg, w.as_ref())?;
                let mut v = vec![Some(gx)];
                if w.is_some() {
                    v.push(gw);
                }
                v
            }
            Op::Heaviside { x, surrogate } => {
                vec![Some(mul(g, &surrogate_derivative(&x, surrogate)?)?)]
            }
            Op::BroadcastTo { x_shape } => vec![Some(sum_to_shape(g, &x_shape)?)],
        })
    }
}

#[derive(Clone, Copy)]
enum Parent {
    Const,
    Param(u64),
    Node(usize),
}

struct Node {
    op: Op,
    parents: Vec<Parent>,
}

struct Tape {
    generation: u64,
    nodes: Vec<Option<Node>>,
    // `None` until first use: a static cannot build a HashMap.
    param_grads: Option<HashMap<u64, Tensor>>,
    /// Recording is off while this is above zero (nested no-grad scopes).
    no_grad_depth: u32,
}

thread_local! {
    /// One tape per thread (JS runs ops on one thread; Rust tests run in parallel).
    static TAPE: RefCell<Tape> = const {
        RefCell::new(Tape {
            generation: 1,
            nodes: Vec::new(),
            param_grads: None,
            no_grad_depth: 0,
        })
    };
}

/// Parameter ids are unique across threads.
static NEXT_PARAM: AtomicU64 = AtomicU64::new(1);

fn with_tape<R>(f: impl FnOnce(&mut Tape) -> R) -> R {
    TAPE.with(|t| f(&mut t.borrow_mut()))
}

impl Tape {
    fn parent(&self, t: &Tensor) -> Parent {
        match t.grad {
            GradRef::None => Parent::Const,
            GradRef::Param(id) => Parent::Param(id),
            GradRef::Node { generation, index } if generation == self.generation => {
                Parent::Node(index)
            }
            // Output of an op from before the last backward: its graph is gone.
            GradRef::Node { .. } => Parent::Const,
        }
    }

    fn grads(&mut self) -> &mut HashMap<u64, Tensor> {
        self.param_grads.get_or_insert_with(HashMap::new)
    }

    fn clear(&mut self) {
        self.nodes.clear();
        self.generation += 1;
    }
}

/// Records `op` as the producer of `output` if an input needs a gradient and
/// recording is on; otherwise drops `op` (and what it saved) at once.
pub(crate) fn record(op: impl FnOnce() -> Op, inputs: &[&Tensor], mut output: Tensor) -> Tensor {
    with_tape(|t| {
        if t.no_grad_depth > 0 {
            return;
        }
        let parents: Vec<Parent> = inputs.iter().map(|x| t.parent(x)).collect();
        if parents.iter().all(|p| matches!(p, Parent::Const)) {
            return;
        }
        let index = t.nodes.len();
        t.nodes.push(Some(Node { op: op(), parents }));
        output.grad = GradRef::Node {
            generation: t.generation,
            index,
        };
    });
    output
}

/// True when ops are being recorded (outside every no-grad scope).
pub fn is_recording() -> bool {
    with_tape(|t| t.no_grad_depth == 0)
}

/// Runs `f` without recording: for the teacher's forward and evaluation.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    enter_no_grad();
    struct Exit;
    impl Drop for Exit {
        fn drop(&mut self) {
            exit_no_grad();
        }
    }
    let _exit = Exit;
    f()
}

/// Starts a no-grad region (for callers that cannot pass a closure, such as JS).
pub fn enter_no_grad() {
    with_tape(|t| t.no_grad_depth += 1);
}

/// Ends a no-grad region started by [`enter_no_grad`].
pub fn exit_no_grad() {
    with_tape(|t| t.no_grad_depth = t.no_grad_depth.saturating_sub(1));
}

/// Makes `t` a parameter: a leaf whose gradient accumulates in [`grad`].
pub fn param(t: &Tensor) -> Tensor {
    let id = NEXT_PARAM.fetch_add(1, Ordering::Relaxed);
    let mut p = t.detach();
    p.grad = GradRef::Param(id);
    p
}

/// The accumulated gradient of parameter `p`, if a backward pass reached it.
pub fn grad(p: &Tensor) -> Option<Tensor> {
    match p.grad {
        GradRef::Param(id) => with_tape(|t| t.grads().get(&id).map(|g| g.detach())),
        _ => None,
    }
}

/// Replaces (or with `None` removes) the gradient of parameter `p`, e.g. after clipping.
pub fn set_grad(p: &Tensor, g: Option<Tensor>) -> Result<()> {
    let GradRef::Param(id) = p.grad else {
        return Err(Error::InvalidArgument(
            "setGrad: the tensor is not a parameter".into(),
        ));
    };
    if let Some(g) = &g {
        if g.shape() != p.shape() {
            return Err(Error::Shape(format!(
                "setGrad: gradient {:?} does not match parameter {:?}",
                g.shape(),
                p.shape()
            )));
        }
    }
    with_tape(|t| match g {
        Some(g) => {
            t.grads().insert(id, g.detach());
        }
        None => {
            t.grads().remove(&id);
        }
    });
    Ok(())
}

/// Forgets every accumulated parameter gradient.
pub fn zero_grad() {
    with_tape(|t| t.grads().clear());
}

/// Drops the recorded graph without running backward (after a forward whose
/// result is not trained on).
pub fn clear_tape() {
    with_tape(|t| t.clear());
}

/// Number of recorded nodes still holding saved tensors.
pub fn tape_len() -> usize {
    with_tape(|t| t.nodes.iter().filter(|n| n.is_some()).count())
}

fn accumulate(slot: &mut Option<Tensor>, g: Tensor) -> Result<()> {
    let _p = crate::profile::span("bwd accumulate");
    *slot = Some(match slot.take() {
        None => g,
        // A sum that nothing else holds is added to in place, without a new
        // buffer; one shared with a saved tensor, a user or another pending
        // gradient is left alone.
        Some(prev) if prev.add_assign_if_unique(&g) => prev,
        Some(prev) => ops::binary(&prev, &g, BinaryOp::Add)?,
    });
    Ok(())
}

/// Back-propagates from `output` (seeded with ones, or with `seed`) and
/// accumulates into the parameters' gradients. Consumes the whole tape.
pub fn backward(output: &Tensor, seed: Option<&Tensor>) -> Result<()> {
    let seed = match seed {
        Some(s) if s.shape() != output.shape() => {
            return Err(Error::Shape(format!(
                "backward: seed gradient {:?} does not match output {:?}",
                s.shape(),
                output.shape()
            )))
        }
        Some(s) => s.detach(),
        None => Tensor::ones(output.device(), output.shape())?,
    };
    // Take the nodes out: backward kernels record nothing, and the tape is
    // free for the next forward as soon as this returns.
    let (nodes, start) = with_tape(|t| {
        let start = t.parent(output);
        let nodes = std::mem::take(&mut t.nodes);
        t.clear();
        (nodes, start)
    });
    let mut pending: Vec<Option<Tensor>> = (0..nodes.len()).map(|_| None).collect();
    let mut param_updates: Vec<(u64, Tensor)> = Vec::new();
    let top = match start {
        Parent::Const => {
            return Err(Error::InvalidArgument(
                "backward: the output does not depend on any parameter (was it computed under noGrad, or before the last backward?)".into(),
            ))
        }
        Parent::Param(id) => {
            param_updates.push((id, seed));
            None
        }
        Parent::Node(i) => {
            pending[i] = Some(seed);
            Some(i)
        }
    };
    let mut nodes = nodes;
    if let Some(top) = top {
        for i in (0..=top).rev() {
            let Some(g) = pending[i].take() else { continue };
            let Some(node) = nodes[i].take() else {
                continue;
            };
            let Node { op, parents } = node;
            let _p = crate::profile::span(op.kind());
            let needs: Vec<bool> = parents
                .iter()
                .map(|p| !matches!(p, Parent::Const))
                .collect();
            let grads = op.backward(&g, &needs)?;
            drop(g);
            for (parent, gi) in parents.into_iter().zip(grads) {
                let Some(gi) = gi else { continue };
                match parent {
                    Parent::Const => {}
                    Parent::Node(j) => accumulate(&mut pending[j], gi)?,
                    Parent::Param(id) => param_updates.push((id, gi)),
                }
            }
        }
    }
    drop(nodes);
    for (id, g) in param_updates {
        let mut slot = with_tape(|t| t.grads().remove(&id));
        accumulate(&mut slot, g.detach())?;
        if let Some(s) = slot {
            with_tape(|t| t.grads().insert(id, s));
        }
    }
    Ok(())
}
