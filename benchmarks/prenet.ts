/**
 * `npm run bench -- prenet`: the published PReNet (6 stages) on all 100
 * Rain100L pairs, scored as the source's test and statistic scripts do, beside
 * the figures of the weights' README: 37.48 dB on the Y channel, 36.09 dB on
 * RGB (an independent NumPy implementation on the same copy of the test set).
 * Needs ../shared. `--limit N` uses the first N pairs only.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { PReNet, info, listImages, noGrad, psnr, readImage, scope, ssim, synchronize } from '../index'
import type { BenchArgs } from './run'

const EXPECTED = { y: 37.48, rgb: 36.09 }

export function run(args: BenchArgs): Record<string, unknown> {
  const shared = path.resolve(__dirname, '..', '..', '..', 'shared')
  const dir = path.join(shared, 'data', 'derain', 'rain100l')
  const weights = path.join(shared, 'models', 'prenet_rain100l.safetensors')
  if (!fs.existsSync(weights) || !fs.existsSync(dir)) throw new Error(`needs the shared Rain100L pairs and PReNet weights at ${shared}`)
  const device = info()
  console.log(`device: ${device.adapterName} (${device.deviceType})`)
  const inputs = listImages(path.join(dir, 'input')).slice(0, args.limit ?? Infinity)
  const targets = listImages(path.join(dir, 'target')).slice(0, inputs.length)
  const names = (files: string[]) => files.map((f) => path.basename(f)).join()
  if (names(inputs) !== names(targets)) throw new Error(`${dir}: input/ and target/ do not hold the same file names`)
  const model = PReNet.fromSafetensors(weights)
  let sumY = 0
  let sumRgb = 0
  let sumSsim = 0
  const t0 = process.hrtime.bigint()
  inputs.forEach((file, i) => {
    const r = scope(() => {
      const rainy = readImage(file, { channels: 3 })
      const [, , h, w] = rainy.shape as [number, number, number, number]
      const target = readImage(targets[i]!, { channels: 3 }).toFloat32Array()
      const out = noGrad(() => model.forward(rainy)).toFloat32Array()
      // The source's protocol: the output clipped to [0, 1] and saved as 8-bit PNG by
      // truncation (np.uint8(255·out)), then scored on MATLAB's rgb2ycbcr Y, full image.
      const q = { quantize: 'truncate' } as const
      return { y: psnr(out, target, { ...q, space: 'y' }), rgb: psnr(out, target, { ...q, space: 'rgb' }), ssim: ssim(out, target, h, w, { ...q, space: 'y' }) }
    })
    sumY += r.y
    sumRgb += r.rgb
    sumSsim += r.ssim
    if (!args.json) console.log(`${path.basename(file)}: Y ${r.y.toFixed(2)} dB, RGB ${r.rgb.toFixed(2)} dB (running mean Y ${(sumY / (i + 1)).toFixed(3)} dB)`)
  })
  synchronize()
  model.dispose()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9
  const n = inputs.length
  const result = { y: sumY / n, rgb: sumRgb / n, ssimY: sumSsim / n }
  console.log(
    `Rain100L (${n} pairs): PSNR Y ${result.y.toFixed(3)} dB (README ${EXPECTED.y}), RGB ${result.rgb.toFixed(3)} dB (README ${EXPECTED.rgb}); ` +
      `SSIM Y ${result.ssimY.toFixed(4)} (11×11 Gaussian window, valid region; the published 0.979 is MATLAB's ssim)`,
  )
  console.log(`${(seconds / n).toFixed(2)} s per image (reading and scoring included)`)
  return { bench: 'prenet', device: device.adapterName, images: n, psnr: result, expected: EXPECTED, secondsPerImage: seconds / n }
}
