/**
 * Energy of a model's per-layer operation counts under the two conventions
 * spiking image-restoration papers report in: a layer fed with real values
 * spends one MAC per multiply–accumulate, a layer fed with spikes one SOP
 * (synaptic accumulate) per spike and synapse. Only the price of a MAC and of
 * a SOP differs between the conventions.
 *
 * @module
 */
import type { EnergyReport, LayerEnergy } from '../metrics/energy'

/** Prices of one operation, in pJ. */
export interface EnergyConvention {
  title: string
  macPj: number
  sopPj: number
  note: string
}

/** The two conventions the report shows side by side. */
export const CONVENTIONS: readonly EnergyConvention[] = [
  { title: '45 nm CMOS', macPj: 4.6, sopPj: 0.9, note: '4.6 pJ per 32-bit float MAC, 0.9 pJ per accumulate (Horowitz, ISSCC 2014)' },
  { title: 'neuromorphic', macPj: 12.5, sopPj: 0.077, note: '12.5 pJ per MAC, 77 fJ per SOP, as the spiking-deraining papers report energy' },
]

/**
 * The operation counts of a layer, per image: MACs of a real-valued input
 * (every time step counted), SOPs of a spiking one.
 */
export function layerOps(l: LayerEnergy): { macs: number; sops: number } {
  return l.input === 'spikes' ? { macs: 0, sops: l.synapticOps } : { macs: l.macs, sops: 0 }
}

/** Energy in pJ per image of one layer under a convention. */
export function layerEnergyPj(l: LayerEnergy, c: EnergyConvention): number {
  const { macs, sops } = layerOps(l)
  return macs * c.macPj + sops * c.sopPj
}

/** Totals of a report: MACs on real inputs, SOPs on spikes, and energy (pJ) under each convention. */
export function totals(r: EnergyReport): { macs: number; sops: number; energyPj: number[] } {
  let macs = 0
  let sops = 0
  for (const l of r.layers) {
    const o = layerOps(l)
    macs += o.macs
    sops += o.sops
  }
  return { macs, sops, energyPj: CONVENTIONS.map((c) => macs * c.macPj + sops * c.sopPj) }
}
