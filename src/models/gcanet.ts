/**
 * GCANet (Chen et al., "Gated Context Aggregation Network for Image Dehazing
 * and Deraining", WACV 2019), the published dehazing model: an encoder of
 * three conv + instance norm + ReLU layers (the third of stride 2), six
 * smoothed dilated residual blocks and a plain one at half resolution, a gate
 * that weighs the features after blocks 3, 6 and 7, and a decoder (a
 * transposed conv back to full resolution, a conv, a 1×1 conv) predicting the
 * haze residual on the 0–255 scale. Parameter names match the published
 * PyTorch weights (`conv1.weight`, `norm1.*`, `res1.pre_conv1.weight`, …,
 * `gate.*`, `deconv3.*`, `deconv1.*`).
 *
 * @module
 */
import { ConvTranspose2d, InstanceNorm2d } from '../nn/composed'
import { Conv2d } from '../nn/layers'
import { Module, recordOp } from '../nn/module'
import { Tensor } from '../tensor'

/**
 * GCANet's "shared separable" conv: one k×k filter, shared by every channel,
 * applied depthwise with zero padding (k − 1)/2. It smooths the input of a
 * dilated conv (k = 2d − 1 for dilation d) against gridding artefacts.
 */
export class ShareSepConv extends Module {
  /** `[1, 1, k, k]`; starts as the identity (a centred 1). */
  readonly weight: Tensor

  constructor(readonly kernelSize: number) {
    super()
    if (kernelSize % 2 !== 1) throw new Error(`ShareSepConv: kernel size must be odd, got ${kernelSize}`)
    const w = new Float32Array(kernelSize * kernelSize)
    w[(kernelSize * kernelSize - 1) / 2] = 1
    this.weight = this.registerParameter('weight', Tensor.fromData(w, [1, 1, kernelSize, kernelSize]))
  }

  forward(x: Tensor): Tensor {
    const [n, c, h, w] = x.shape as [number, number, number, number]
    const k = this.kernelSize
    recordOp({ module: this, kind: 'conv', input: x, macs: n * c * h * w * k * k })
    const kernel = this.weight.broadcastTo([c, 1, k, k])
    const y = x.conv2d(kernel, null, { padding: (k - 1) / 2, groups: c })
    kernel.dispose()
    return y
  }
}

/** conv → instance norm (→ ReLU) of a residual block. */
function convNorm(x: Tensor, conv: Conv2d, norm: InstanceNorm2d, relu: boolean): Tensor {
  const z = conv.forward(x)
  const y = norm.forward(z)
  z.dispose()
  if (!relu) return y
  const r = y.relu()
  y.dispose()
  return r
}

/** A residual block, smoothed and dilated (dilation > 1) or plain: ReLU(x + IN(conv(ReLU(IN(conv(x)))))). */
export class GCAResidualBlock extends Module {
  readonly preConv1: ShareSepConv | null
  readonly conv1: Conv2d
  readonly norm1: InstanceNorm2d
  readonly preConv2: ShareSepConv | null
  readonly conv2: Conv2d
  readonly norm2: InstanceNorm2d

  constructor(
    readonly channels: number,
    readonly dilation: number,
    smoothed: boolean,
    seed: number,
  ) {
    super()
    const conv = () => new Conv2d(channels, channels, 3, { padding: dilation, dilation, bias: false, seed })
    this.preConv1 = smoothed ? this.registerModule('pre_conv1', new ShareSepConv(2 * dilation - 1)) : null
    this.conv1 = this.registerModule('conv1', conv())
    this.norm1 = this.registerModule('norm1', new InstanceNorm2d(channels))
    this.preConv2 = smoothed ? this.registerModule('pre_conv2', new ShareSepConv(2 * dilation - 1)) : null
    this.conv2 = this.registerModule('conv2', conv())
    this.norm2 = this.registerModule('norm2', new InstanceNorm2d(channels))
  }

  forward(x: Tensor): Tensor {
    const s1 = this.preConv1 ? this.preConv1.forward(x) : x
    const a = convNorm(s1, this.conv1, this.norm1, true)
    if (s1 !== x) s1.dispose()
    const s2 = this.preConv2 ? this.preConv2.forward(a) : a
    const b = convNorm(s2, this.conv2, this.norm2, false)
    if (s2 !== a) s2.dispose()
    a.dispose()
    const sum = x.add(b)
    b.dispose()
    const out = sum.relu()
    sum.dispose()
    return out
  }
}

/** Options of {@link GCANet}. */
export interface GCANetOptions {
  /** Feature channels (64 published). */
  channels?: number
  seed?: number
}

/** Hint taps in forward order. */
const TAPS = ['conv1', 'conv2', 'conv3', 'res1', 'res2', 'res3', 'res4', 'res5', 'res6', 'res7', 'gate', 'deconv3', 'deconv2'] as const
/** Dilations of the seven residual blocks (the last is plain). */
const DILATIONS = [2, 2, 2, 4, 4, 4, 1]

