/**
 * `npm run bench -- lif`: the fused LIF layer (forward + BPTT backward) at
 * T = 4, 8, 16 for 2^20 … 2^24 neurons (sizes over the adapter's binding
 * limit are skipped), against
 * - a plain copy kernel on the same adapter (x + 0: reads and writes each
 *   element once): effective bandwidth ratio, counting the fused kernels'
 *   compulsory traffic of 24 bytes per neuron and step (forward reads X and
 *   writes S, H; backward reads ∂L/∂S, H and writes ∂L/∂X);
 * - the same recurrence run as separate elementwise dispatches per time step
 *   (autograd through split, mul, add, heaviside with surrogate backward).
 * Only H is saved for backward: 4 bytes per neuron and step.
 *
 * @module
 */
import { Tensor, info, noGrad, scope, synchronize, zeroGrad } from '../index'
import type { BenchArgs } from './run'

const LIF = { kind: 'lif', tau: 2, vThreshold: 0.5, vReset: 0, decayInput: false, detachReset: false, surrogate: 'sigmoid', alpha: 4 } as const

function time(fn: () => void, reps: number): number {
  fn()
  synchronize()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < reps; i++) fn()
  synchronize()
  return Number(process.hrtime.bigint() - t0) / 1e9 / reps
}

/** H = V − V·k + X; S = Θ(H − V_th); V = H·(1 − S): one set of dispatches per step. */
function perStep(x: Tensor, g: Tensor, steps: number): void {
  scope(() => {
    const xs = x.split(0, new Array(steps).fill(1))
    let v = Tensor.zeros(xs[0]!.shape)
    const spikes: Tensor[] = []
    for (const xt of xs) {
      const h = v.sub(v.mul(1 / LIF.tau)).add(xt)
      const s = h.sub(LIF.vThreshold).heaviside('sigmoid', 4)
      v = h.mul(s.rsub(1))
      spikes.push(s)
    }
    Tensor.concat(spikes, 0).backward(g)
    zeroGrad()
  })
}

export function run(args: BenchArgs): Record<string, unknown> {
  const device = info()
  console.log(`device: ${device.adapterName} (${device.deviceType})`)
  const rows: Record<string, unknown>[] = []
  let copyBandwidthRatio: number | null = null
  let speedupVsPerStepT8: number | null = null
  for (const log2 of [20, 22, 24]) {
    const n = 2 ** log2
    for (const steps of [4, 8, 16]) {
      if (steps * n * 4 > Math.min(device.maxStorageBindingBytes, 2 ** 31)) continue
      const row = scope(() => {
        const x = Tensor.rand([steps, n], { seed: 1 }).toParam()
        const g = Tensor.randn([steps, n], { seed: 2 })
        const reps = args.limit ?? 3
        const copy = time(() => scope(() => noGrad(() => x.add(0))), reps)
        const fused = time(
          () =>
            scope(() => {
              x.neuron(LIF).backward(g)
              zeroGrad()
            }),
          reps,
        )
        const copyGBs = (8 * steps * n) / copy / 1e9
        const fusedGBs = (24 * steps * n) / fused / 1e9
        const perStepSeconds = steps === 8 && log2 <= 22 ? time(() => perStep(x, g, steps), 1) : null
        return { neurons: n, timeSteps: steps, copyGBs, fusedGBs, ratio: fusedGBs / copyGBs, fusedSeconds: fused, perStepSeconds }
      })
      rows.push(row)
      const speedup = row.perStepSeconds === null ? null : row.perStepSeconds / row.fusedSeconds
      console.log(
        `2^${log2} neurons, T = ${String(steps).padStart(2)}: fused fwd+bwd ${row.fusedGBs.toFixed(2)} GB/s, copy ${row.copyGBs.toFixed(2)} GB/s ` +
          `(${(100 * row.ratio).toFixed(0)} %)` +
          (speedup === null ? '' : `; ${speedup.toFixed(1)}× faster than per-step dispatches`),
      )
      copyBandwidthRatio = row.ratio
      if (speedup !== null) speedupVsPerStepT8 = speedup
    }
  }
  return {
    bench: 'lif',
    device: device.adapterName,
    rows,
    copyBandwidthRatio,
    speedupVsPerStepT8,
    savedBytesPerNeuronStep: 4,
  }
}
