/**
 * `npm run bench -- layers [--limit REPS]`: best-of-REPS wall times (default
 * 12) of the small student's pieces that the CPU work of 2026-12-08 changed,
 * each after two warm-up calls, on the current device:
 * - the LIF layer (the student's neuron) forward + backward at its three
 *   level shapes;
 * - the multi-dimensional attention forward + backward at the three level
 *   shapes, and per small step (2 + 2 + 4 blocks);
 * - the mean over C, H, W of the level-1 tensor, forward + backward;
 * - the weight gradient of the 3×3 layers the Winograd path takes (32
 *   images, as T·B of a step): forward + backward with only the weight
 *   requiring a gradient, less the forward alone.
 * Timings of one build mean little on a shared machine: to compare two
 * builds, run this on each, alternately, several times.
 *
 * @module
 */
import { MultiDimensionalAttention, STUDENT_NEURON, SpikingNeuron, Tensor, info, noGrad, scope, synchronize, zeroGrad } from '../index'
import type { BenchArgs } from './run'

const LEVELS: [number, number, number, number, number][] = [
  [4, 8, 16, 64, 64],
  [4, 8, 32, 32, 32],
  [4, 8, 64, 16, 16],
]
/** Attention blocks per level in a small student's step (encoder and decoder). */
const BLOCKS = [2, 2, 4]
/** Weight-gradient cases: input shape and weight shape (3×3, padding 1). */
const WEIGHT_GRADS: [number[], number[]][] = [
  [[32, 16, 64, 64], [16, 16, 3, 3]],
  [[32, 32, 64, 64], [32, 32, 3, 3]],
  [[32, 32, 64, 64], [16, 32, 3, 3]],
  [[32, 32, 32, 32], [32, 32, 3, 3]],
  [[32, 64, 16, 16], [64, 64, 3, 3]],
]

/** Best wall time of `reps` calls, in ms, after two warm-up calls. */
function best(fn: () => void, reps: number): number {
  fn()
  fn()
  synchronize()
  let min = Infinity
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint()
    fn()
    synchronize()
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e6)
  }
  return min
}

export function run(args: BenchArgs): Record<string, unknown> {
  const reps = args.limit ?? 12
  const rows: { case: string; ms: number }[] = []
  const add = (name: string, ms: number) => {
    rows.push({ case: name, ms })
    if (!args.json) console.log(`${name.padEnd(52)} ${ms.toFixed(2)} ms`)
  }
  if (!args.json) console.log(`${info().adapterName}, best of ${reps}`)
  const all = [0, 1, 2, 3, 4] as const
  const neuron = new SpikingNeuron(STUDENT_NEURON)
  for (const shape of LEVELS) {
    const x = Tensor.randn(shape, { seed: 1, std: 0.3 }).toParam()
    add(`LIF fwd+bwd ${shape.join('×')}`, best(() => scope(() => { neuron.forward(x).sum([...all]).backward(); zeroGrad() }), reps))
    x.dispose()
  }
  let perStep = 0
  LEVELS.forEach((shape, i) => {
    const attn = new MultiDimensionalAttention(shape[0], shape[2], { seed: 1 })
    const x = Tensor.rand(shape, { seed: 2 }).toParam()
    const ms = best(() => scope(() => { attn.forward(x).mean([...all]).backward(); zeroGrad() }), reps)
    add(`attention fwd+bwd ${shape.join('×')}`, ms)
    perStep += BLOCKS[i]! * ms
    x.dispose()
  })
  add('attention per small step (2 + 2 + 4 blocks)', perStep)
  {
    const x = Tensor.rand(LEVELS[0]!, { seed: 3 }).toParam()
    add(`mean over C, H, W fwd+bwd ${LEVELS[0]!.join('×')}`, best(() => scope(() => { x.mean([2, 3, 4]).sum([0, 1]).backward(); zeroGrad() }), reps))
    x.dispose()
  }
  for (const [xs, ws] of WEIGHT_GRADS) {
    const x = Tensor.randn(xs, { seed: 4 })
    const w = Tensor.randn(ws, { seed: 5, std: 0.05 }).toParam()
    const g = noGrad(() => scope(() => Tensor.ones(x.conv2d(w, null, { padding: 1 }).shape)))
    const forward = best(() => noGrad(() => scope(() => void x.conv2d(w, null, { padding: 1 }))), reps)
    const both = best(() => scope(() => { x.conv2d(w, null, { padding: 1 }).backward(g); zeroGrad() }), reps)
    add(`conv3x3 weight gradient ${ws[1]}→${ws[0]} on ${xs.join('×')}`, both - forward)
    for (const t of [x, w, g]) t.dispose()
  }
  return { bench: 'layers', device: info().adapterName, reps, rows }
}