/**
 * The GCANet dehazer; usable as an H-KD teacher. Its `forward` takes and
 * gives RGB in [0, 1] and does the source's pre- and post-processing: input
 * `cat(255·RGB, edge map) − 128`, output `(255·RGB + predicted residual) / 255`
 * (not rounded or clipped; the source's test rounds and clips to 0..255).
 * Hint taps, all `channels` wide: `conv1`, `conv2` (full resolution),
 * `conv3`, `res1` … `res7`, `gate` (the gated sum; half resolution),
 * `deconv3`, `deconv2` (full resolution), each after its norm and ReLU.
 *
 * Instance norm makes every output pixel depend on the whole image, so an
 * image restored in tiles differs from one restored whole.
 *
 * @example
 * ```ts
 * // The published weights: GCANet.fromSafetensors('gcanet_dehaze.safetensors').
 * const net = new GCANet({ channels: 8, seed: 1 }).eval()
 * const { output, features } = net.forwardHints(Tensor.rand([1, 3, 16, 12]), ['res7'])
 * output.shape // [1, 3, 16, 12]
 * features.get('res7')!.shape // [1, 8, 8, 6]
 * ```
 */
export class GCANet extends Module {
  /** Feature channels. */
  readonly channels: number
  /** RGB in, RGB out. */
  readonly imageChannels = 3
  /** One stride-2 conv and one stride-2 transposed conv: sides must be even. */
  readonly sizeMultiple = 2
  readonly conv1: Conv2d
  readonly norm1: InstanceNorm2d
  readonly conv2: Conv2d
  readonly norm2: InstanceNorm2d
  readonly conv3: Conv2d
  readonly norm3: InstanceNorm2d
  /** `res1` … `res7`. */
  readonly blocks: GCAResidualBlock[]
  /** Three weights per pixel for the features after blocks 3, 6 and 7. */
  readonly gate: Conv2d
  readonly deconv3: ConvTranspose2d
  readonly norm4: InstanceNorm2d
  readonly deconv2: Conv2d
  readonly norm5: InstanceNorm2d
  readonly deconv1: Conv2d

  constructor(options: GCANetOptions = {}) {
    super()
    const c = (this.channels = options.channels ?? 64)
    if (!Number.isInteger(c) || c < 1) throw new Error(`GCANet: channels must be an integer ≥ 1, got ${c}`)
    const seed = options.seed ?? 0
    const conv = (name: string, inC: number, outC: number, k: number, o: { stride?: number; bias?: boolean } = {}) =>
      this.registerModule(name, new Conv2d(inC, outC, k, { padding: (k - 1) / 2, seed, bias: false, ...o }))
    const norm = (name: string) => this.registerModule(name, new InstanceNorm2d(c))
    // Registered in the source's order, so parameters list as in its state dict.
    this.conv1 = conv('conv1', this.imageChannels + 1, c, 3)
    this.norm1 = norm('norm1')
    this.conv2 = conv('conv2', c, c, 3)
    this.norm2 = norm('norm2')
    this.conv3 = conv('conv3', c, c, 3, { stride: 2 })
    this.norm3 = norm('norm3')
    this.blocks = DILATIONS.map((d, i) => this.registerModule(`res${i + 1}`, new GCAResidualBlock(c, d, i < 6, seed)))
    this.gate = conv('gate', 3 * c, 3, 3, { bias: true })
    this.deconv3 = this.registerModule('deconv3', new ConvTranspose2d(c, c, 4, { stride: 2, padding: 1, seed }))
    this.norm4 = norm('norm4')
    this.deconv2 = conv('deconv2', c, c, 3, { bias: true })
    this.norm5 = norm('norm5')
    this.deconv1 = conv('deconv1', c, this.imageChannels, 1, { bias: true })
    this.initParameters(seed)
  }

  /** A GCANet with the published weights of a safetensors file (names as in the PyTorch state dict). */
  static fromSafetensors(path: string, options: GCANetOptions = {}): GCANet {
    const model = new GCANet(options)
    try {
      model.loadSafetensors(path)
    } catch (e) {
      model.dispose()
      throw new Error(`GCANet weights '${path}': ${e instanceof Error ? e.message : String(e)}`)
    }
    return model.eval()
  }

  /** The dehazed image of a hazy `[B, 3, H, W]` one in [0, 1] (H, W even). */
  forward(x: Tensor): Tensor {
    return this.#run(x, new Set(), Infinity).output!
  }

  /** Every hint tap name, in forward order. */
  tapNames(): string[] {
    return [...TAPS]
  }

  /** Channels of a hint tap (every tap has `channels`). */
  tapChannels(tap: string): number {
    this.#tapIndex([tap])
    return this.channels
  }

