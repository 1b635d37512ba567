/**
 * `npm run bench -- teachers`: the published 20-layer DnCNN teachers on
 * their full test sets, each figure beside the one `shared/models/README.md`
 * reports (an independent NumPy implementation): CDnCNN-B on CBSD68 σ = 25
 * (RGB), DnCNN-B on BSD68 σ = 25, DnCNN-3 on Classic5 and LIVE1 grey at JPEG
 * quality 10 and 20. The test pairs come from the task registry, so these
 * are the figures `spikeir eval --task …` prints.
 *
 * Two protocol differences are stated with the figures: the noise is
 * spikeir's fixed-seed draw (seed 1000 + i), not NumPy's `default_rng`, which
 * the README says moves averages by a few hundredths; and the JPEG inputs
 * come from the `image` crate's encoder and decoder, not Pillow's (libjpeg),
 * so the JPEG input PSNR is printed beside the README's too. `--limit N`
 * uses the first N images of each set (with 20, the denoisers are compared
 * with the README's first-20 figures).
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { info, listImages, psnr } from '../index'
import { evaluatePairs } from '../src/metrics/evaluate'
import { loadModel } from '../src/models/load'
import { setupTask, taskPairs, type TaskParams } from '../src/tasks'
import type { BenchArgs } from './run'

interface Row {
  teacher: string
  file: string
  task: string
  params: TaskParams
  channels: 1 | 3
  set: string
  /** The README's figure for the teacher's output (all images), and for the degraded input where it gives one. */
  readme: number
  readmeInput?: number
  /** The README's figure over the first 20 images, where it gives one (for `--limit 20`). */
  readmeFirst20?: number
}

const ROWS: Row[] = [
  { teacher: 'CDnCNN-B', file: 'cdncnn_b_color.safetensors', task: 'denoise', params: { sigma: 25 }, channels: 3, set: 'cbsd68', readme: 31.23, readmeFirst20: 31.45 },
  { teacher: 'DnCNN-B', file: 'dncnn_b_gray.safetensors', task: 'denoise', params: { sigma: 25 }, channels: 1, set: 'bsd68', readme: 29.16, readmeFirst20: 29.39 },
  { teacher: 'DnCNN-3', file: 'dncnn3.safetensors', task: 'jpeg', params: { quality: 10 }, channels: 1, set: 'jpeg/classic5', readme: 29.41, readmeInput: 27.82 },
  { teacher: 'DnCNN-3', file: 'dncnn3.safetensors', task: 'jpeg', params: { quality: 20 }, channels: 1, set: 'jpeg/classic5', readme: 31.64, readmeInput: 30.12 },
  { teacher: 'DnCNN-3', file: 'dncnn3.safetensors', task: 'jpeg', params: { quality: 10 }, channels: 1, set: 'jpeg/live1_gray', readme: 29.2, readmeInput: 27.77 },
  { teacher: 'DnCNN-3', file: 'dncnn3.safetensors', task: 'jpeg', params: { quality: 20 }, channels: 1, set: 'jpeg/live1_gray', readme: 31.6, readmeInput: 30.07 },
]

/** Images of a test set folder (its `target/` where it has one). */
function taskPairsCount(dir: string): number {
  const target = path.join(dir, 'target')
  return listImages(fs.existsSync(target) ? target : dir).length
}

export function run(args: BenchArgs): Record<string, unknown> {
  const shared = path.resolve(__dirname, '..', '..', '..', 'shared')
  if (!fs.existsSync(path.join(shared, 'models'))) throw new Error(`needs the shared data and weights at ${shared}`)
  const device = info()
  console.log(`device: ${device.adapterName} (${device.deviceType})`)
  const results: Record<string, unknown>[] = []
  const t0 = Date.now()
  for (const row of ROWS) {
    const { model, spec } = loadModel(path.join(shared, 'models', row.file))
    try {
      const setup = setupTask(row.task, row.params, row.channels)
      const pairs = taskPairs(setup, path.join(shared, 'data', row.set), args.limit !== undefined ? { limit: args.limit } : {})
      try {
        const input = pairs.reduce((s, p) => s + psnr(p.input.toFloat32Array(), p.target.toFloat32Array(), setup.metric), 0) / pairs.length
        // Per-image lines on stderr, so a long run shows where it is.
        const r = evaluatePairs(model, pairs, (done, total, one) => console.error(`  ${row.teacher} ${row.set} ${done}/${total} ${one.name} ${one.psnr.toFixed(2)} dB`), setup.metric)
        const first20 = r.images === 20 && row.readmeFirst20 !== undefined
        // Whether these are all the set's images (the README's figure is over all of them).
        const all = r.images === taskPairsCount(path.join(shared, 'data', row.set))
        const readme = first20 ? row.readmeFirst20! : row.readme
        const what = row.task === 'jpeg' ? `q = ${row.params.quality}` : `σ = ${row.params.sigma}`
        const depth = spec.kind === 'dncnn' ? spec.options.depth : undefined
        const line =
          `${row.teacher.padEnd(9)} ${row.set.padEnd(16)} ${what.padEnd(7)} ${String(r.images).padStart(3)} images  ${r.space.padEnd(4)} ` +
          `PSNR ${r.psnr.toFixed(2)} dB (README ${readme.toFixed(2)}${first20 ? ', first 20' : all ? '' : ', over all images'}, Δ ${(r.psnr - readme >= 0 ? '+' : '') + (r.psnr - readme).toFixed(2)})  ` +
          `input ${input.toFixed(2)} dB${row.readmeInput !== undefined ? ` (README ${row.readmeInput.toFixed(2)})` : ''}  SSIM ${r.ssim.toFixed(4)}`
        console.log(line)
        results.push({ teacher: row.teacher, file: row.file, depth, set: row.set, task: row.task, ...row.params, space: r.space, images: r.images, psnr: r.psnr, ssim: r.ssim, readme, readmeOver: first20 ? 'first 20' : 'all', inputPsnr: input, readmeInput: row.readmeInput ?? null })
      } finally {
        for (const p of pairs) {
          p.input.dispose()
          p.target.dispose()
        }
      }
    } finally {
      model.dispose()
    }
  }
  console.log(`${((Date.now() - t0) / 1000).toFixed(0)} s. Noise: Tensor.randn from seed 1000 + i (the README draws NumPy default_rng(1000 + k)); JPEG: the image crate's codec (the README: Pillow/libjpeg).`)
  return { bench: 'teachers', device: device.adapterName, rows: results }
}
