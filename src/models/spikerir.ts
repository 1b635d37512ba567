/**
 * SpikerIR: the spiking U-Net student of "Bridge the Gap between SNN and ANN
 * for Image Restoration" in the ESDNet template (DESIGN §4). The image is
 * direct-encoded over T steps; encoder and decoder levels of spiking residual
 * blocks with multi-dimensional attention run on `[T, B, C, H, W]`; the
 * decoder output is averaged over T, refined by an ANN block and added to the
 * input image.
 *
 * @module
 */
import { MultiDimensionalAttention } from '../nn/attention'
import { Conv2d, ModuleList, Sequential } from '../nn/layers'
import { Module } from '../nn/module'
import { directEncode, MultiStep, SpikingNeuron, ThresholdDependentBatchNorm, type NeuronOptions } from '../nn/spiking'
import { Tensor } from '../tensor'
import type { NamedArray } from '../io'

/** Configuration of a {@link SpikerIR} student. */
export interface SpikerIRConfig {
  /** Width d: levels run at d, 2d, 4d channels. */
  width: number
  /** Residual blocks per level: encoder 1–3 then decoder 3–1. */
  blocks: [number, number, number, number, number, number]
  /** Time steps T. */
  timeSteps: number
  /** Image channels (1 grey, 3 colour). */
  imageChannels: number
  /** Neuron settings (defaults: LIF, τ = 2, V_th = 0.15, hard reset 0, decay_input false, sigmoid α = 4). */
  neuron: NeuronOptions
  /** Attention reduction ratios. */
  temporalReduction: number
  channelReduction: number
  seed: number
}

/** The student's neuron defaults (the ESDNet template the paper builds on). */
export const STUDENT_NEURON: Required<NeuronOptions> = {
  kind: 'lif',
  tau: 2,
  vThreshold: 0.15,
  vReset: 0,
  decayInput: false,
  detachReset: false,
  surrogate: 'sigmoid',
  alpha: 4,
}

/** Presets: `tiny` is the paper's ≈ 0.07 M parameters; `base` the template's d = 48. */
export const SPIKERIR_PRESETS: Record<'tiny' | 'small' | 'base', Partial<SpikerIRConfig>> = {
  tiny: { width: 8, blocks: [1, 1, 1, 1, 1, 1] },
  small: { width: 16, blocks: [1, 1, 2, 2, 1, 1] },
  base: { width: 48, blocks: [2, 2, 4, 4, 2, 2] },
}

/** The fields of `options` that are set (an explicit `undefined` does not override a default). */
function defined<T extends object>(options: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>
}

/**
 * A complete config from a preset name and overrides. A `neuron` override is
 * merged field by field into the student's defaults, so `{ kind: 'if' }`
 * keeps V_th = 0.15 and decay_input false (and the tdBN weights that follow
 * from V_th).
 */
export function spikerIRConfig(preset: keyof typeof SPIKERIR_PRESETS = 'tiny', overrides: Partial<SpikerIRConfig> = {}): SpikerIRConfig {
  const base = SPIKERIR_PRESETS[preset]
  return {
    width: 8,
    blocks: [1, 1, 1, 1, 1, 1],
    timeSteps: 4,
    imageChannels: 1,
    temporalReduction: 4,
    channelReduction: 16,
    seed: 0,
    ...defined(base),
    ...defined(overrides),
    neuron: { ...STUDENT_NEURON, ...defined(base.neuron), ...defined(overrides.neuron) },
  }
}

/**
 * LIF → conv → tdBN, the spiking unit of blocks, down- and up-sampling. The
 * conv's weights are drawn again by the owning model from its seed and their
 * full name, so layers never share random numbers.
 */
function spikingConv(cfg: SpikerIRConfig, inC: number, outC: number, k: number, stride = 1, bnScale = 1): Module[] {
  return [
    new SpikingNeuron(cfg.neuron),
    new MultiStep(new Conv2d(inC, outC, k, { stride, bias: false, seed: cfg.seed })),
    new ThresholdDependentBatchNorm(outC, { vThreshold: (cfg.neuron.vThreshold ?? 1) * bnScale }),
  ]
}

