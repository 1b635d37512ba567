/**
 * `npm run bench -- large [--shape 1,1,H,W]`: restores one large synthetic
 * grey image (default 4000 × 3000, a 12-megapixel photo) with the bundled
 * σ = 25 student in overlapping tiles, and prints the tile side chosen for
 * the device, the time and the process's peak resident memory (goal: under
 * 2 GB for 4000 × 3000).
 *
 * @module
 */
import * as path from 'node:path'

import { Tensor, info } from '../index'
import { restore } from '../src/metrics/evaluate'
import { autoTileSide } from '../src/metrics/tiles'
import { loadModel } from '../src/models/load'
import type { BenchArgs } from './run'

export function run(args: BenchArgs): Record<string, unknown> {
  const [, , h, w] = args.shape ?? [1, 1, 3000, 4000]
  const { model } = loadModel(path.join(__dirname, '..', '..', 'weights', 'spikerir_tiny_sigma25.json'))
  // Smooth stripes plus deterministic noise, in [0, 1].
  const values = new Float32Array(h! * w!)
  let s = 12345
  for (let i = 0; i < values.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    const x = i % w!
    values[i] = Math.min(1, Math.max(0, 0.5 + 0.3 * Math.sin(x / 37) + 0.1 * (s / 2 ** 32 - 0.5)))
  }
  const image = Tensor.fromData(values, [1, 1, h!, w!])
  const tile = autoTileSide(model, 1, h!, w!)
  const t0 = process.hrtime.bigint()
  const out = restore(model, image)
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  out.dispose()
  image.dispose()
  const peakRssMiB = process.resourceUsage().maxRSS / 1024
  console.log(`${info().adapterName}: ${w} × ${h} restored in ${seconds.toFixed(1)} s with ${tile}-pixel tiles; peak RSS ${peakRssMiB.toFixed(0)} MiB (goal: under 2048 MiB)`)
  return { bench: 'large', width: w, height: h, tile, seconds, peakRssMiB }
}
