/**
 * `npm run bench -- lkdnet`: the published LKD-Net-T on the 50 SOTS-indoor
 * pairs of ../shared, scored as the source's test script does (RGB PSNR of
 * the float output, clipped to [0, 1], whole image, no quantisation), beside
 * the figure of the weights' README: 34.66 dB (an independent NumPy
 * implementation on the same copy of the test set). Needs ../shared.
 * `--limit N` uses the first N pairs only.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { info, listImages, noGrad, psnr, readImage, scope, synchronize } from '../index'
import { LKDNet } from '../src/models/lkdnet'
import type { BenchArgs } from './run'

const EXPECTED_RGB = 34.66

export function run(args: BenchArgs): Record<string, unknown> {
  const shared = path.resolve(__dirname, '..', '..', '..', 'shared')
  const dir = path.join(shared, 'data', 'dehaze', 'sots_indoor')
  const weights = path.join(shared, 'models', 'lkdnet_t_its_dehaze.safetensors')
  if (!fs.existsSync(weights) || !fs.existsSync(dir)) throw new Error(`needs the shared SOTS-indoor pairs and LKD-Net-T weights at ${shared}`)
  const device = info()
  console.log(`device: ${device.adapterName} (${device.deviceType})`)
  const inputs = listImages(path.join(dir, 'input')).slice(0, args.limit ?? Infinity)
  const targets = listImages(path.join(dir, 'target')).slice(0, inputs.length)
  const names = (files: string[]) => files.map((f) => path.basename(f)).join()
  if (names(inputs) !== names(targets)) throw new Error(`${dir}: input/ and target/ do not hold the same file names`)
  const model = LKDNet.fromSafetensors(weights)
  let sum = 0
  const t0 = process.hrtime.bigint()
  inputs.forEach((file, i) => {
    const p = scope(() => {
      const hazy = readImage(file, { channels: 3 })
      const target = readImage(targets[i]!, { channels: 3 }).toFloat32Array()
      return psnr(noGrad(() => model.forward(hazy)).toFloat32Array(), target)
    })
    sum += p
    if (!args.json) console.log(`${path.basename(file)}: RGB ${p.toFixed(2)} dB (running mean ${(sum / (i + 1)).toFixed(3)} dB)`)
  })
  synchronize()
  model.dispose()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const n = inputs.length
  const rgb = sum / n
  const subset = n === 50 ? '' : ` — only ${n} of the 50 pairs, so not comparable with the README figure`
  console.log(`SOTS-indoor, 50-pair subset (${n} pairs): RGB PSNR ${rgb.toFixed(3)} dB (README ${EXPECTED_RGB} dB, difference ${(rgb - EXPECTED_RGB).toFixed(3)} dB)${subset}`)
  console.log(`${(seconds / n).toFixed(2)} s per image (620×460, reading and scoring included)`)
  return { bench: 'lkdnet', device: device.adapterName, images: n, psnr: { rgb }, expected: { rgb: EXPECTED_RGB }, secondsPerImage: seconds / n }
}
