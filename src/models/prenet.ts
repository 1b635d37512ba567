/**
 * PReNet (Ren et al., "Progressive Image Deraining Networks", CVPR 2019): one
 * small network applied for several recurrent stages, each taking the rainy
 * input beside the previous stage's estimate, with a ConvLSTM carrying state
 * from stage to stage. Parameter names match the published PyTorch weights
 * (`conv0.0.*`, `conv_i.0.*` … `conv_o.0.*`, `res_conv1.0.*` … `res_conv5.2.*`,
 * `conv.0.*`), so they load by name.
 *
 * Per stage, with h = c = 0 and x = input before the first:
 *
 *   x = ReLU(conv0([input, x]))                       6 → 32
 *   i, f, o = σ(conv_{i,f,o}([x, h])), g = tanh(conv_g([x, h]))   64 → 32 each
 *   c = f·c + i·g,  h = o·tanh(c),  x = h
 *   x = ReLU(ReLU(res_convK.2(ReLU(res_convK.0(x)))) + x)   K = 1 … 5
 *   x = conv(x) + input                                32 → 3
 *
 * @module
 */
import { Activation, Conv2d, Sequential } from '../nn/layers'
import { Module } from '../nn/module'
import { Tensor } from '../tensor'

/** Options of {@link PReNet}. */
export interface PReNetOptions {
  /** Recurrent stages (6 for the published PReNet6). */
  stages?: number
  /** Feature channels (32 published). */
  channels?: number
  seed?: number
}

/** Residual blocks per stage. */
const RES_BLOCKS = 5
/** Tap positions within a stage, in forward order. */
const STAGE_TAPS = ['conv0', 'h', ...Array.from({ length: RES_BLOCKS }, (_, j) => `res${j + 1}`)]

/**
 * The PReNet deraining network; usable as an H-KD teacher. Hint taps, all
 * `[B, channels, H, W]` at full resolution, for stage k = 1 … stages:
 * `stage{k}.conv0` (after conv0 and its ReLU), `stage{k}.h` (the ConvLSTM's
 * hidden state) and `stage{k}.res{j}` (after residual block j = 1 … 5).
 *
 * The output is the last stage's estimate, not clipped (the published test
 * script clips it to [0, 1] afterwards; PSNR and image writing clip too).
 *
 * @example
 * ```ts
 * // The published weights: PReNet.fromSafetensors('prenet_rain100l.safetensors').
 * const net = new PReNet({ stages: 2, channels: 8, seed: 1 }).eval()
 * const { output, features } = net.forwardHints(Tensor.rand([1, 3, 16, 16]), ['stage2.h'])
 * output.shape // [1, 3, 16, 16]
 * features.get('stage2.h')!.shape // [1, 8, 16, 16]
 * ```
 */
export class PReNet extends Module {
  /** Recurrent stages. */
  readonly stages: number
  /** Feature channels (of every hint tap). */
  readonly channels: number
  /** RGB in, RGB out. */
  readonly imageChannels = 3
  /** The stage's input conv over `[input, previous estimate]`, with its ReLU. */
  readonly conv0: Sequential
  /** The five residual blocks (`res_conv1` … `res_conv5`): conv, ReLU, conv, ReLU. */
  readonly resConvs: Sequential[]
  /** ConvLSTM input gate (conv and sigmoid). */
  readonly convI: Sequential
  /** ConvLSTM forget gate (conv and sigmoid). */
  readonly convF: Sequential
  /** ConvLSTM cell candidate (conv and tanh). */
  readonly convG: Sequential
  /** ConvLSTM output gate (conv and sigmoid). */
  readonly convO: Sequential
  /** The output conv to the 3-channel residual added to the input. */
  readonly conv: Sequential

  constructor(options: PReNetOptions = {}) {
    super()
    this.stages = options.stages ?? 6
    const c = (this.channels = options.channels ?? 32)
    if (!Number.isInteger(this.stages) || this.stages < 1) throw new Error(`PReNet: stages must be an integer ≥ 1, got ${this.stages}`)
    if (!Number.isInteger(c) || c < 1) throw new Error(`PReNet: channels must be an integer ≥ 1, got ${c}`)
    const seed = options.seed ?? 0
    const conv = (inC: number, outC: number) => new Conv2d(inC, outC, 3, { padding: 1, seed })
    // Registered in the source's order, so parameters list as in its state dict.
    this.conv0 = this.registerModule('conv0', new Sequential(conv(2 * this.imageChannels, c), new Activation('relu')))
    this.resConvs = Array.from({ length: RES_BLOCKS }, (_, j) =>
      this.registerModule(`res_conv${j + 1}`, new Sequential(conv(c, c), new Activation('relu'), conv(c, c), new Activation('relu'))),
    )
    this.convI = this.registerModule('conv_i', new Sequential(conv(2 * c, c), new Activation('sigmoid')))
    this.convF = this.registerModule('conv_f', new Sequential(conv(2 * c, c), new Activation('sigmoid')))
    this.convG = this.registerModule('conv_g', new Sequential(conv(2 * c, c), new Activation('tanh')))
    this.convO = this.registerModule('conv_o', new Sequential(conv(2 * c, c), new Activation('sigmoid')))
    this.conv = this.registerModule('conv', new Sequential(conv(c, this.imageChannels)))
    // Each parameter from (seed, its name): no two layers share random numbers.
    this.initParameters(seed)
  }

