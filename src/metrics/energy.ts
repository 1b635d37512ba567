/**
 * Energy accounting (DESIGN §7): the standard analytical estimate of compute
 * energy at 45 nm (Horowitz, ISSCC 2014) — not a measurement on neuromorphic
 * hardware, and memory traffic is not counted.
 *
 * Every weighted operation (conv, linear, attention gate) is recorded during
 * one forward on a real input, with the MACs of the equivalent ANN operation
 * per time step and the number of time steps T it runs (T inside the spiking
 * part, where a layer sees all steps as one [T·B] batch; 1 after the mean
 * over T). A layer is spike-fed when, by structure, its input is the spike
 * train of a spiking neuron layer (or a view of it): each spike triggers
 * accumulates, SOPs = firing rate × T × MACs per step, E = 0.9 pJ × SOPs.
 * Every other layer is fed real values and multiplies at every step it runs:
 * E = 4.6 pJ × T × MACs per step.
 *
 * @module
 */
import { profile, type Module } from '../nn/module'
import { noGrad, scope, type Tensor } from '../tensor'

/** pJ per multiply–accumulate (32-bit float, 45 nm). */
export const E_MAC = 4.6
/** pJ per accumulate (32-bit float, 45 nm). */
export const E_AC = 0.9

/** One weighted operation of the report (all counts per image). */
export interface LayerEnergy {
  /** Dotted module name (`encoder_level1.0.residual.1.module`), with `#k` for repeated calls. */
  name: string
  kind: 'conv' | 'linear' | 'gate'
  /** `spikes`: fed by a spiking neuron layer; `real`: fed real values. */
  input: 'spikes' | 'real'
  /** Mean input spike rate (per element and step) of a spike-fed layer, or null. */
  firingRate: number | null
  /** Multiply–accumulates of the equivalent ANN operation in one time step. */
  macsPerStep: number
  /** Time steps the operation runs: T inside the spiking part, 1 after the mean over T. */
  timeSteps: number
  /** MACs of the equivalent ANN operation over every step: macsPerStep × timeSteps. */
  macs: number
  /** Synaptic operations (accumulates): firingRate × macs for spike-fed layers; 0 for real ones. */
  synapticOps: number
  /** Energy in pJ: 0.9 × synapticOps (spike-fed) or 4.6 × macs (real). */
  energyPj: number
}

/** Energy of one model on one input, per image. */
export interface EnergyReport {
  layers: LayerEnergy[]
  /** MACs of every layer's equivalent ANN operation, over all its steps. */
  totalMacs: number
  /** MACs the model performs as multiplies: those of real-fed layers. */
  totalRealMacs: number
  totalSynapticOps: number
  /** Total energy per image in pJ. */
  totalPj: number
  note: string
}

/**
 * Runs `model.forward(input)` once without autograd and accounts the energy
 * of every weighted operation, per image of the batch.
 *
 * @example
 * ```ts
 * const student = new SpikerIR({ width: 8, timeSteps: 4 })
 * const r = energyReport(student, Tensor.rand([1, 1, 32, 32], { seed: 1 }))
 * r.totalPj / 1e6 // µJ per 32×32 image
 * r.layers.filter((l) => l.input === 'spikes').length // layers fed by spikes: accumulates, not MACs
 * ```
 */
export function energyReport(model: Module, input: Tensor): EnergyReport {
  const names = new Map(model.namedModules().map(([n, m]) => [m, n || '(model)']))
  const seen = new Map<string, number>()
  const batch = input.shape[0] ?? 1
  const layers: LayerEnergy[] = []
  // Spike trains emitted so far in this forward; a live one that shares an
  // operation's input buffer is that input's producer (a disposed one may
  // have handed its buffer on, so it no longer counts).
  let spikeTrains: Tensor[] = []
  scope(() =>
    noGrad(() =>
      profile(
        (op) => {
          const x = op.input
          spikeTrains = spikeTrains.filter((s) => !s.isDisposed)
          const spikes = !op.realInput && spikeTrains.some((s) => x.sharesStorage(s))
          // One readback per spike-fed operation (report mode only).
          const rate = spikes ? scope(() => x.mean([...x.shape.keys()]).toFloat32Array()[0]!) : null
          const base = names.get(op.module) ?? op.module.constructor.name
          const k = seen.get(base) ?? 0
          seen.set(base, k + 1)
          const macs = op.macs / batch
          const sops = spikes ? rate! * macs : 0
          layers.push({
            name: k === 0 ? base : `${base}#${k}`,
            kind: op.kind,
            input: spikes ? 'spikes' : 'real',
            firingRate: rate,
            macsPerStep: macs / op.timeSteps,
            timeSteps: op.timeSteps,
            macs,
            synapticOps: sops,
            energyPj: spikes ? E_AC * sops : E_MAC * macs,
          })
        },
        () => model.forward(input),
        (s) => spikeTrains.push(s),
      ),
    ),
  )
  const sum = (f: (l: LayerEnergy) => number) => layers.reduce((s, l) => s + f(l), 0)
  return {
    layers,
    totalMacs: sum((l) => l.macs),
    totalRealMacs: sum((l) => (l.input === 'real' ? l.macs : 0)),
    totalSynapticOps: sum((l) => l.synapticOps),
    totalPj: sum((l) => l.energyPj),
    note:
      'Analytical estimate of compute energy at 45 nm (Horowitz 2014: 4.6 pJ per MAC, 0.9 pJ per AC); ' +
      'memory traffic is not counted, and this is not a measurement on neuromorphic hardware.',
  }
}
