//! The shapes of a convolution, checked once for every backend: the
//! geometry both backends' kernels are given, and the checks of a gradient
//! against it.

use super::Conv2dArgs;
use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// The shapes of one convolution, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(super) n: usize,
    pub(super) cin: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) cout: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) hout: usize,
    pub(super) wout: usize,
    pub(super) groups: usize,
    /// Input channels per group (the weight's second dimension).
    pub(super) cig: usize,
    /// Output channels per group.
    pub(super) cog: usize,
    /// A depthwise convolution folded into groups of four channels whose
    /// weights are diagonal (see `folded`).
    pub(super) diagonal: bool,
    pub(super) args: Conv2dArgs,
}

impl Geometry {
    /// The kernels' view of a depthwise convolution (one input and one output
    /// channel per group, groups a multiple of 4): groups of four channels
    /// with diagonal 4 × 4 weights. Quads of channels then hold four real
    /// channels instead of one and three zeros, so the packed input is not four
    /// times the input, and each load feeds four times the useful work (the
    /// zeros off the diagonal are multiplied all the same).
    pub(super) fn folded(self) -> Geometry {
        if self.cig == 1 && self.cog == 1 && self.groups.is_multiple_of(4) {
            Geometry {
                groups: self.groups / 4,
                cig: 4,
                cog: 4,
                diagonal: true,
                ..self
            }
        } else {
            self
        }
    }

    /// Input channels per group of the weight tensor itself.
    pub(super) fn weight_cig(&self) -> usize {
        if self.diagonal {
            1
        } else {
            self.cig
        }
    }

    pub(super) fn taps(&self) -> usize {
        self.kh * self.kw
    }

    pub(super) fn out_shape(&self) -> Vec<usize> {
        vec![self.n, self.cout, self.hout, self.wout]
    }

    pub(super) fn weight_shape(&self) -> Vec<usize> {
        vec![self.cout, self.weight_cig(), self.kh, self.kw]
    }
}

pub(super) fn geometry(op: &str, x: &[usize], w: &[usize], args: &Conv2dArgs) -> Result<Geometry> {
    if x.len() != 4 || w.len() != 4 {
        return Err(Error::Shape(format!(
            "{op}: input {x:?} must be [N, C, H, W] and weight {w:?} [Cout, Cin/groups, KH, KW]"
        )));
    }
    if x.contains(&0) || w.contains(&0) {
        return Err(Error::Shape(format!(
            "{op}: input {x:?} and weight {w:?} must have no zero-sized dimension"
        )));
    }
    let Conv2dArgs {
        stride,
        padding,
        dilation,
        groups,
    } = *args;
    if stride.contains(&0) || dilation.contains(&0) || groups == 0 {
        return Err(Error::InvalidArgument(format!(
            "{op}: stride {stride:?}, dilation {dilation:?} and groups {groups} must be at least 1 \
             (input {x:?}, weight {w:?})"
        )));
    }
    let (n, cin, h, wd) = (x[0], x[1], x[2], x[3]);
    let (cout, cig, kh, kw) = (w[0], w[1], w[2], w[3]);
    if cin % groups != 0 || cout % groups != 0 {
        return Err(Error::InvalidArgument(format!(
            "{op}: groups = {groups} must divide the input channels ({cin}, input {x:?}) and the \
             output channels ({cout}, weight {w:?})"
        )));
    }
    if cig != cin / groups {
        return Err(Error::Shape(format!(
            "{op}: weight {w:?} expects {cig} input channels per group, but input {x:?} has \
             {cin} channels in {groups} group(s), {} per group",
            cin / groups
        )));
    }
    // The dilated kernel spans d·(k − 1) + 1 pixels; it must fit the padded input.
    let span = [dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1];
    let padded = [h + 2 * padding[0], wd + 2 * padding[1]];
    if span[0] > padded[0] || span[1] > padded[1] {
        return Err(Error::Shape(format!(
            "{op}: kernel {w:?} spans {}×{} pixels (dilation {dilation:?}), more than the padded \
             input's {}×{} (input {x:?}, padding {padding:?})",
            span[0], span[1], padded[0], padded[1]
        )));
    }
    Ok(Geometry {
        n,
        cin,
        h,
        w: wd,
        cout,
        kh,
        kw,
        hout: (padded[0] - span[0]) / stride[0] + 1,
        wout: (padded[1] - span[1]) / stride[1] + 1,
        groups,
        cig,
        cog: cout / groups,
        diagonal: false,
        args: *args,
    })
}

pub(super) fn check_grad_out(op: &str, grad_out: &Tensor, geo: &Geometry) -> Result<()> {
    let want = geo.out_shape();
    if grad_out.shape() != want {
        return Err(Error::Shape(format!(
            "{op}: grad_out {:?} must be the convolution's output shape {want:?} (input [{}, {}, \
             {}, {}], weight {:?})",
            grad_out.shape(),
            geo.n,
            geo.cin,
            geo.h,
            geo.w,
            geo.weight_shape()
        )));
    }
    Ok(())
}