/** A spiking residual block: x + attn(residual(x) + shortcut(x)); initialised from `cfg.seed` and its parameter names. */
export class SpikingResidualBlock extends Module {
  readonly residual: Sequential
  readonly shortcut: Sequential
  readonly attn: MultiDimensionalAttention

  constructor(cfg: SpikerIRConfig, channels: number) {
    super()
    // The second BN of the residual branch starts at 0.2·V_th, as in the template.
    this.residual = this.registerModule(
      'residual',
      new Sequential(...spikingConv(cfg, channels, channels, 3), ...spikingConv(cfg, channels, channels, 3, 1, 0.2 / Math.SQRT1_2)),
    )
    this.shortcut = this.registerModule(
      'shortcut',
      new Sequential(
        new MultiStep(new Conv2d(channels, channels, 1, { bias: false, seed: cfg.seed })),
        new ThresholdDependentBatchNorm(channels, { vThreshold: cfg.neuron.vThreshold ?? 1 }),
      ),
    )
    this.attn = this.registerModule(
      'attn',
      new MultiDimensionalAttention(cfg.timeSteps, channels, {
        temporalReduction: cfg.temporalReduction,
        channelReduction: cfg.channelReduction,
        seed: cfg.seed,
      }),
    )
    this.initParameters(cfg.seed)
  }

  forward(x: Tensor): Tensor {
    const r = this.residual.forward(x)
    const s = this.shortcut.forward(x)
    const sum = r.add(s)
    const a = this.attn.forward(sum)
    const y = x.add(a)
    for (const t of [r, s, sum, a]) t.dispose()
    return y
  }
}

/** Blocks of one level, named `0`, `1`, … */
function level(cfg: SpikerIRConfig, channels: number, n: number): ModuleList<SpikingResidualBlock> {
  return new ModuleList(Array.from({ length: n }, () => new SpikingResidualBlock(cfg, channels)))
}

function runLevel(blocks: ModuleList<SpikingResidualBlock>, x: Tensor): Tensor {
  let h = x
  for (const b of blocks.items) {
    const next = b.forward(h)
    if (h !== x) h.dispose()
    h = next
  }
  return h === x ? x.reshape(x.shape) : h
}

/** ×2 bilinear up-sampling of `[T, B, C, H, W]`, then LIF → conv → tdBN. */
export class SpikingUp extends Module {
  readonly body: Sequential

  constructor(cfg: SpikerIRConfig, inC: number, outC: number) {
    super()
    this.body = this.registerModule('body', new Sequential(...spikingConv(cfg, inC, outC, 3)))
    this.initParameters(cfg.seed)
  }

  forward(x: Tensor): Tensor {
    const [t, b, c, h, w] = x.shape as [number, number, number, number, number]
    const merged = x.reshape([t * b, c, h, w])
    const up = merged.upsample2x('bilinear')
    const split = up.reshape([t, b, c, 2 * h, 2 * w])
    const y = this.body.forward(split)
    for (const v of [merged, up, split]) v.dispose()
    return y
  }
}

/**
 * The ANN refinement block on x: a = sigmoid(conv1×1(relu(conv1×1(avgpool x))))
 * (channel gate, reduction 8), t = sigmoid(conv3×3(relu(conv3×3(conv3×3 x))))
 * (C → C → C/8 → C), output (1 − t)·a + t·x.
 */
export class RefinementBlock extends Module {
  readonly gate1: Conv2d
  readonly gate2: Conv2d
  readonly conv1: Conv2d
  readonly conv2: Conv2d
  readonly conv3: Conv2d

  constructor(channels: number, seed = 0) {
    super()
    const r = Math.max(1, Math.floor(channels / 8))
    this.gate1 = this.registerModule('gate1', new Conv2d(channels, r, 1, { seed }))
    this.gate2 = this.registerModule('gate2', new Conv2d(r, channels, 1, { seed }))
    this.conv1 = this.registerModule('conv1', new Conv2d(channels, channels, 3, { seed }))
    this.conv2 = this.registerModule('conv2', new Conv2d(channels, r, 3, { seed }))
    this.conv3 = this.registerModule('conv3', new Conv2d(r, channels, 3, { seed }))
    this.initParameters(seed)
  }

