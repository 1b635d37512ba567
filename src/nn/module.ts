/**
 * The module system: named parameters, buffers and children with
 * PyTorch-style dotted names (`layers.3.weight`), train/eval modes, and
 * state loading and saving.
 *
 * @module
 */
import { readSafetensors, writeSafetensors, type NamedArray } from '../io'
import { Tensor } from '../tensor'

/**
 * One weighted operation seen during a profiled forward: the layer, its
 * input, and the multiply–accumulates of the equivalent ANN operation over
 * the whole (possibly time-merged) batch.
 */
export interface OpRecord {
  module: Module
  kind: 'conv' | 'linear' | 'gate'
  input: Tensor
  /** MACs over the whole batch and every time step the operation runs. */
  macs: number
  /**
   * Time steps the operation runs (T inside the spiking part, where
   * `MultiStep` layers merge T into the batch; 1 after the mean
   * over T). Filled in from the enclosing {@link overTime} when left out.
   */
  timeSteps?: number
  /** The input is real-valued by construction (attention summaries, gates), whatever produced it. */
  realInput?: boolean
}

/** Draws a parameter's initial value from a seed; the layer fixes its shape and distribution. */
export type ParameterInit = (seed: number) => Tensor

/** FNV-1a over the UTF-16 code units of `text` from `basis`, then Murmur3's finaliser. */
function hash32(text: string, basis: number): number {
  let h = basis >>> 0
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0
  return (h ^ (h >>> 16)) >>> 0
}

/**
 * The initialisation seed of parameter `name` (its dotted name) in a model
 * seeded with `seed`: a stable 53-bit hash of both. Distinct names or seeds
 * give unrelated random streams, so no two parameters of one model, nor of
 * two models with different seeds, start from the same random numbers (as
 * consecutive per-layer seeds did when a layer drew from seed + 1).
 */
export function parameterSeed(seed: number, name: string): number {
  const key = `${seed}/${name}`
  return (hash32(key, 0x811c9dc5) & 0x1fffff) * 2 ** 32 + hash32(key, 0x050c5d1f)
}

interface Profiler {
  onOp: (record: OpRecord & { timeSteps: number }) => void
  onSpikes: ((spikes: Tensor) => void) | undefined
}

let profiler: Profiler | null = null
let stepsInBatch = 1

/**
 * Runs `fn` with `onOp` called for every weighted operation (conv, linear,
 * attention gate) executed inside it, and `onSpikes` for every spike train a
 * spiking neuron layer emits. Used by energy accounting, which calls a layer
 * spike-fed when its input is (a view of) such a spike train.
 */
export function profile<T>(onOp: (record: OpRecord & { timeSteps: number }) => void, fn: () => T, onSpikes?: (spikes: Tensor) => void): T {
  const previous = profiler
  profiler = { onOp, onSpikes }
  try {
    return fn()
  } finally {
    profiler = previous
  }
}

/** Reports an operation to the active profiler, if any (layers call this). */
export function recordOp(record: OpRecord): void {
  profiler?.onOp({ ...record, timeSteps: record.timeSteps ?? stepsInBatch })
}

/** Reports a spike train (binary `[T, …]` output of a spiking neuron layer) to the active profiler. */
export function recordSpikes(spikes: Tensor): void {
  profiler?.onSpikes?.(spikes)
}

/**
 * Runs `fn` on a batch that merges `timeSteps` time steps (`[T·B, …]`):
 * operations recorded inside run `timeSteps` times per image.
 */
export function overTime<T>(timeSteps: number, fn: () => T): T {
  const previous = stepsInBatch
  stepsInBatch = timeSteps
  try {
    return fn()
  } finally {
    stepsInBatch = previous
  }
}

/**
 * Base class of every layer and model. Subclasses register their parameters,
 * buffers and children in the constructor and implement `forward`.
 *
 * @example
 * ```ts
 * // A residual block of two convolutions; its weights are named `a.weight`, `b.bias`, …
 * class Residual extends Module {
 *   readonly a = this.registerModule('a', new Conv2d(8, 8, 3, { padding: 1 }))
 *   readonly b = this.registerModule('b', new Conv2d(8, 8, 3, { padding: 1 }))
 *   forward(x: Tensor): Tensor {
 *     return scope(() => x.add(this.b.forward(this.a.forward(x).relu())))
 *   }
 * }
 * const block = new Residual().initParameters(7)
 * block.forward(Tensor.rand([1, 8, 16, 16])).shape // [1, 8, 16, 16]
 * block.numParameters() // 1168
 * ```
 */
export abstract class Module {
  /** Training mode (batch statistics, dropout) or evaluation mode. */
  training = true
  readonly #params = new Map<string, Tensor>()
  readonly #buffers = new Map<string, Tensor>()
  readonly #children = new Map<string, Module>()
  /** How each randomly initialised parameter of this module is drawn. */
  readonly #inits = new Map<string, ParameterInit>()