  /** The output and the features at `taps` (see the class for the names). */
  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> } {
    const index = this.#tapIndex(taps)
    const { output, features } = this.#run(x, new Set(index), Infinity)
    return { output: output!, features: new Map(taps.map((t, j) => [t, features.get(index[j]!)!])) }
  }

  /** The features at `taps` only: layers past the deepest tap are not run. */
  forwardFeatures(x: Tensor, taps: readonly string[]): Map<string, Tensor> {
    const index = this.#tapIndex(taps)
    if (index.length === 0) return new Map()
    const { output, features } = this.#run(x, new Set(index), Math.max(...index))
    output?.dispose()
    return new Map(taps.map((t, j) => [t, features.get(index[j]!)!]))
  }

  #tapIndex(taps: readonly string[]): number[] {
    return taps.map((t) => {
      const i = (TAPS as readonly string[]).indexOf(t)
      if (i < 0) throw new Error(`GCANet: unknown hint tap '${t}' (${TAPS.join(', ')})`)
      return i
    })
  }

  /**
   * The source's edge map of an image on the 0–255 scale: at each pixel the
   * absolute differences to its horizontal and vertical neighbours, each
   * difference counted at both pixels it joins, summed over the channels, / 12.
   */
  static edges(x255: Tensor): Tensor {
    const [n, c, h, w] = x255.shape as [number, number, number, number]
    const tmp: Tensor[] = []
    const k = (t: Tensor) => (tmp.push(t), t)
    const both = (axis: 2 | 3, size: number) => {
      if (size < 2) return k(Tensor.zeros([n, c, h, w]))
      const rest = x255.split(axis, [1, size - 1]).map(k)[1]!
      const head = x255.split(axis, [size - 1, 1]).map(k)[0]!
      const d = k(k(rest.sub(head)).abs())
      const edge = k(Tensor.zeros(axis === 2 ? [n, c, 1, w] : [n, c, h, 1]))
      return k(k(Tensor.concat([edge, d], axis)).add(k(Tensor.concat([d, edge], axis))))
    }
    const out = k(k(both(3, w).add(both(2, h))).sum(1, true)).mul(1 / 12)
    for (const t of tmp) t.dispose()
    return out
  }

  /** Runs the network on `[B, 3, H, W]` in [0, 1], keeping the features at `wanted`; stops after `last`. */
  #run(input: Tensor, wanted: ReadonlySet<number>, last: number): { output: Tensor | null; features: Map<number, Tensor> } {
    const [, ch, h, w] = input.shape
    if (input.shape.length !== 4 || ch !== this.imageChannels) throw new Error(`GCANet: expected an RGB batch [B, 3, H, W], got [${input.shape.join(', ')}]`)
    if (h! % 2 !== 0 || w! % 2 !== 0) throw new Error(`GCANet: height and width must be even, got ${h}×${w}`)
    const features = new Map<number, Tensor>()
    const tmp: Tensor[] = []
    const k = (t: Tensor) => (tmp.push(t), t)
    /** Keeps a view of `t` at tap `i` if wanted; true once the deepest wanted tap is reached. */
    const tap = (i: number, t: Tensor): boolean => {
      if (wanted.has(i) && !features.has(i)) features.set(i, t.reshape(t.shape))
      return i >= last
    }
    const layer = (x: Tensor, conv: Conv2d | ConvTranspose2d, norm: InstanceNorm2d) => k(k(norm.forward(k(conv.forward(x)))).relu())
    try {
      const x255 = k(input.mul(255))
      const net = k(k(Tensor.concat([x255, k(GCANet.edges(x255))], 1)).sub(128))
      const y0 = layer(net, this.conv1, this.norm1)
      if (tap(0, y0)) return { output: null, features }
      const y00 = layer(y0, this.conv2, this.norm2)
      if (tap(1, y00)) return { output: null, features }
      const y1 = layer(y00, this.conv3, this.norm3)
      if (tap(2, y1)) return { output: null, features }
      let y = y1
      const kept: Tensor[] = []
      for (let i = 0; i < this.blocks.length; i++) {
        y = k(this.blocks[i]!.forward(y))
        if (i === 3 || i === 6) kept.push(y)
        if (tap(3 + i, y)) return { output: null, features }
      }
      const [y2, y3] = kept as [Tensor, Tensor]
      const gates = k(this.gate.forward(k(Tensor.concat([y1, y2, y3], 1))))
      const [g1, g2, g3] = gates.split(1, [1, 1, 1]).map(k) as [Tensor, Tensor, Tensor]
      const gated = k(k(k(y1.mul(g1)).add(k(y2.mul(g2)))).add(k(y3.mul(g3))))
      if (tap(10, gated)) return { output: null, features }
      const d3 = layer(gated, this.deconv3, this.norm4)
      if (tap(11, d3)) return { output: null, features }
      const d2 = layer(d3, this.deconv2, this.norm5)
      if (tap(12, d2)) return { output: null, features }
      const residual = k(this.deconv1.forward(d2))
      return { output: k(x255.add(residual)).div(255), features }
    } finally {
      for (const t of tmp) t.dispose()
    }
  }
}
