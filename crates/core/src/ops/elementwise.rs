//! Elementwise kernels: unary ops (with an optional scalar), binary ops with
//! NumPy broadcasting, and fill.

use crate::backend::{kernels, Native, Wgpu};
use crate::cpu;
use crate::error::{Error, Result};
use crate::shape;
use crate::tensor::Tensor;

/// A unary op, optionally with a scalar `s`. The WGSL expression sees `v`
/// (the element) and `s`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    Neg,
    Abs,
    /// −1, 0 or 1.
    Sign,
    Exp,
    Log,
    Sqrt,
    AddScalar(f32),
    /// x − s
    SubScalar(f32),
    /// s − x
    RsubScalar(f32),
    MulScalar(f32),
    /// x / s
    DivScalar(f32),
    /// s / x
    RdivScalar(f32),
    PowScalar(f32),
}

impl UnaryOp {
    /// Parses an op name as used by the binding (`"add"`, `"neg"`, …).
    pub fn from_name(name: &str, s: f32) -> Result<UnaryOp> {
        Ok(match name {
            "neg" => UnaryOp::Neg,
            "abs" => UnaryOp::Abs,
            "sign" => UnaryOp::Sign,
            "exp" => UnaryOp::Exp,
            "log" => UnaryOp::Log,
            "sqrt" => UnaryOp::Sqrt,
            "add" => UnaryOp::AddScalar(s),
            "sub" => UnaryOp::SubScalar(s),
            "rsub" => UnaryOp::RsubScalar(s),
            "mul" => UnaryOp::MulScalar(s),
            "div" => UnaryOp::DivScalar(s),
            "rdiv" => UnaryOp::RdivScalar(s),
            "pow" => UnaryOp::PowScalar(s),
            other => {
                return Err(Error::InvalidArgument(format!(
                    "unknown unary op '{other}' (known: neg, abs, sign, exp, log, sqrt, add, sub, rsub, mul, div, rdiv, pow)"
                )))
            }
        })
    }

    /// Kernel key, WGSL expression and scalar operand.
    fn kernel(self) -> (&'static str, &'static str, f32) {
        match self {
            UnaryOp::Neg => ("neg", "-v", 0.0),
            UnaryOp::Abs => ("abs", "abs(v)", 0.0),
            UnaryOp::Sign => ("sign", "sign(v)", 0.0),
            UnaryOp::Exp => ("exp", "exp(v)", 0.0),
            UnaryOp::Log => ("log", "log(v)", 0.0),
            UnaryOp::Sqrt => ("sqrt", "sqrt(v)", 0.0),
            UnaryOp::AddScalar(s) => ("add_scalar", "v + s", s),
            UnaryOp::SubScalar(s) => ("sub_scalar", "v - s", s),
            UnaryOp::RsubScalar(s) => ("rsub_scalar", "s - v", s),
            UnaryOp::MulScalar(s) => ("mul_scalar", "v * s", s),
            UnaryOp::DivScalar(s) => ("div_scalar", "v / s", s),
            UnaryOp::RdivScalar(s) => ("rdiv_scalar", "s / v", s),
            // WGSL's pow is exp2(s·log2(v)): undefined for v ≤ 0. Take the
            // magnitude, restore the sign for odd integer exponents, and
            // define 0^s as 0 (s ≠ 0) or 1 (s = 0).
            UnaryOp::PowScalar(s) => (
                "pow_scalar",
                "select(select(pow(abs(v), s), -pow(abs(v), s), v < 0.0 && fract(s * 0.5) == 0.5), select(0.0, 1.0, s == 0.0), v == 0.0)",
                s,
            ),
        }
    }
}

/// A binary elementwise op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    /// 1 where a < b, else 0 (no gradient): for Bernoulli rate coding.
    Less,
    Maximum,
    Minimum,
}

