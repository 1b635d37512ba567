/**
 * The part of the report that runs models: each run's final checkpoint (and
 * the teacher of a hint run) restores one image — the first validation
 * image, or `--image` — for the side-by-side crops and their PSNR, and its
 * forward on that image is accounted for energy and firing rates.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import type { DataSource } from '../data/pipeline'
import { readImage } from '../io'
import { energyReport, type EnergyReport } from '../metrics/energy'
import { denoisingPairs, EVAL_NOISE_SEED, restore } from '../metrics/evaluate'
import { psnr, ssim } from '../metrics/quality'
import { loadModel } from '../models/load'
import { SpikingNeuron } from '../nn/spiking'
import { noGrad, scope, Tensor } from '../tensor'
import type { Run, RunRole } from './collect'
import { pngDataUri } from './png'

/** One model's results on the report image. */
export interface ModelOnImage {
  label: string
  role: RunRole
  /** Checkpoint or weights file. */
  file: string
  parameters: number
  psnr: number
  ssim: number
  /** The restored crop as a PNG `data:` URI. */
  crop: string
  energy: EnergyReport
  /** Mean spike rate of every spiking neuron layer in the forward on the image (empty for ANNs). */
  firingRates: Record<string, number>
}

/** Everything the report shows about the image. */
export interface ImageAnalysis {
  /** Where the image came from (file name, or the synthetic image's name). */
  name: string
  height: number
  width: number
  sigma: number
  /** The displayed crop: top-left corner and size. */
  crop: { x: number; y: number; height: number; width: number }
  clean: string
  noisy: string
  noisyPsnr: number
  /** Energy is measured on the top-left crop whose sides are multiples of 4 (the student's two down-samplings). */
  energyInput: { height: number; width: number }
  models: ModelOnImage[]
}

/** Options of {@link analyseRuns}. */
export interface AnalyseOptions {
  /** A clean image to degrade (AWGN at the runs' σ, the noise `spikeir eval` gives a first image) instead of the first validation image. */
  image?: string
  /** Side of the displayed crop (default 160). */
  cropSize?: number
}

/** The noise level the runs trained at (their σ, or the middle of a blind range). */
function sigmaOf(runs: readonly Run[]): number {
  for (const r of runs) {
    const s = r.info?.config['sigma']
    if (typeof s === 'number') return s
    if (Array.isArray(s) && s.length === 2) return (Number(s[0]) + Number(s[1])) / 2
  }
  return 25
}

/** Resolves a hint run's teacher: a teacher run among those reported, else the file its config names. */
function teacherFile(runs: readonly Run[]): { file: string; label: string } | null {
  const run = runs.find((r) => r.role === 'teacher' && r.checkpoint)
  if (run) return null // reported as a run of its own
  for (const r of runs) {
    const t = r.info?.config['teacher']
    if (typeof t !== 'string') continue
    for (const candidate of [t, path.resolve(r.dir, t)]) if (fs.existsSync(candidate)) return { file: candidate, label: `teacher (${path.basename(candidate)})` }
  }
  return null
}

function cropPlane(data: Float32Array, c: number, h: number, w: number, box: { x: number; y: number; height: number; width: number }): Float32Array {
  const out = new Float32Array(c * box.height * box.width)
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < box.height; y++) {
      const from = (ch * h + box.y + y) * w + box.x
      out.set(data.subarray(from, from + box.width), (ch * box.height + y) * box.width)
    }
  }
  return out
}

/**
 * Loads each run's checkpoint (and a teacher named by a hint run's config
 * when no teacher run is reported) and measures them on one image. Returns
 * null when there is no image: no `options.image` and no run with a
 * validation set.
 */
export function analyseRuns(runs: readonly Run[], options: AnalyseOptions = {}): ImageAnalysis | null {
  const sigma = sigmaOf(runs)
  const models = runs.filter((r) => r.checkpoint).map((r) => ({ file: r.checkpoint!, label: r.label, role: r.role }))
  const extra = teacherFile(runs)
  if (extra) models.unshift({ file: extra.file, label: extra.label, role: 'teacher' })
  if (models.length === 0) return null
  return scope(() => {
    let name: string
    let clean: Tensor
    let noisy: Tensor
    if (options.image) {
      if (!fs.existsSync(options.image)) throw new Error(`report: --image '${options.image}' does not exist`)
      name = path.basename(options.image)
      clean = readImage(options.image, { channels: 1 })
      // The noise `spikeir eval` gives the first image of a folder.
      noisy = clean.add(Tensor.randn(clean.shape, { seed: EVAL_NOISE_SEED, std: sigma / 255 }))
    } else {
      const val = runs.map((r) => r.info?.config['val'] as { source: DataSource } | null | undefined).find((v) => v && v.source)
      if (!val) return null
      // The first image of the validation set, with the noise validation gave it.
      const pairs = denoisingPairs(val.source, sigma, { limit: 1 })
      if (pairs.length === 0) return null
      name = pairs[0]!.name
      clean = pairs[0]!.target
      noisy = pairs[0]!.input
    }
    const [, c, h, w] = clean.shape as [number, number, number, number]
    const side = options.cropSize ?? 160
    const box = { height: Math.min(h, side), width: Math.min(w, side), y: 0, x: 0 }
    box.y = Math.floor((h - box.height) / 2)
    box.x = Math.floor((w - box.width) / 2)
    const cleanData = clean.toFloat32Array()
    const noisyData = noisy.toFloat32Array()
    const uri = (d: Float32Array) => pngDataUri(cropPlane(d, c, h, w, box), c as 1 | 3, box.height, box.width)
    const ssimOf = (pred: Float32Array) => {
      let s = 0
      for (let ch = 0; ch < c; ch++) s += ssim(pred.subarray(ch * h * w, (ch + 1) * h * w), cleanData.subarray(ch * h * w, (ch + 1) * h * w), h, w)
      return s / c
    }
    const eh = h - (h % 4)
    const ew = w - (w % 4)
    // Energy on a crop (not a padding) to multiples of 4, so no layer sees invented pixels.
    const energyInput = Tensor.fromData(cropPlane(noisyData, c, h, w, { x: 0, y: 0, height: eh, width: ew }), [1, c, eh, ew])
    const results: ModelOnImage[] = models.map((m) => {
      const { model } = loadModel(m.file)
      try {
        return scope(() => {
          const pred = restore(model, noisy).toFloat32Array()
          const energy = energyReport(model, energyInput)
          // After a forward on the image each neuron holds its mean spike rate, until this scope ends.
          noGrad(() => model.forward(energyInput))
          const firingRates: Record<string, number> = {}
          for (const [n, mod] of model.namedModules()) {
            if (mod instanceof SpikingNeuron) {
              const r = mod.firingRate()
              if (r !== null) firingRates[n] = r
            }
          }
          return { label: m.label, role: m.role, file: m.file, parameters: model.numParameters(), psnr: psnr(pred, cleanData), ssim: ssimOf(pred), crop: uri(pred), energy, firingRates }
        })
      } finally {
        model.dispose()
      }
    })
    return {
      name,
      height: h,
      width: w,
      sigma,
      crop: box,
      clean: uri(cleanData),
      noisy: uri(noisyData),
      noisyPsnr: psnr(noisyData, cleanData),
      energyInput: { height: eh, width: ew },
      models: results,
    }
  })
}
