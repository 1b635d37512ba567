/**
 * Optimizers (SGD with momentum, Adam, AdamW), learning-rate schedules with
 * warm-up, and clipping by global gradient norm. Adam's update over all
 * parameters is one native call (one fused kernel per parameter on a GPU,
 * the parameters spread over the threads on the CPU), and so is clipping;
 * state can be saved and restored.
 *
 * @module
 */
import type { NamedArray } from '../io'
import { Tensor, binding, nativeOf, noGrad } from '../tensor'

/** A parameter with a name (for checkpoints) and its tensor. */
export type NamedParameter = [string, Tensor]

/** What every optimizer offers. */
export interface Optimizer {
  /** Learning rate of the next step (a schedule sets it each step). */
  lr: number
  /** Steps taken so far. */
  readonly stepCount: number
  /** Applies one update from the parameters' current gradients. */
  step(): void
  /** Optimizer state as named arrays (moments, momentum buffers, step). */
  stateArrays(): NamedArray[]
  /** Restores state written by {@link Optimizer.stateArrays}. */
  loadStateArrays(arrays: readonly NamedArray[]): void
}

/** Options of {@link Adam}. */
export interface AdamOptions {
  lr?: number
  beta1?: number
  beta2?: number
  eps?: number
  weightDecay?: number
  /** AdamW's decoupled weight decay (true for {@link AdamW}). */
  decoupled?: boolean
}

function restore(kind: string, given: Map<string, NamedArray>, name: string, t: Tensor): void {
  const a = given.get(name)
  if (!a) throw new Error(`${kind}: optimizer state has no '${name}'`)
  if (a.shape.join(',') !== t.shape.join(',')) {
    throw new Error(`${kind}: state '${name}' has shape [${a.shape.join(', ')}], expected [${t.shape.join(', ')}]`)
  }
  const src = Tensor.fromData(a.data, a.shape)
  t.assign(src)
  src.dispose()
}

function stepOf(kind: string, given: Map<string, NamedArray>): number {
  const s = given.get('step')
  if (!s) throw new Error(`${kind}: optimizer state has no 'step'`)
  return s.data[0]!
}

/** Adam (Kingma & Ba) with L2 weight decay, or AdamW with `decoupled`. */
export class Adam implements Optimizer {
  lr: number
  readonly beta1: number
  readonly beta2: number
  readonly eps: number
  readonly weightDecay: number
  readonly decoupled: boolean
  #step = 0
  readonly #m: Tensor[]
  readonly #v: Tensor[]

  constructor(readonly params: readonly NamedParameter[], options: AdamOptions = {}) {
    this.lr = options.lr ?? 1e-3
    this.beta1 = options.beta1 ?? 0.9
    this.beta2 = options.beta2 ?? 0.999
    this.eps = options.eps ?? 1e-8
    this.weightDecay = options.weightDecay ?? 0
    this.decoupled = options.decoupled ?? false
    this.#m = params.map(([, p]) => Tensor.zeros(p.shape))
    this.#v = params.map(([, p]) => Tensor.zeros(p.shape))
  }

  get stepCount(): number {
    return this.#step
  }

  step(): void {
    this.#step++
    const options = {
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
      decoupled: this.decoupled,
    }
    // Parameters the last backward pass did not reach have no gradient and are skipped.
    binding.adamStepParams(
      this.params.map(([, p]) => nativeOf(p)),
      this.#m.map(nativeOf),
      this.#v.map(nativeOf),
      this.#step,
      options,
    )
  }