impl BinaryOp {
    pub fn from_name(name: &str) -> Result<BinaryOp> {
        Ok(match name {
            "add" => BinaryOp::Add,
            "sub" => BinaryOp::Sub,
            "mul" => BinaryOp::Mul,
            "div" => BinaryOp::Div,
            "less" => BinaryOp::Less,
            "maximum" => BinaryOp::Maximum,
            "minimum" => BinaryOp::Minimum,
            other => {
                return Err(Error::InvalidArgument(format!(
                "unknown binary op '{other}' (known: add, sub, mul, div, less, maximum, minimum)"
            )))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Less => "less",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }

    fn expr(self) -> &'static str {
        match self {
            BinaryOp::Add => "x + y",
            BinaryOp::Sub => "x - y",
            BinaryOp::Mul => "x * y",
            BinaryOp::Div => "x / y",
            BinaryOp::Less => "select(0.0, 1.0, x < y)",
            BinaryOp::Maximum => "max(x, y)",
            BinaryOp::Minimum => "min(x, y)",
        }
    }
}

fn u32_arg(op: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::TooLarge(format!("{op}: {n} elements exceed 2^32")))
}

/// Writes `value` into every element of `t`.
pub fn fill(t: &Tensor, value: f32) -> Result<()> {
    kernels(t.device()).fill(t, value)
}

/// y = op(x).
pub fn unary(x: &Tensor, op: UnaryOp) -> Result<Tensor> {
    kernels(x.device()).unary(x, op)
}

/// z = a op b with NumPy broadcasting.
pub fn binary(a: &Tensor, b: &Tensor, op: BinaryOp) -> Result<Tensor> {
    let name = op.name();
    a.same_device(b, name)?;
    let out_shape = shape::broadcast(name, a.shape(), b.shape())?;
    kernels(a.device()).binary(a, b, op, &out_shape)
}

/// The elementwise kernels of a backend, given checked operands.
pub(crate) trait ElementwiseKernels {
    fn fill(&self, t: &Tensor, value: f32) -> Result<()>;
    fn unary(&self, x: &Tensor, op: UnaryOp) -> Result<Tensor>;
    /// `out_shape` is the broadcast of the operands' shapes.
    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp, out_shape: &[usize]) -> Result<Tensor>;
}

impl ElementwiseKernels for Native {
    fn fill(&self, t: &Tensor, value: f32) -> Result<()> {
        cpu::elementwise::fill(&mut t.host_mut(), value);
        Ok(())
    }

    fn unary(&self, x: &Tensor, op: UnaryOp) -> Result<Tensor> {
        Tensor::from_vec(
            x.device(),
            cpu::elementwise::unary(&x.host(), op),
            x.shape(),
        )
    }

    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp, out_shape: &[usize]) -> Result<Tensor> {
        let z = cpu::elementwise::binary(&a.host(), a.shape(), &b.host(), b.shape(), op);
        Tensor::from_vec(a.device(), z, out_shape)
    }
}

impl ElementwiseKernels for Wgpu {
    fn fill(&self, t: &Tensor, value: f32) -> Result<()> {
        let dev = t.device();
        let n = t.numel();
        let pipeline = dev.pipeline("fill", || include_str!("../shaders/fill.wgsl").to_string());
        dev.dispatch(
            &pipeline,
            &[n as u32, value.to_bits()],
            &[t.buffer()],
            dev.linear_grid(n),
        )
    }

    fn unary(&self, x: &Tensor, op: UnaryOp) -> Result<Tensor> {
        let (key, expr, s) = op.kernel();
        let dev = x.device();
        let n = u32_arg(key, x.numel())?;
        let y = Tensor::uninit(dev, x.shape(), key)?;
        let pipeline = dev.pipeline(&format!("unary/{key}"), || {
            include_str!("../shaders/unary.wgsl").replace("EXPR", expr)
        });
        dev.dispatch(
            &pipeline,
            &[n, s.to_bits()],
            &[x.buffer(), y.buffer()],
            dev.linear_grid(n as usize),
        )?;
        Ok(y)
    }

    fn binary(&self, a: &Tensor, b: &Tensor, op: BinaryOp, out_shape: &[usize]) -> Result<Tensor> {
        let name = op.name();
        let dev = a.device();
        let z = Tensor::uninit(dev, out_shape, name)?;
        let n = u32_arg(name, z.numel())?;
        if a.shape() == b.shape() {
            let pipeline = dev.pipeline(&format!("binary_same/{name}"), || {
                include_str!("../shaders/binary_same.wgsl").replace("EXPR", op.expr())
            });
            dev.dispatch(
                &pipeline,
                &[n],
                &[a.buffer(), b.buffer(), z.buffer()],
                dev.linear_grid(n as usize),
            )?;
            return Ok(z);
        }
        let rank = out_shape.len();
        let sa = shape::broadcast_strides(a.shape(), out_shape);
        let sb = shape::broadcast_strides(b.shape(), out_shape);
        // Layout of the uniform: n, rank, 2 pad words, then dims, sa, sb as 8 words each.
        let mut params = vec![n, rank as u32, 0, 0];
        for arr in [out_shape, &sa, &sb] {
            let mut words = arr.iter().map(|&v| v as u32).collect::<Vec<_>>();
            words.resize(8, 0);
            params.extend(words);
        }
        let pipeline = dev.pipeline(&format!("binary_broadcast/{name}"), || {
            include_str!("../shaders/binary_broadcast.wgsl").replace("EXPR", op.expr())
        });
        dev.dispatch(
            &pipeline,
            &params,
            &[a.buffer(), b.buffer(), z.buffer()],
            dev.linear_grid(n as usize),
        )?;
        Ok(z)
    }
}