  /** The module's output for `x`; every layer and model implements it. */
  abstract forward(x: Tensor): Tensor

  /** Registers `value` as a trainable parameter called `name` and returns it. */
  protected registerParameter(name: string, value: Tensor): Tensor {
    const p = value.requiresGrad ? value : value.toParam()
    if (p !== value) value.dispose()
    this.#params.set(name, p)
    return p
  }

  /**
   * Registers a randomly initialised parameter: drawn now by `init` from
   * {@link parameterSeed}(seed, name), and again under its full dotted name
   * by {@link Module.initParameters}.
   */
  protected registerRandomParameter(name: string, seed: number, init: ParameterInit): Tensor {
    this.#inits.set(name, init)
    return this.registerParameter(name, init(parameterSeed(seed, name)))
  }

  /**
   * Re-draws every randomly initialised parameter here and in every child,
   * each from {@link parameterSeed}(seed, its dotted name below this module).
   * A model calls this at the end of its constructor with its seed; constant
   * initialisations (batch norm, zeroed outputs) are left alone.
   */
  initParameters(seed: number): this {
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, init] of m.#inits) {
        const value = init(parameterSeed(seed, prefix ? `${prefix}.${name}` : name))
        m.#params.get(name)!.assign(value)
        value.dispose()
      }
    }
    return this
  }

  /** Registers non-trainable state (running statistics) saved with the model. */
  protected registerBuffer(name: string, value: Tensor): Tensor {
    this.#buffers.set(name, value)
    return value
  }

  /** Registers a child module; its names are prefixed with `name.`. */
  protected registerModule<M extends Module>(name: string, module: M): M {
    this.#children.set(name, module)
    return module
  }

  /** Every parameter with its dotted name, depth first in registration order. */
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [...this.#params].map(([n, p]) => [prefix + n, p])
    for (const [n, c] of this.#children) out.push(...c.namedParameters(`${prefix}${n}.`))
    return out
  }

  /** Every buffer with its dotted name. */
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [...this.#buffers].map(([n, b]) => [prefix + n, b])
    for (const [n, c] of this.#children) out.push(...c.namedBuffers(`${prefix}${n}.`))
    return out
  }

  /** Every child module with its dotted name (this module first, as ''). */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix.replace(/\.$/, ''), this]]
    for (const [n, c] of this.#children) out.push(...c.namedModules(`${prefix}${n}.`))
    return out
  }

  /** Every parameter, in the order of {@link Module.namedParameters}. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, p]) => p)
  }

  /** Number of trainable scalars. */
  numParameters(): number {
    return this.parameters().reduce((s, p) => s + p.size, 0)
  }

  /** Sets training mode here and in every child. */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode
    return this
  }

  /** Evaluation mode: `train(false)`. */
  eval(): this {
    return this.train(false)
  }

  /** Parameters and buffers by dotted name. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()])
  }

  /**
   * Copies values into the parameters and buffers in place. Unknown names,
   * missing names and wrong shapes are errors that list every offender; with
   * `strict: false` unknown and missing names are allowed (shapes still must match).
   */
  loadStateDict(arrays: readonly NamedArray[], options: { strict?: boolean } = {}): void {
    const strict = options.strict ?? true
    const state = this.stateDict()
    const given = new Map(arrays.map((a) => [a.name, a]))
    const unknown = [...given.keys()].filter((n) => !state.has(n))
    const missing = [...state.keys()].filter((n) => !given.has(n))
    const badShape = [...given.values()]
      .filter((a) => state.has(a.name) && state.get(a.name)!.shape.join(',') !== a.shape.join(','))
      .map((a) => `${a.name}: file [${a.shape.join(', ')}] vs model [${state.get(a.name)!.shape.join(', ')}]`)
    const problems: string[] = []
    if (badShape.length) problems.push(`wrong shapes: ${badShape.join('; ')}`)
    if (strict && unknown.length) problems.push(`unknown names: ${unknown.join(', ')}`)
    if (strict && missing.length) problems.push(`missing names: ${missing.join(', ')}`)
    if (problems.length) throw new Error(`loadStateDict: ${problems.join(' | ')}`)
    for (const [name, t] of state) {
      const a = given.get(name)
      if (!a) continue
      const src = Tensor.fromData(a.data, a.shape)
      t.assign(src)
      src.dispose()
    }
  }

  /** Loads parameters and buffers from a safetensors file (see {@link Module.loadStateDict}). */
  loadSafetensors(path: string, options: { strict?: boolean } = {}): Record<string, string> {
    const file = readSafetensors(path)
    this.loadStateDict(file.tensors, options)
    return file.metadata
  }

  /** Saves parameters and buffers to a safetensors file, atomically. */
  saveSafetensors(path: string, metadata: Record<string, string> = {}): void {
    writeSafetensors(path, this.stateDict(), metadata)
  }

  /** Frees every parameter and buffer. */
  dispose(): void {
    for (const [, t] of this.stateDict()) t.dispose()
  }
}
