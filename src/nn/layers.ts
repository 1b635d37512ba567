/**
 * Standard layers: convolution, normalisation, activations, containers.
 * Weights are initialised as PyTorch does, from an explicit seed mixed with
 * the parameter's name (`parameterSeed` in module.ts).
 *
 * @module
 */
import { Tensor } from '../tensor'
import { Module, recordOp } from './module'

/** Options of {@link Conv2d}. */
export interface Conv2dLayerOptions {
  stride?: number
  /** Defaults to `floor(kernel / 2) · dilation` ("same" size at stride 1). */
  padding?: number
  dilation?: number
  groups?: number
  bias?: boolean
  /** Seed of the initialisation; weight and bias draw from `parameterSeed(seed, name)`. */
  seed?: number
}

/**
 * 2-D convolution. Weights `[out, in/groups, k, k]` and bias are drawn from
 * U(−1/√fan_in, 1/√fan_in), PyTorch's default.
 *
 * @example
 * ```ts
 * const conv = new Conv2d(1, 16, 3, { padding: 1, seed: 1 })
 * conv.forward(Tensor.rand([2, 1, 32, 32])).shape // [2, 16, 32, 32]
 * ```
 */
export class Conv2d extends Module {
  readonly weight: Tensor
  readonly bias: Tensor | null
  readonly stride: number
  readonly padding: number
  readonly dilation: number
  readonly groups: number

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: Conv2dLayerOptions = {},
  ) {
    super()
    this.stride = options.stride ?? 1
    this.dilation = options.dilation ?? 1
    this.padding = options.padding ?? Math.floor(kernelSize / 2) * this.dilation
    this.groups = options.groups ?? 1
    if (inChannels % this.groups !== 0 || outChannels % this.groups !== 0) {
      throw new Error(`Conv2d: groups ${this.groups} must divide in (${inChannels}) and out (${outChannels}) channels`)
    }
    const seed = options.seed ?? 0
    const fanIn = (inChannels / this.groups) * kernelSize * kernelSize
    const bound = 1 / Math.sqrt(fanIn)
    const shape = [outChannels, inChannels / this.groups, kernelSize, kernelSize]
    this.weight = this.registerRandomParameter('weight', seed, (s) => Tensor.rand(shape, { seed: s, low: -bound, high: bound }))
    this.bias =
      options.bias === false ? null : this.registerRandomParameter('bias', seed, (s) => Tensor.rand([outChannels], { seed: s, low: -bound, high: bound }))
  }

  forward(x: Tensor): Tensor {
    const [n, , h, w] = x.shape
    recordOp({ module: this, kind: 'conv', input: x, macs: n! * this.macs(h!, w!) })
    return x.conv2d(this.weight, this.bias, {
      stride: this.stride,
      padding: this.padding,
      dilation: this.dilation,
      groups: this.groups,
    })
  }

  /** Multiply–accumulates of one forward on an input of `h × w` pixels (per image). */
  macs(h: number, w: number): number {
    const [oh, ow] = this.outputSize(h, w)
    return oh * ow * this.outChannels * (this.inChannels / this.groups) * this.kernelSize * this.kernelSize
  }

  /** Output height and width for an input of `h × w`. */
  outputSize(h: number, w: number): [number, number] {
    const out = (n: number) => Math.floor((n + 2 * this.padding - this.dilation * (this.kernelSize - 1) - 1) / this.stride) + 1
    return [out(h), out(w)]
  }
}

/** Options of {@link BatchNorm2d}. */
export interface BatchNormOptions {
  eps?: number
  momentum?: number
  /** Initial value of the affine weight (1 by default; tdBN uses α·V_th). */
  weightInit?: number
}

/** Batch norm over NCHW with running statistics (PyTorch semantics). */
export class BatchNorm2d extends Module {
  readonly weight: Tensor
  readonly bias: Tensor
  readonly runningMean: Tensor
  readonly runningVar: Tensor
  readonly eps: number
  readonly momentum: number

  constructor(readonly channels: number, options: BatchNormOptions = {}) {
    super()
    this.eps = options.eps ?? 1e-5
    this.momentum = options.momentum ?? 0.1
    this.weight = this.registerParameter('weight', Tensor.full([channels], options.weightInit ?? 1))
    this.bias = this.registerParameter('bias', Tensor.zeros([channels]))
    this.runningMean = this.registerBuffer('running_mean', Tensor.zeros([channels]))
    this.runningVar = this.registerBuffer('running_var', Tensor.ones([channels]))
  }

  forward(x: Tensor): Tensor {
    return x.batchNorm(this.weight, this.bias, {
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training: this.training,
      momentum: this.momentum,
      eps: this.eps,
    })
  }
}

/** Layer norm over the channels of NCHW at each pixel. */
export class LayerNorm2d extends Module {
  readonly weight: Tensor
  readonly bias: Tensor

  constructor(readonly channels: number, readonly eps = 1e-5) {
    super()
    this.weight = this.registerParameter('weight', Tensor.ones([channels]))
    this.bias = this.registerParameter('bias', Tensor.zeros([channels]))
  }

  forward(x: Tensor): Tensor {
    return x.layerNorm(this.weight, this.bias, this.eps)
  }
}

/** An activation as a module. */
export class Activation extends Module {
  constructor(readonly kind: 'relu' | 'leakyRelu' | 'gelu' | 'sigmoid' | 'tanh' | 'identity', readonly slope = 0.01) {
    super()
  }

  forward(x: Tensor): Tensor {
    switch (this.kind) {
      case 'relu':
        return x.relu()
      case 'leakyRelu':
        return x.leakyRelu(this.slope)
      case 'gelu':
        return x.gelu()
      case 'sigmoid':
        return x.sigmoid()
      case 'tanh':
        return x.tanh()
      case 'identity':
        return x
    }
  }
}

/**
 * Modules applied in order; children are named `0`, `1`, …
 *
 * @example
 * ```ts
 * const net = new Sequential(new Conv2d(1, 8, 3, { padding: 1 }), new Activation('relu'), new Conv2d(8, 1, 3, { padding: 1 }))
 * net.forward(Tensor.rand([1, 1, 16, 16])).shape // [1, 1, 16, 16]
 * net.namedParameters().map(([name]) => name) // ['0.weight', '0.bias', '2.weight', '2.bias']
 * ```
 */
export class Sequential extends Module {
  readonly layers: Module[]

  constructor(...layers: Module[]) {
    super()
    this.layers = layers.map((l, i) => this.registerModule(String(i), l))
  }

  forward(x: Tensor): Tensor {
    let y = x
    for (const l of this.layers) {
      const next = l.forward(y)
      if (y !== x && next !== y) y.dispose()
      y = next
    }
    return y
  }
}

/** A list of modules named `0`, `1`, … that the owner applies itself. */
export class ModuleList<M extends Module = Module> extends Module {
  readonly items: M[]

  constructor(items: M[]) {
    super()
    this.items = items.map((m, i) => this.registerModule(String(i), m))
  }

  forward(): Tensor {
    throw new Error('ModuleList has no forward: its owner applies the items')
  }
}