  /** A PReNet with the published weights of a safetensors file (names as in the PyTorch state dict). */
  static fromSafetensors(path: string, options: PReNetOptions = {}): PReNet {
    const model = new PReNet(options)
    try {
      model.loadSafetensors(path)
    } catch (e) {
      model.dispose()
      throw new Error(`PReNet weights '${path}': ${e instanceof Error ? e.message : String(e)}`)
    }
    return model.eval()
  }

  /** The derained image of a rainy `[B, 3, H, W]` one in [0, 1] (not clipped). */
  forward(x: Tensor): Tensor {
    return this.#run(x, new Set(), Infinity).output!
  }

  /** Every hint tap name, in forward order. */
  tapNames(): string[] {
    return Array.from({ length: this.stages }, (_, k) => STAGE_TAPS.map((t) => `stage${k + 1}.${t}`)).flat()
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
    return { output: output!, features: this.#byName(taps, index, features) }
  }

  /** The features at `taps` only: stages and blocks past the deepest tap are not run. */
  forwardFeatures(x: Tensor, taps: readonly string[]): Map<string, Tensor> {
    const index = this.#tapIndex(taps)
    if (index.length === 0) return new Map()
    const { output, features } = this.#run(x, new Set(index), Math.max(...index))
    output?.dispose()
    return this.#byName(taps, index, features)
  }

  /** Tap names to their positions in forward order (stage-major). */
  #tapIndex(taps: readonly string[]): number[] {
    return taps.map((t) => {
      const m = /^stage(\d+)\.(.+)$/.exec(t)
      const k = m ? Number(m[1]) : NaN
      const pos = m ? STAGE_TAPS.indexOf(m[2]!) : -1
      if (!(k >= 1 && k <= this.stages) || pos < 0) {
        throw new Error(`PReNet: unknown hint tap '${t}' (stage{k}.conv0, stage{k}.h, stage{k}.res1 … stage{k}.res${RES_BLOCKS}, k = 1 … ${this.stages})`)
      }
      return (k - 1) * STAGE_TAPS.length + pos
    })
  }

  /** The features by tap name (a name asked twice is one entry). */
  #byName(taps: readonly string[], index: number[], features: Map<number, Tensor>): Map<string, Tensor> {
    const out = new Map<string, Tensor>()
    taps.forEach((t, j) => {
      if (!out.has(t)) out.set(t, features.get(index[j]!)!)
    })
    return out
  }

  /**
   * Runs the stages, keeping views of the features at positions `wanted`;
   * stops after position `last` (output null then), else returns the last
   * stage's estimate. Everything else is freed as soon as it is consumed, so
   * memory holds one stage's activations and the recurrent state.
   */
  #run(input: Tensor, wanted: ReadonlySet<number>, last: number): { output: Tensor | null; features: Map<number, Tensor> } {
    const [n, ch, height, width] = input.shape
    if (input.shape.length !== 4 || ch !== this.imageChannels) {
      throw new Error(`PReNet: expected an RGB batch [B, 3, H, W], got [${input.shape.join(', ')}]`)
    }
    const c = this.channels
    const features = new Map<number, Tensor>()
    let x = input
    let h = Tensor.zeros([n!, c, height!, width!])
    let cell = Tensor.zeros([n!, c, height!, width!])
    const tmp: Tensor[] = []
    const k = (t: Tensor) => (tmp.push(t), t)
    const free = () => {
      for (const t of tmp.splice(0)) t.dispose()
    }
    let done = false
    /** Keeps a view of `t` at `pos` if wanted; true once the deepest wanted tap is reached. */
    const tap = (pos: number, t: Tensor): boolean => {
      if (wanted.has(pos) && !features.has(pos)) features.set(pos, t.reshape(t.shape))
      done = pos >= last
      return done
    }
    try {
      for (let s = 0; s < this.stages && !done; s++) {
        const base = s * STAGE_TAPS.length
        const f0 = k(this.conv0.forward(k(Tensor.concat([input, x], 1))))
        if (tap(base, f0)) break
        const z = k(Tensor.concat([f0, h], 1))
        const gi = k(this.convI.forward(z))
        const gf = k(this.convF.forward(z))
        const gg = k(this.convG.forward(z))
        const go = k(this.convO.forward(z))
        const nextCell = k(gf.mul(cell)).add(k(gi.mul(gg)))
        const nextH = go.mul(k(nextCell.tanh()))
        k(cell)
        k(h)
        cell = nextCell
        h = nextH
        if (tap(base + 1, h)) break
        let r = h
        for (let j = 0; j < RES_BLOCKS; j++) {
          const y = k(this.resConvs[j]!.forward(r))
          const next = k(y.add(r)).relu()
          if (r !== h) k(r)
          r = next
          if (tap(base + 2 + j, r)) break
        }
        if (r !== h) k(r)
        if (done) break
        const next = k(this.conv.forward(r)).add(input)
        if (x !== input) k(x)
        x = next
        free()
      }
    } finally {
      free()
      h.dispose()
      cell.dispose()
    }
    if (done) {
      if (x !== input) x.dispose()
      return { output: null, features }
    }
    return { output: x, features }
  }
}