  stateArrays(): NamedArray[] {
    const out: NamedArray[] = [{ name: 'step', shape: [1], data: new Float32Array([this.#step]) }]
    this.params.forEach(([name], i) => {
      out.push({ name: `${name}.exp_avg`, shape: this.#m[i]!.shape, data: this.#m[i]!.toFloat32Array() })
      out.push({ name: `${name}.exp_avg_sq`, shape: this.#v[i]!.shape, data: this.#v[i]!.toFloat32Array() })
    })
    return out
  }

  loadStateArrays(arrays: readonly NamedArray[]): void {
    const given = new Map(arrays.map((a) => [a.name, a]))
    this.#step = stepOf('Adam', given)
    this.params.forEach(([name], i) => {
      restore('Adam', given, `${name}.exp_avg`, this.#m[i]!)
      restore('Adam', given, `${name}.exp_avg_sq`, this.#v[i]!)
    })
  }

  /** Frees the moment estimates; the parameters are left alone. */
  dispose(): void {
    for (const t of [...this.#m, ...this.#v]) t.dispose()
  }
}

/**
 * AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (default 0.01).
 *
 * @example
 * ```ts
 * const net = new Conv2d(1, 1, 3, { padding: 1 })
 * const opt = new AdamW(net.namedParameters(), { lr: 1e-2 })
 * const x = Tensor.rand([4, 1, 16, 16], { seed: 1 })
 * for (let step = 0; step < 20; step++) {
 *   scope(() => {
 *     net.forward(x).mseLoss(x).backward() // learn the identity
 *     opt.step()
 *     zeroGrad()
 *   })
 * }
 * ```
 */
export class AdamW extends Adam {
  constructor(params: readonly NamedParameter[], options: Omit<AdamOptions, 'decoupled'> = {}) {
    super(params, { weightDecay: 0.01, ...options, decoupled: true })
  }
}

/** Options of {@link SGD}. */
export interface SGDOptions {
  lr?: number
  momentum?: number
  weightDecay?: number
}

/** Stochastic gradient descent with (PyTorch-style) momentum. */
export class SGD implements Optimizer {
  lr: number
  readonly momentum: number
  readonly weightDecay: number
  #step = 0
  readonly #buffers: Tensor[]

  constructor(readonly params: readonly NamedParameter[], options: SGDOptions = {}) {
    this.lr = options.lr ?? 1e-2
    this.momentum = options.momentum ?? 0
    this.weightDecay = options.weightDecay ?? 0
    this.#buffers = this.momentum > 0 ? params.map(([, p]) => Tensor.zeros(p.shape)) : []
  }

  get stepCount(): number {
    return this.#step
  }

  step(): void {
    this.#step++
    this.params.forEach(([, p], i) => {
      const g = p.grad
      if (!g) return
      const buf = this.#buffers[i]
      binding.sgdStep(nativeOf(p), nativeOf(g), buf ? nativeOf(buf) : undefined, this.lr, this.momentum, this.weightDecay)
      g.dispose()
    })
  }

  stateArrays(): NamedArray[] {
    const out: NamedArray[] = [{ name: 'step', shape: [1], data: new Float32Array([this.#step]) }]
    this.params.forEach(([name], i) => {
      const b = this.#buffers[i]
      if (b) out.push({ name: `${name}.momentum_buffer`, shape: b.shape, data: b.toFloat32Array() })
    })
    return out
  }

  loadStateArrays(arrays: readonly NamedArray[]): void {
    const given = new Map(arrays.map((a) => [a.name, a]))
    this.#step = stepOf('SGD', given)
    this.params.forEach(([name], i) => {
      const b = this.#buffers[i]
      if (b) restore('SGD', given, `${name}.momentum_buffer`, b)
    })
  }
}

/**
 * {@link clipGradNorm} without a readback: the global norm stays on the
 * device (returned as a `[1]` tensor, before clipping) and every gradient is
 * scaled by maxNorm / max(norm + 1e-6, maxNorm), which is exactly 1 when the
 * norm is within bounds. A non-finite norm makes the gradients non-finite:
 * the caller checks the norm when it reads it.
 *
 * @example
 * ```ts
 * const w = Tensor.fromData([3, 4], [2]).toParam()
 * w.mul(w).sum(0, true).backward() // grad 2w = [6, 8], norm 10
 * const norm = clipGradNormOnDevice([w], 1)
 * norm.toFloat32Array()[0] // 10; w.grad is now [0.6, 0.8] (to 1e-6)
 * ```
 */
export function clipGradNormOnDevice(params: readonly Tensor[], maxNorm: number): Tensor {
  const grads = params.map((p) => p.grad).filter((g): g is Tensor => g !== null)
  return noGrad(() => {
    let total: Tensor | null = null
    for (const g of grads) {
      const sq = g.mul(g)
      const part = sq.reshape([sq.shape.reduce((a, b) => a * b, 1)]).sum(0, true)
      sq.dispose()
      const next: Tensor = total ? total.add(part) : part
      if (total) {
        total.dispose()
        part.dispose()
      }
      total = next
    }
    const norm = total ? total.sqrt() : Tensor.zeros([1])
    total?.dispose()
    const shifted = norm.add(1e-6)
    const bounded = shifted.maximum(maxNorm)
    const scale = bounded.rdiv(maxNorm)
    for (const t of [shifted, bounded]) t.dispose()
    for (const p of params) {
      const g = p.grad
      if (!g) continue
      const clipped = g.mul(scale)
      p.setGrad(clipped)
      clipped.dispose()
      g.dispose()
    }
    scale.dispose()
    grads.forEach((g) => g.dispose())
    return norm
  })
}

/**
 * Scales every parameter's gradient so their global L2 norm is at most
 * `maxNorm`; returns the norm before clipping. A non-finite norm (a NaN or
 * infinite loss) is an error, so a bad step never reaches the weights.
 */
export function clipGradNorm(params: readonly Tensor[], maxNorm: number): number {
  // One native call: the norm, and each gradient scaled by maxNorm / (norm + 1e-6) when above.
  const norm = binding.clipGradNormParams(params.map(nativeOf), maxNorm)
  if (!Number.isFinite(norm)) {
    throw new Error(`clipGradNorm: the gradient norm is ${norm}; the loss or a parameter is not finite`)
  }
  return norm
}