  forward(x: Tensor): Tensor {
    const tmp: Tensor[] = []
    const k = (v: Tensor) => (tmp.push(v), v)
    const a = k(k(this.gate2.forward(k(k(this.gate1.forward(k(x.adaptiveAvgPool1x1()))).relu()))).sigmoid())
    const t = k(k(this.conv3.forward(k(k(this.conv2.forward(k(this.conv1.forward(x)))).relu()))).sigmoid())
    const y = k(k(t.rsub(1)).mul(a)).add(k(t.mul(x)))
    for (const v of tmp) v.dispose()
    return y
  }
}

/** Sets a conv's weight and bias to zero (identity start of a residual output). */
export function zeroInit(conv: Conv2d): void {
  const w = Tensor.zeros(conv.weight.shape)
  conv.weight.assign(w)
  w.dispose()
  if (conv.bias) {
    const b = Tensor.zeros(conv.bias.shape)
    conv.bias.assign(b)
    b.dispose()
  }
}

/** The levels of `blocks`, in its order, as the student names them. */
export const SPIKERIR_LEVELS = ['encoder_level1', 'encoder_level2', 'encoder_level3', 'decoder_level3', 'decoder_level2', 'decoder_level1'] as const

/**
 * How much of a block added by {@link SpikerIR.loadGrown} reaches its level's
 * output at first: its residual and shortcut tdBN weights are scaled by this.
 * Small, so the grown student starts where the smaller one ended; not zero,
 * because the attention's ReLU passes no gradient at exactly 0 and a block
 * that started at 0 would never learn.
 */
export const GROWN_BLOCK_SCALE = 0.01

/** Names of the student's hint taps, in forward order. */
export const SPIKERIR_TAPS = ['encoder1', 'encoder2', 'encoder3', 'decoder3', 'decoder2', 'decoder1', 'refine'] as const
/** The name of one of the student's hint taps. */
export type SpikerIRTap = (typeof SPIKERIR_TAPS)[number]

/**
 * The SpikerIR student.
 *
 * @example
 * ```ts
 * const student = new SpikerIR({ width: 8, timeSteps: 4 }) // the `tiny` preset
 * const noisy = Tensor.rand([1, 1, 32, 32], { seed: 1 })
 * student.forward(noisy).shape // [1, 1, 32, 32]: sides a multiple of 4
 * const { features } = student.forwardHints(noisy, ['encoder2'])
 * features.get('encoder2')!.shape // [1, 16, 16, 16], averaged over T
 * ```
 */
export class SpikerIR extends Module {
  readonly config: SpikerIRConfig
  /** Two stride-2 down-samplings: image sides must be multiples of 4. */
  readonly sizeMultiple = 4
  readonly patch_embed: MultiStep<Conv2d>
  readonly encoder_level1: ModuleList<SpikingResidualBlock>
  readonly down1_2: Sequential
  readonly encoder_level2: ModuleList<SpikingResidualBlock>
  readonly down2_3: Sequential
  readonly encoder_level3: ModuleList<SpikingResidualBlock>
  readonly decoder_level3: ModuleList<SpikingResidualBlock>
  readonly up3_2: SpikingUp
  readonly reduce_chan_level2: Sequential
  readonly decoder_level2: ModuleList<SpikingResidualBlock>
  readonly up2_1: SpikingUp
  readonly decoder_level1: ModuleList<SpikingResidualBlock>
  readonly refinement: RefinementBlock
  readonly output: Conv2d

