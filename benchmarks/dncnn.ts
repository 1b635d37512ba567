/**
 * `npm run bench -- dncnn`: the published DnCNN-S models on BSD68 at
 * σ = 15, 25, 50 — average PSNR beside the published figures, and images per
 * second. Needs ../shared (data and weights). `--limit N` uses the first N
 * images only (the published figures are for all 68).
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { DnCNN, Tensor, info, listImages, noGrad, psnr, readImage, scope, synchronize } from '../index'
import type { BenchArgs } from './run'

const PUBLISHED: Record<string, number> = { '15': 31.73, '25': 29.23, '50': 26.23 }

export function run(args: BenchArgs): Record<string, unknown> {
  const shared = path.resolve(__dirname, '..', '..', '..', 'shared')
  if (!fs.existsSync(path.join(shared, 'models'))) throw new Error(`needs the shared data and weights at ${shared}`)
  const device = info()
  console.log(`device: ${device.adapterName} (${device.deviceType})`)
  const files = listImages(path.join(shared, 'data', 'bsd68')).slice(0, args.limit ?? Infinity)
  const result: Record<string, number> = {}
  let images = 0
  const t0 = process.hrtime.bigint()
  for (const sigma of ['15', '25', '50']) {
    const model = DnCNN.fromSafetensors(path.join(shared, 'models', `dncnn_s_sigma${sigma}.safetensors`))
    let sum = 0
    files.forEach((file, i) => {
      sum += scope(() => {
        const clean = readImage(file, { channels: 1 })
        const noisy = clean.add(Tensor.randn(clean.shape, { seed: 1000 + i, std: Number(sigma) / 255 }))
        const out = noGrad(() => model.forward(noisy))
        return psnr(out.toFloat32Array(), clean.toFloat32Array())
      })
      images++
    })
    model.dispose()
    result[sigma] = sum / files.length
    console.log(`σ = ${sigma}: BSD68 (${files.length} images) PSNR ${result[sigma]!.toFixed(2)} dB (published ${PUBLISHED[sigma]} dB)`)
  }
  synchronize()
  const imagesPerSecond = images / (Number(process.hrtime.bigint() - t0) / 1e9)
  console.log(`${imagesPerSecond.toFixed(3)} images/s (481×321, reading, noise and PSNR included)`)
  return { bench: 'dncnn', device: device.adapterName, images: files.length, psnr: result, published: PUBLISHED, imagesPerSecond }
}
