/**
 * DnCNN (Zhang et al., "Beyond a Gaussian Denoiser", TIP 2017): a plain
 * stack of 3×3 convolutions with ReLU that predicts the noise; the output is
 * input − predicted noise. Parameter names match the published weights
 * (`layers.{i}.weight`, `layers.{i}.bias`, batch norm folded in): the
 * 17-layer grey DnCNN-S, and the 20-layer DnCNN-B (grey, blind), CDnCNN-B
 * (colour, blind) and DnCNN-3 (grey: noise, JPEG, super-resolution).
 *
 * @module
 */
import { readSafetensors, type NamedArray } from '../io'
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

  /**
   * A DnCNN with the published weights of a safetensors file. Depth, feature
   * channels and image channels are read from the file's tensors (17 layers
   * for DnCNN-S, 20 for DnCNN-B, CDnCNN-B and DnCNN-3; 1 or 3 image
   * channels); `options` given must agree with them.
   */
  static fromSafetensors(path: string, options: DnCNNOptions = {}): DnCNN {
    const { tensors } = readSafetensors(path)
    const found = DnCNN.optionsOf(tensors, `DnCNN weights '${path}'`)
    for (const k of ['depth', 'channels', 'imageChannels'] as const) {
      if (options[k] !== undefined && options[k] !== found[k]) {
        throw new Error(`DnCNN weights '${path}': the file holds ${k} ${found[k]}, not ${options[k]}`)
      }
    }
    const model = new DnCNN({ ...options, ...found })
    try {
      model.loadStateDict(tensors)
    } catch (e) {
      model.dispose()
      throw e
    }
    return model.eval()
  }

  /**
   * The architecture of DnCNN weights from their tensors: depth (the number
   * of `layers.{i}.weight`, which must run 0 … depth − 1), feature channels
   * and image channels (of layer 0's `[channels, imageChannels, 3, 3]`).
   * `what` names the weights in errors.
   */
  static optionsOf(tensors: readonly NamedArray[], what: string): Required<Omit<DnCNNOptions, 'seed'>> {
    const weights = new Map<number, NamedArray>()
    for (const a of tensors) {
      const m = /^layers\.(\d+)\.weight$/.exec(a.name)
      if (m) weights.set(Number(m[1]), a)
    }
    const depth = weights.size
    if (depth < 2) {
      const others = tensors.filter((a) => !/^layers\.\d+\.weight$/.test(a.name)).map((a) => a.name)
      const holds = others.length ? `; the file holds ${others.slice(0, 3).join(', ')}${others.length > 3 ? ', …' : ''}` : ''
      throw new Error(`${what}: it has ${depth} tensors named layers.{i}.weight (a DnCNN has at least 2${holds})`)
    }
    for (let i = 0; i < depth; i++) {
      if (!weights.has(i)) throw new Error(`${what}: layers.${i}.weight is missing, but ${depth} layers are numbered up to ${Math.max(...weights.keys())}`)
    }
    const first = weights.get(0)!.shape
    if (first.length !== 4 || first[2] !== 3 || first[3] !== 3) throw new Error(`${what}: layers.0.weight is [${first.join(', ')}], not a 3×3 conv [out, in, 3, 3]`)
    const imageChannels = first[1]!
    if (imageChannels !== 1 && imageChannels !== 3) throw new Error(`${what}: layers.0.weight takes ${imageChannels} image channels; a DnCNN restores 1 (grey) or 3 (RGB)`)
    return { depth, channels: first[0]!, imageChannels }
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
