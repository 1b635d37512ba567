/**
 * Spiking building blocks (DESIGN §3): multi-step neurons (IF, LIF, PLIF)
 * with surrogate-gradient BPTT in one fused kernel each way, the multi-step
 * wrapper for stateless layers, threshold-dependent batch norm, encoders and
 * the decoder. Spike tensors are time-major `[T, B, C, H, W]`.
 *
 * @module
 */
import { noGrad, Tensor, type NeuronParams } from '../tensor'
import { BatchNorm2d } from './layers'
import { Module, overTime, recordSpikes } from './module'

/** Options of a spiking neuron layer. Defaults follow SpikingJelly's LIF. */
export interface NeuronOptions {
  /** `lif` (default), `if` (no leak) or `plif` (learnable τ, initialised to `tau`). */
  kind?: 'if' | 'lif' | 'plif'
  /** Membrane time constant (LIF; PLIF's initial value). Default 2. */
  tau?: number
  /** Firing threshold V_th. Default 1. */
  vThreshold?: number
  /** Hard reset to this potential (default 0), or `null` for soft reset (subtract V_th). */
  vReset?: number | null
  /** Whether the input is divided by τ as well as the leak. Default true. */
  decayInput?: boolean
  /** Cut the reset out of the gradient. Default false. */
  detachReset?: boolean
  /** Surrogate of the Heaviside derivative. Default `sigmoid`. */
  surrogate?: 'sigmoid' | 'atan' | 'triangle'
  /** Surrogate sharpness; defaults 4 (sigmoid), 2 (atan), 1 (triangle). */
  alpha?: number
}

const DEFAULT_ALPHA = { sigmoid: 4, atan: 2, triangle: 1 } as const

/**
 * A layer of multi-step spiking neurons over `[T, ...]` input. Each forward
 * starts from a fresh membrane (no hidden state to reset), runs all T steps
 * in one kernel and records the mean firing rate on the device.
 *
 * @example
 * ```ts
 * const lif = new SpikingNeuron({ kind: 'lif', tau: 2, vThreshold: 1 })
 * const spikes = lif.forward(directEncode(Tensor.full([1, 4], 1.5), 4)) // [T = 4, 1, 4], values 0 or 1
 * spikes.toFloat32Array() // each neuron fires at steps 2 and 4
 * lif.firingRate() // 0.5
 * ```
 */
export class SpikingNeuron extends Module {
  readonly kind: 'if' | 'lif' | 'plif'
  readonly tau: number
  readonly vThreshold: number
  readonly vReset: number | null
  readonly decayInput: boolean
  readonly detachReset: boolean
  readonly surrogate: 'sigmoid' | 'atan' | 'triangle'
  readonly alpha: number
  /** PLIF's decay parameter w, with k = 1/τ = sigmoid(w). */
  readonly w: Tensor | null
  #rate: Tensor | null = null

  constructor(options: NeuronOptions = {}) {
    super()
    this.kind = options.kind ?? 'lif'
    this.tau = options.tau ?? 2
    this.vThreshold = options.vThreshold ?? 1
    this.vReset = options.vReset === undefined ? 0 : options.vReset
    this.decayInput = options.decayInput ?? true
    this.detachReset = options.detachReset ?? false
    this.surrogate = options.surrogate ?? 'sigmoid'
    this.alpha = options.alpha ?? DEFAULT_ALPHA[this.surrogate]
    if (this.kind !== 'if' && !(this.tau > 1)) throw new Error(`SpikingNeuron: tau must be > 1, got ${this.tau}`)
    // sigmoid(w) = 1/τ  ⇔  w = −ln(τ − 1)
    this.w = this.kind === 'plif' ? this.registerParameter('w', Tensor.full([1], -Math.log(this.tau - 1))) : null
  }

