/**
 * DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", TIP 2017): a plain
 * stack of 3×3 convolutions with ReLU that predicts the noise; the output is
 * input − predicted noise. Parameter names match the published DnCNN-S
 * weights (`layers.{i}.weight`, `layers.{i}.bias`, batch norm folded in).
 *
 * @module
 */
import { Conv2d, ModuleList } from '../nn/layers'
import { Module } from '../nn/module'
import { Tensor } from '../tensor'

/** Options of {@link DnCNN}. */
export interface DnCNNOptions {
  /** Number of conv layers (17 for DnCNN-S). */
  depth?: number
  /** Feature channels. */
  channels?: number
  /** Image channels (1 grey, 3 colour). */
  imageChannels?: number
  seed?: number
}

/**
 * The DnCNN denoiser; usable as an H-KD teacher (hint taps after any layer).
 *
 * @example
 * ```ts
 * // The published DnCNN-S: DnCNN.fromSafetensors('dncnn_s_sigma25.safetensors').
 * const teacher = new DnCNN({ depth: 6, channels: 16, seed: 1 }).eval()
 * const { output, features } = teacher.forwardHints(Tensor.rand([1, 1, 32, 32]), ['layer2', 'layer4'])
 * output.shape // [1, 1, 32, 32]
 * features.get('layer4')!.shape // [1, 16, 32, 32]
 * ```
 */
export class DnCNN extends Module {
  readonly layers: ModuleList<Conv2d>
  readonly depth: number

  constructor(options: DnCNNOptions = {}) {
    super()
    this.depth = options.depth ?? 17
    const c = options.channels ?? 64
    const io = options.imageChannels ?? 1
    const seed = options.seed ?? 0
    const convs: Conv2d[] = []
    for (let i = 0; i < this.depth; i++) {
      const inC = i === 0 ? io : c
      const outC = i === this.depth - 1 ? io : c
      convs.push(new Conv2d(inC, outC, 3, { padding: 1, seed }))
    }
    this.layers = this.registerModule('layers', new ModuleList(convs))
    // Each parameter from (seed, its name): no two layers or models share random numbers.
    this.initParameters(seed)
  }

  /** A DnCNN with the published weights of a safetensors file. */
  static fromSafetensors(path: string, options: DnCNNOptions = {}): DnCNN {
    const model = new DnCNN(options)
    model.loadSafetensors(path)
    return model.eval()
  }

  forward(x: Tensor): Tensor {
    return this.forwardWithFeatures(x, []).output
  }

  /**
   * Hint taps `layer1` … `layer{depth − 1}`: the features after that conv
   * layer (1-based) and its ReLU, `[B, channels, H, W]`.
   */
  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> } {
    const index = this.#tapIndex(taps)
    const { output, features } = this.forwardWithFeatures(x, index)
    return { output, features: this.#byName(taps, index, features) }
  }

  /** The features at `taps` only, running no layer past the deepest tap. */
  forwardFeatures(x: Tensor, taps: readonly string[]): Map<string, Tensor> {
    const index = this.#tapIndex(taps)
    return this.#byName(taps, index, this.#run(x, index, Math.max(-1, ...index) + 1).features)
  }

  #tapIndex(taps: readonly string[]): number[] {
    return taps.map((t) => {
      const m = /^layer(\d+)$/.exec(t)
      const i = m ? Number(m[1]) : NaN
      if (!(i >= 1 && i < this.depth)) throw new Error(`DnCNN: unknown hint tap '${t}' (layer1 … layer${this.depth - 1})`)
      return i - 1
    })
  }

  #byName(taps: readonly string[], index: number[], features: Tensor[]): Map<string, Tensor> {
    const order = [...new Set(index)].sort((a, b) => a - b)
    return new Map(taps.map((t, j) => [t, features[order.indexOf(index[j]!)]!]))
  }

  /** Channels of a hint tap. */
  tapChannels(_tap: string): number {
    return this.layers.items[0]!.outChannels
  }

  /**
   * The denoised image and the features after the given layers (0-based,
   * after their ReLU), in layer order — the hint taps for distillation.
   */
  forwardWithFeatures(x: Tensor, taps: readonly number[]): { output: Tensor; features: Tensor[] } {
    const { last, features } = this.#run(x, taps, this.depth)
    const output = x.sub(last)
    if (!features.includes(last)) last.dispose()
    return { output, features }
  }

  /** Runs the first `layers` layers, keeping the features after the `taps`; returns the last result too. */
  #run(x: Tensor, taps: readonly number[], layers: number): { last: Tensor; features: Tensor[] } {
    const features: Tensor[] = []
    let h = x
    this.layers.items.slice(0, layers).forEach((conv, i) => {
      const z = conv.forward(h)
      const last = i === this.depth - 1
      const next = last ? z : z.relu()
      if (!last) z.dispose()
      if (h !== x && !features.includes(h)) h.dispose()
      h = next
      if (taps.includes(i)) features.push(h)
    })
    return { last: h, features }
  }
}