  constructor(config: Partial<SpikerIRConfig> = {}) {
    super()
    const cfg = spikerIRConfig('tiny', config)
    this.config = cfg
    const d = cfg.width
    const [e1, e2, e3, d3, d2, d1] = cfg.blocks
    this.patch_embed = this.registerModule('patch_embed', new MultiStep(new Conv2d(cfg.imageChannels, d, 3, { seed: cfg.seed })))
    this.encoder_level1 = this.registerModule('encoder_level1', level(cfg, d, e1))
    this.down1_2 = this.registerModule('down1_2', new Sequential(...spikingConv(cfg, d, 2 * d, 3, 2)))
    this.encoder_level2 = this.registerModule('encoder_level2', level(cfg, 2 * d, e2))
    this.down2_3 = this.registerModule('down2_3', new Sequential(...spikingConv(cfg, 2 * d, 4 * d, 3, 2)))
    this.encoder_level3 = this.registerModule('encoder_level3', level(cfg, 4 * d, e3))
    this.decoder_level3 = this.registerModule('decoder_level3', level(cfg, 4 * d, d3))
    this.up3_2 = this.registerModule('up3_2', new SpikingUp(cfg, 4 * d, 2 * d))
    this.reduce_chan_level2 = this.registerModule('reduce_chan_level2', new Sequential(...spikingConv(cfg, 4 * d, 2 * d, 1)))
    this.decoder_level2 = this.registerModule('decoder_level2', level(cfg, 2 * d, d2))
    this.up2_1 = this.registerModule('up2_1', new SpikingUp(cfg, 2 * d, d))
    this.decoder_level1 = this.registerModule('decoder_level1', level(cfg, 2 * d, d1))
    this.refinement = this.registerModule('refinement', new RefinementBlock(2 * d, cfg.seed))
    this.output = this.registerModule('output', new Conv2d(2 * d, cfg.imageChannels, 3, { seed: cfg.seed }))
    // Every parameter from (seed, its dotted name), so no two layers share random numbers.
    this.initParameters(cfg.seed)
    // Start as the identity (output = input): the residual conv begins at
    // zero, so early training refines the image instead of first undoing a
    // random offset.
    zeroInit(this.output)
  }

  forward(x: Tensor): Tensor {
    return this.forwardWithFeatures(x, []).output
  }

  /**
   * Loads the weights of a student with fewer residual blocks per level
   * (`fromBlocks`, e.g. the `tiny` preset's) and otherwise this one's shape:
   * the deeper student continues from the shallower one instead of starting
   * over. Each level's first `fromBlocks[i]` blocks and every other layer take
   * the file's weights; the blocks beyond keep their initialisation with
   * their outputs scaled by {@link GROWN_BLOCK_SCALE}, so each starts near the
   * identity (a block adds its attention output to its input).
   */
  loadGrown(arrays: readonly NamedArray[], fromBlocks: readonly number[]): void {
    const to = this.config.blocks
    if (fromBlocks.length !== to.length || fromBlocks.some((n, i) => !Number.isInteger(n) || n < 1 || n > to[i]!)) {
      throw new Error(`SpikerIR.loadGrown: a student with blocks [${fromBlocks.join(', ')}] does not grow into one with blocks [${to.join(', ')}] (each level may only gain blocks)`)
    }
    const added = (name: string) => SPIKERIR_LEVELS.some((l, i) => name.startsWith(`${l}.`) && Number(name.slice(l.length + 1).split('.')[0]) >= fromBlocks[i]!)
    const state = this.stateDict()
    const given = new Set(arrays.map((a) => a.name))
    const unknown = [...given].filter((n) => !state.has(n) || added(n))
    const missing = [...state.keys()].filter((n) => !given.has(n) && !added(n))
    if (unknown.length || missing.length) {
      const list = (names: string[]) => (names.length > 6 ? `${names.slice(0, 6).join(', ')} … (${names.length})` : names.join(', '))
      throw new Error(`SpikerIR.loadGrown: the weights are not a student with blocks [${fromBlocks.join(', ')}]${unknown.length ? `; unexpected: ${list(unknown)}` : ''}${missing.length ? `; missing: ${list(missing)}` : ''}`)
    }
    this.loadStateDict(arrays, { strict: false })
    for (const [name, t] of state) {
      if (!added(name) || !/\.(residual\.5|shortcut\.1)\.module\.(weight|bias)$/.test(name)) continue
      const value = t.detach()
      const scaled = value.mul(GROWN_BLOCK_SCALE)
      t.assign(scaled)
      value.dispose()
      scaled.dispose()
    }
  }

