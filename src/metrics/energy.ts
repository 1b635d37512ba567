/**
 * Energy accounting (DESIGN §7): the standard analytical estimate of compute
 * energy at 45 nm (Horowitz, ISSCC 2014) — not a measurement on neuromorphic
 * hardware, and memory traffic is not counted.
 *
 * Every weighted operation (conv, linear, attention gate) is recorded during
 * one forward on a real input. An operation whose input holds only 0s and 1s
 * (and is not real-valued by construction, like attention's summaries) is fed
 * with spikes: each spike triggers accumulates, E = 0.9 pJ × SOPs,
 * SOPs = firing rate × MACs (the MACs already include every time step, since
 * spike tensors run as one [T·B] batch). Any other input is real-valued:
 * E = 4.6 pJ × MACs (multiply–accumulates), for every time step it runs.
 *
 * @module
 */
import { profile, type Module } from '../nn/module'
import { noGrad, scope, type Tensor } from '../tensor'

/** pJ per multiply–accumulate (32-bit float, 45 nm). */
export const E_MAC = 4.6
/** pJ per accumulate (32-bit float, 45 nm). */
export const E_AC = 0.9

/** One weighted operation of the report. */
export interface LayerEnergy {
  /** Dotted module name (`encoder_level1.0.conv1`), with `#k` for repeated calls. */
  name: string
  kind: 'conv' | 'linear' | 'gate'
  /** `spikes` (binary input) or `real`. */
  input: 'spikes' | 'real'
  /** Mean input spike rate (per element and step), or null for real inputs. */
  firingRate: number | null
  /** Multiply–accumulates of the equivalent ANN operation, per image. */
  macs: number
  /** Synaptic operations (accumulates) per image: firingRate × MACs; 0 for real inputs. */
  synapticOps: number
  /** Energy per image in pJ. */
  energyPj: number
}

/** Energy of one model on one input. */
export interface EnergyReport {
  layers: LayerEnergy[]
  totalMacs: number
  totalSynapticOps: number
  /** Total energy per image in pJ. */
  totalPj: number
  note: string
}

/**
 * Runs `model.forward(input)` once without autograd and accounts the energy
 * of every weighted operation, per image of the batch.
 */
export function energyReport(model: Module, input: Tensor): EnergyReport {
  const names = new Map(model.namedModules().map(([n, m]) => [m, n || '(model)']))
  const seen = new Map<string, number>()
  const batch = input.shape[0] ?? 1
  const layers: LayerEnergy[] = []
  scope(() =>
    noGrad(() =>
      profile(
        (op) => {
          // Binary input ⇔ Σ |x² − x| = 0; one readback per operation (report mode only).
          const x = op.input
          const offBinary = op.realInput ? 1 : scope(() => x.mul(x).sub(x).abs().sum([...x.shape.keys()]).toFloat32Array()[0]!)
          const spikes = offBinary === 0
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
            macs,
            synapticOps: sops,
            energyPj: spikes ? E_AC * sops : E_MAC * macs,
          })
        },
        () => model.forward(input),
      ),
    ),
  )
  const sum = (f: (l: LayerEnergy) => number) => layers.reduce((s, l) => s + f(l), 0)
  return {
    layers,
    totalMacs: sum((l) => l.macs),
    totalSynapticOps: sum((l) => l.synapticOps),
    totalPj: sum((l) => l.energyPj),
    note:
      'Analytical estimate of compute energy at 45 nm (Horowitz 2014: 4.6 pJ per MAC, 0.9 pJ per AC); ' +
      'memory traffic is not counted, and this is not a measurement on neuromorphic hardware.',
  }
}
