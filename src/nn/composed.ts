/**
 * Layers composed from the engine's existing ops, so their backward passes
 * are those ops' (already tested) backward passes: instance norm and the
 * transposed convolution.
 *
 * @module
 */
import { Tensor } from '../tensor'
import { Module, recordOp } from './module'

/**
 * Instance norm over NCHW (PyTorch `InstanceNorm2d(affine=True)` without
 * running statistics): each channel of each image standardised by its own
 * mean and biased variance over H×W, then scaled and shifted per channel.
 *
 * @example
 * ```ts
 * const norm = new InstanceNorm2d(4)
 * const y = norm.forward(Tensor.rand([2, 4, 8, 8], { seed: 1 }))
 * y.mean([2, 3]).toFloat32Array() // ≈ 0 for every image and channel
 * ```
 */
export class InstanceNorm2d extends Module {
  /** Per-channel scale (1 at first). */
  readonly weight: Tensor
  /** Per-channel shift (0 at first). */
  readonly bias: Tensor

  constructor(
    readonly channels: number,
    readonly eps = 1e-5,
  ) {
    super()
    this.weight = this.registerParameter('weight', Tensor.ones([channels]))
    this.bias = this.registerParameter('bias', Tensor.zeros([channels]))
  }

  forward(x: Tensor): Tensor {
    if (x.shape.length !== 4 || x.shape[1] !== this.channels) {
      throw new Error(`InstanceNorm2d: expected [N, ${this.channels}, H, W], got [${x.shape.join(', ')}]`)
    }
    const tmp: Tensor[] = []
    const k = (t: Tensor) => (tmp.push(t), t)
    const centred = k(x.sub(k(x.mean([2, 3], true))))
    const variance = k(k(centred.mul(centred)).mean([2, 3], true))
    const normed = k(centred.div(k(k(variance.add(this.eps)).sqrt())))
    const c = this.channels
    const out = k(normed.mul(k(this.weight.reshape([1, c, 1, 1])))).add(k(this.bias.reshape([1, c, 1, 1])))
    for (const t of tmp) t.dispose()
    return out
  }
}

/** Options of {@link ConvTranspose2d}. */
export interface ConvTranspose2dOptions {
  stride?: number
  padding?: number
  bias?: boolean
  /** Seed of the initialisation; weight and bias draw from `parameterSeed(seed, name)`. */
  seed?: number
}

/**
 * Transposed 2-D convolution (PyTorch `ConvTranspose2d`, groups 1, no output
 * padding), weights `[in, out, k, k]`. Computed as PyTorch defines it: the
 * input spread out with stride − 1 zeros between samples (a pixel shuffle of
 * the input beside zero channels), then an ordinary correlation with the
 * kernel flipped in space and its in/out axes swapped, at padding k − 1 − p;
 * the last stride − 1 rows and columns of that fall outside the defined output
 * size `(H − 1)·stride − 2p + k` and are dropped.
 *
 * @example
 * ```ts
 * const up = new ConvTranspose2d(8, 4, 4, { stride: 2, padding: 1, seed: 1 })
 * up.forward(Tensor.rand([1, 8, 5, 6])).shape // [1, 4, 10, 12]
 * ```
 */
export class ConvTranspose2d extends Module {
  /** `[in, out, k, k]`, PyTorch's layout. */
  readonly weight: Tensor
  readonly bias: Tensor | null
  readonly stride: number
  readonly padding: number

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    options: ConvTranspose2dOptions = {},
  ) {
    super()
    this.stride = options.stride ?? 1
    this.padding = options.padding ?? 0
    if (!Number.isInteger(this.stride) || this.stride < 1) throw new Error(`ConvTranspose2d: stride must be an integer ≥ 1, got ${this.stride}`)
    if (!Number.isInteger(this.padding) || this.padding < 0 || this.padding > kernelSize - 1) {
      throw new Error(`ConvTranspose2d: padding must be an integer in 0 … kernel − 1 = ${kernelSize - 1}, got ${this.padding}`)
    }
    const seed = options.seed ?? 0
    // PyTorch's default: fan_in from weight.size(1)·k² (the out channels, for this layout).
    const bound = 1 / Math.sqrt(outChannels * kernelSize * kernelSize)
    const shape = [inChannels, outChannels, kernelSize, kernelSize]
    this.weight = this.registerRandomParameter('weight', seed, (s) => Tensor.rand(shape, { seed: s, low: -bound, high: bound }))
    this.bias =
      options.bias === false ? null : this.registerRandomParameter('bias', seed, (s) => Tensor.rand([outChannels], { seed: s, low: -bound, high: bound }))
  }

  /** Output height and width for an input of `h × w`. */
  outputSize(h: number, w: number): [number, number] {
    const out = (n: number) => (n - 1) * this.stride - 2 * this.padding + this.kernelSize
    return [out(h), out(w)]
  }

  forward(x: Tensor): Tensor {
    const [n, c, h, w] = x.shape as [number, number, number, number]
    if (x.shape.length !== 4 || c !== this.inChannels) throw new Error(`ConvTranspose2d: expected [N, ${this.inChannels}, H, W], got [${x.shape.join(', ')}]`)
    const [oh, ow] = this.outputSize(h, w)
    if (oh < 1 || ow < 1) throw new Error(`ConvTranspose2d: input ${h}×${w} gives no output (${oh}×${ow})`)
    // MACs of the transposed conv itself (each input pixel scatters a k×k kernel), not of the zero-spread form.
    recordOp({ module: this, kind: 'conv', input: x, macs: n * h * w * this.inChannels * this.outChannels * this.kernelSize ** 2 })
    const tmp: Tensor[] = []
    const t = <T extends Tensor>(v: T) => (tmp.push(v), v)
    const s = this.stride
    const k = this.kernelSize
    try {
      let spread = x
      if (s > 1) {
        const zeros = t(Tensor.zeros([n, c, s * s - 1, h, w]))
        spread = t(t(t(Tensor.concat([t(x.reshape([n, c, 1, h, w])), zeros], 2)).reshape([n, c * s * s, h, w])).pixelShuffle(s))
      }
      const flip = (v: Tensor, axis: number) => {
        const parts = v.split(axis, Array(k).fill(1))
        tmp.push(...parts)
        return t(Tensor.concat(parts.reverse(), axis))
      }
      const kernel = k > 1 ? flip(flip(t(this.weight.permute([1, 0, 2, 3])), 2), 3) : t(this.weight.permute([1, 0, 2, 3]))
      const full = t(spread.conv2d(kernel, this.bias, { padding: k - 1 - this.padding }))
      const extra = s - 1
      if (extra === 0) return full.reshape(full.shape)
      const rows = full.split(2, [oh, extra])
      tmp.push(...rows)
      const cols = rows[0]!.split(3, [ow, extra])
      tmp.push(cols[1]!)
      return cols[0]!
    } finally {
      for (const v of tmp) v.dispose()
    }
  }
}