  forward(x: Tensor): Tensor {
    const options: NeuronParams = {
      kind: this.kind,
      tau: this.tau,
      vThreshold: this.vThreshold,
      decayInput: this.decayInput,
      detachReset: this.detachReset,
      surrogate: this.surrogate,
      alpha: this.alpha,
    }
    // Absent vReset means soft reset.
    if (this.vReset !== null) options.vReset = this.vReset
    const spikes = x.neuron(options, this.w)
    recordSpikes(spikes)
    this.#rate?.dispose()
    this.#rate = noGrad(() => spikes.mean([...spikes.shape.keys()]))
    return spikes
  }

  /** Mean spike rate of the last forward as a `[]` tensor on the device (not read back), or null before any. */
  firingRateTensor(): Tensor | null {
    return this.#rate
  }

  /** Mean spike rate of the last forward (reads one number from the device), or null before any. */
  firingRate(): number | null {
    return this.#rate ? this.#rate.toFloat32Array()[0]! : null
  }

  override dispose(): void {
    this.#rate?.dispose()
    super.dispose()
  }
}

/**
 * Runs a stateless layer (conv, batch norm, pooling) on `[T, B, ...]` as one
 * `[T·B, ...]` batch: one dispatch for all time steps.
 *
 * @example
 * ```ts
 * const conv = new MultiStep(new Conv2d(1, 8, 3, { padding: 1 }))
 * conv.forward(Tensor.rand([4, 2, 1, 16, 16])).shape // [4, 2, 8, 16, 16]: T = 4, B = 2
 * ```
 */
export class MultiStep<M extends Module = Module> extends Module {
  readonly inner: M

  constructor(inner: M) {
    super()
    this.inner = this.registerModule('module', inner)
  }

  forward(x: Tensor): Tensor {
    const [t, b, ...rest] = x.shape
    if (t === undefined || b === undefined) throw new Error(`MultiStep: expected [T, B, ...], got [${x.shape.join(', ')}]`)
    const merged = x.reshape([t * b, ...rest])
    const y = overTime(t, () => this.inner.forward(merged))
    const out = y.reshape([t, b, ...y.shape.slice(1)])
    merged.dispose()
    y.dispose()
    return out
  }
}

/**
 * Threshold-dependent batch norm (tdBN, Zheng et al. 2021): batch norm over
 * the merged `[T·B, C, H, W]` with statistics over T·B·H·W per channel and its
 * weight initialised to α·V_th (α = 1/√2 by default).
 */
export class ThresholdDependentBatchNorm extends MultiStep<BatchNorm2d> {
  constructor(channels: number, options: { vThreshold?: number; alpha?: number; eps?: number; momentum?: number } = {}) {
    const bnOptions: { weightInit: number; eps?: number; momentum?: number } = {
      weightInit: (options.alpha ?? Math.SQRT1_2) * (options.vThreshold ?? 1),
    }
    if (options.eps !== undefined) bnOptions.eps = options.eps
    if (options.momentum !== undefined) bnOptions.momentum = options.momentum
    super(new BatchNorm2d(channels, bnOptions))
  }
}

/** Direct encoding: the image repeated T times, `[B, ...] → [T, B, ...]`. */
export function directEncode(x: Tensor, timeSteps: number): Tensor {
  const view = x.reshape([1, ...x.shape])
  const out = view.broadcastTo([timeSteps, ...x.shape])
  view.dispose()
  return out
}

/**
 * Bernoulli rate coding: at each step a pixel of intensity p ∈ [0, 1] spikes
 * with probability p. Reproducible from `seed` on every adapter.
 */
export function rateEncode(x: Tensor, timeSteps: number, seed: number): Tensor {
  return noGrad(() => {
    const u = Tensor.rand([timeSteps, ...x.shape], { seed })
    const spikes = u.less(x)
    u.dispose()
    return spikes
  })
}

/**
 * The decoder: mean over the time dimension, `[T, B, ...] → [B, ...]`.
 *
 * @example
 * ```ts
 * const spikes = rateEncode(Tensor.full([1, 1, 8, 8], 0.25), 64, 1)
 * meanOverTime(spikes).mean([0, 1, 2, 3]).toFloat32Array() // ≈ 0.25: the rate decodes the intensity
 * ```
 */
export function meanOverTime(x: Tensor): Tensor {
  return x.mean(0)
}
