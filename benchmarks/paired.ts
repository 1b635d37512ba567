/**
 * One scoring loop for the published restoration teachers' benches: a
 * model over the `input/` + `target/` pairs of a shared test folder, each
 * pair scored by the bench's own protocol, the per-score averages beside the
 * weights' README figures.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { info, listImages, noGrad, readImage, scope, synchronize, type Tensor } from '../index'
import type { BenchArgs } from './run'

/** What a bench scores. */
export interface PairedBench {
  name: string
  /** Test folder under ../shared/data, holding input/ and target/. */
  data: string
  /** Weights under ../shared/models. */
  weights: string
  load: (weights: string) => { forward(x: Tensor): Tensor; dispose(): void }
  /** The pair's scores by name, from the output and the target (RGB, [0, 1]) and the image's size. */
  score: (out: Float32Array, target: Float32Array, h: number, w: number) => Record<string, number>
  /** README figures by score name. */
  expected: Record<string, number>
}

/** Runs `b` (the first `--limit` pairs) and prints each pair's and the mean scores. */
export function runPaired(b: PairedBench, args: BenchArgs): Record<string, unknown> {
  const shared = path.resolve(__dirname, '..', '..', '..', 'shared')
  const dir = path.join(shared, 'data', b.data)
  const weights = path.join(shared, 'models', b.weights)
  if (!fs.existsSync(weights) || !fs.existsSync(dir)) throw new Error(`bench ${b.name}: needs ${dir} and ${weights}`)
  const device = info()
  console.log(`device: ${device.adapterName} (${device.deviceType})`)
  const inputs = listImages(path.join(dir, 'input')).slice(0, args.limit ?? Infinity)
  const targets = listImages(path.join(dir, 'target')).slice(0, inputs.length)
  const names = (files: string[]) => files.map((f) => path.basename(f)).join()
  if (names(inputs) !== names(targets)) throw new Error(`${dir}: input/ and target/ do not hold the same file names`)
  const model = b.load(weights)
  const sums: Record<string, number> = {}
  const t0 = process.hrtime.bigint()
  inputs.forEach((file, i) => {
    const r = scope(() => {
      const x = readImage(file, { channels: 3 })
      const [, , h, w] = x.shape as [number, number, number, number]
      const target = readImage(targets[i]!, { channels: 3 }).toFloat32Array()
      return b.score(noGrad(() => model.forward(x)).toFloat32Array(), target, h, w)
    })
    for (const [k, v] of Object.entries(r)) sums[k] = (sums[k] ?? 0) + v
    if (!args.json) console.log(`${path.basename(file)}: ${Object.entries(r).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`)
  })
  synchronize()
  model.dispose()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const n = inputs.length
  const all = listImages(path.join(dir, 'input')).length
  const mean = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, v / n]))
  const subset = n === all ? '' : ` — only ${n} of the ${all} pairs, so not comparable with the README figures`
  const shown = Object.entries(mean).map(([k, v]) => `${k} ${v.toFixed(3)}${b.expected[k] !== undefined ? ` (README ${b.expected[k]}, difference ${(v - b.expected[k]!).toFixed(3)})` : ''}`)
  console.log(`${b.data} (${n} pairs): ${shown.join('; ')}${subset}`)
  console.log(`${(seconds / n).toFixed(2)} s per image (reading and scoring included)`)
  return { bench: b.name, device: device.adapterName, images: n, scores: mean, expected: b.expected, secondsPerImage: seconds / n }
}
