/**
 * `spikeir eval --model CKPT --data DIR --sigma 25 [--json]`: per-image and
 * average PSNR/SSIM of AWGN denoising (noise from a fixed seed per image).
 *
 * @module
 */
import { listImages } from '../io'
import { evaluateDenoising, type DenoisingSetOptions } from '../metrics/evaluate'
import { loadModel } from '../models/load'
import { UsageError, type FlagSpec, type Parsed } from './args'
import { defaultStudent } from './defaults'
import { Output } from './progress'

export const summary = 'evaluate a model on a folder of clean images (AWGN, PSNR/SSIM)'

export const flags: Record<string, FlagSpec> = {
  model: { type: 'string', description: 'checkpoint (sidecar .json or model .safetensors), or DnCNN weights; default: the σ = 25 student' },
  data: { type: 'string', description: 'folder of clean images (required)' },
  sigma: { type: 'number', description: 'noise level on the 0–255 scale (default 25)', min: 0, max: 255 },
  seed: { type: 'number', description: 'noise seed of the first image (default 1000)', integer: true, min: 0 },
  limit: { type: 'number', description: 'evaluate only the first N images', integer: true, min: 1 },
  json: { type: 'boolean', description: 'print one JSON object' },
  quiet: { type: 'boolean', description: 'print only errors' },
}

export function run(args: Parsed): void {
  const data = args.flags['data']
  if (typeof data !== 'string') throw new UsageError('--data DIR is required')
  const sigma = (args.flags['sigma'] as number | undefined) ?? 25
  const file = typeof args.flags['model'] === 'string' ? args.flags['model'] : defaultStudent()
  const { model, spec, step, imageChannels } = loadModel(file)
  const options: DenoisingSetOptions = { channels: imageChannels === 3 ? 3 : 1 }
  if (typeof args.flags['seed'] === 'number') options.seed = args.flags['seed']
  if (typeof args.flags['limit'] === 'number') options.limit = args.flags['limit']
  // The noise protocol of validation during training: the same weights give the same figures.
  const output = Output.from(args.flags)
  const progress = output.progress('eval', Math.min(listImages(data).length, options.limit ?? Infinity), { unit: 'images', psnrLabel: 'mean PSNR' })
  let sum = 0
  const result = evaluateDenoising(model, data, sigma, options, (done, _total, r) => {
    sum += r.psnr
    progress.update(done, { psnr: sum / done })
  })
  output.end()
  if (args.flags['json']) {
    console.log(JSON.stringify({ model: file, kind: spec.kind, step, sigma, ...result }))
    return
  }
  if (output.quiet) return
  for (const r of result.perImage) console.log(`${r.name.padEnd(16)} PSNR ${r.psnr.toFixed(2)} dB  SSIM ${r.ssim.toFixed(4)}`)
  console.log(`average over ${result.images} images at σ = ${sigma}: PSNR ${result.psnr.toFixed(2)} dB, SSIM ${result.ssim.toFixed(4)}`)
}
