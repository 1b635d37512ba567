/**
 * `npm run bench -- gcanet`: the published GCANet dehazer on the 50-pair
 * SOTS-indoor subset, scored as the source's test script saves its outputs
 * (residual added to the 0–255 input, rounded and clipped to 8 bits), RGB PSNR
 * over the full image, beside the weights' README: 29.99 dB on this subset
 * (an independent NumPy implementation; 30.23 dB published on all 500).
 * Needs ../shared. `--limit N` uses the first N pairs only.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { GCANet, info, listImages, noGrad, psnr, readImage, scope, ssim, synchronize } from '../index'
import type { BenchArgs } from './run'

const EXPECTED = { rgb: 29.99 }

export function run(args: BenchArgs): Record<string, unknown> {
  const shared = path.resolve(__dirname, '..', '..', '..', 'shared')
  const dir = path.join(shared, 'data', 'dehaze', 'sots_indoor')
  const weights = path.join(shared, 'models', 'gcanet_dehaze.safetensors')
  if (!fs.existsSync(weights) || !fs.existsSync(dir)) throw new Error(`needs the shared SOTS-indoor pairs and GCANet weights at ${shared}`)
  const device = info()
  console.log(`device: ${device.adapterName} (${device.deviceType})`)
  const inputs = listImages(path.join(dir, 'input')).slice(0, args.limit ?? Infinity)
  const targets = listImages(path.join(dir, 'target')).slice(0, inputs.length)
  const names = (files: string[]) => files.map((f) => path.basename(f)).join()
  if (names(inputs) !== names(targets)) throw new Error(`${dir}: input/ and target/ do not hold the same file names`)
  const model = GCANet.fromSafetensors(weights)
  let sumPsnr = 0
  let sumSsim = 0
  const t0 = process.hrtime.bigint()
  inputs.forEach((file, i) => {
    const r = scope(() => {
      const hazy = readImage(file, { channels: 3 })
      const [, , h, w] = hazy.shape as [number, number, number, number]
      const target = readImage(targets[i]!, { channels: 3 }).toFloat32Array()
      const out = noGrad(() => model.forward(hazy)).toFloat32Array()
      // The source's protocol: the output rounded and clipped to 0..255 and saved as 8-bit PNG, scored on RGB.
      const q = { quantize: 'round', space: 'rgb' } as const
      return { psnr: psnr(out, target, q), ssim: ssim(out, target, h, w, q) }
    })
    sumPsnr += r.psnr
    sumSsim += r.ssim
    if (!args.json) console.log(`${path.basename(file)}: RGB ${r.psnr.toFixed(2)} dB (running mean ${(sumPsnr / (i + 1)).toFixed(3)} dB)`)
  })
  synchronize()
  model.dispose()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const n = inputs.length
  const result = { rgb: sumPsnr / n, ssimRgb: sumSsim / n }
  console.log(`SOTS-indoor, 50-pair subset (${n} pairs): PSNR RGB ${result.rgb.toFixed(3)} dB (README ${EXPECTED.rgb}); SSIM RGB ${result.ssimRgb.toFixed(4)}`)
  console.log(`${(seconds / n).toFixed(2)} s per image (reading and scoring included)`)
  return { bench: 'gcanet', device: device.adapterName, images: n, psnr: result, expected: EXPECTED, secondsPerImage: seconds / n }
}