  /** Hint taps by name (see {@link SPIKERIR_TAPS}); features are averaged over T. */
  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> } {
    for (const t of taps) {
      if (!(SPIKERIR_TAPS as readonly string[]).includes(t)) throw new Error(`SpikerIR: unknown hint tap '${t}' (${SPIKERIR_TAPS.join(', ')})`)
    }
    const r = this.forwardWithFeatures(x, taps as SpikerIRTap[])
    return { output: r.output, features: r.features as Map<string, Tensor> }
  }

  /** Channels of a hint tap. */
  tapChannels(tap: string): number {
    const d = this.config.width
    const channels: Record<SpikerIRTap, number> = { encoder1: d, encoder2: 2 * d, encoder3: 4 * d, decoder3: 4 * d, decoder2: 2 * d, decoder1: 2 * d, refine: 2 * d }
    const c = channels[tap as SpikerIRTap]
    if (c === undefined) throw new Error(`SpikerIR: unknown hint tap '${tap}'`)
    return c
  }

  /** Every spiking neuron layer with its name (for firing rates). */
  neurons(): [string, SpikingNeuron][] {
    return this.namedModules().filter((e): e is [string, SpikingNeuron] => e[1] instanceof SpikingNeuron)
  }

  /**
   * The restored image and the features at the requested hint taps. Spiking
   * features are averaged over T (`[B, C, H, W]`), as the hint loss compares
   * them with the teacher's.
   */
  forwardWithFeatures(x: Tensor, taps: readonly SpikerIRTap[]): { output: Tensor; features: Map<SpikerIRTap, Tensor> } {
    const [b, c, h, w] = x.shape
    if (x.shape.length !== 4 || c !== this.config.imageChannels) {
      throw new Error(`SpikerIR: expected [B, ${this.config.imageChannels}, H, W], got [${x.shape.join(', ')}]`)
    }
    if (h! % 4 !== 0 || w! % 4 !== 0) {
      throw new Error(`SpikerIR: height and width must be multiples of 4 (two down-samplings), got ${h}×${w}`)
    }
    void b
    const features = new Map<SpikerIRTap, Tensor>()
    const tmp: Tensor[] = []
    const k = (v: Tensor) => (tmp.push(v), v)
    const tap = (name: SpikerIRTap, v: Tensor) => {
      if (taps.includes(name)) features.set(name, v.shape.length === 5 ? v.mean(0) : v.reshape(v.shape))
    }
    const encoded = k(directEncode(x, this.config.timeSteps))
    const embed = k(this.patch_embed.forward(encoded))
    const enc1 = k(runLevel(this.encoder_level1, embed))
    tap('encoder1', enc1)
    const enc2 = k(runLevel(this.encoder_level2, k(this.down1_2.forward(enc1))))
    tap('encoder2', enc2)
    const enc3 = k(runLevel(this.encoder_level3, k(this.down2_3.forward(enc2))))
    tap('encoder3', enc3)
    const dec3 = k(runLevel(this.decoder_level3, enc3))
    tap('decoder3', dec3)
    const cat2 = k(Tensor.concat([k(this.up3_2.forward(dec3)), enc2], 2))
    const dec2 = k(runLevel(this.decoder_level2, k(this.reduce_chan_level2.forward(cat2))))
    tap('decoder2', dec2)
    const cat1 = k(Tensor.concat([k(this.up2_1.forward(dec2)), enc1], 2))
    const dec1 = k(runLevel(this.decoder_level1, cat1))
    tap('decoder1', dec1)
    const avg = k(dec1.mean(0))
    const refined = k(this.refinement.forward(avg))
    tap('refine', refined)
    const residual = k(this.output.forward(refined))
    const output = x.add(residual)
    for (const v of tmp) v.dispose()
    return { output, features }
  }
}
