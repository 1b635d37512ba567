/**
 * `spikeir eval [--task T] --model CKPT --data DIR [--sigma 25 | --quality q |
 * --blur s [--blur-kernel gaussian|motion|defocus]] [--self-ensemble] [--json]`: per-image and
 * average PSNR/SSIM of a task — clean images degraded by the task's test
 * protocol (noise, or a motion blur's angle, from a fixed seed per image), or
 * real `input/` + `target/` pairs — in the task's colour space, which the
 * output names.
 *
 * @module
 */
import { listImages } from '../io'
import { SELF_ENSEMBLE_PASSES } from '../metrics/ensemble'
import { loadModel } from '../models/load'
import { defaultTestSet, describeSetup, evaluateTask, folderSource, type TaskPairsOptions } from '../tasks'
import { UsageError, type FlagSpec, type Parsed } from './args'
import { Output } from './progress'
import { modelFile, restorerFromArgs, selfEnsembleFlag, taskFlags, taskFromArgs } from './task'

export const summary = 'evaluate a model on a task\'s test images (PSNR/SSIM in the task\'s colour space)'

export const flags: Record<string, FlagSpec> = {
  model: { type: 'string', description: 'checkpoint (sidecar .json or model .safetensors), or published weights; default: the bundled student of the task (weights/)' },
  data: { type: 'string', description: 'folder of clean images, or of input/ + target/ pairs (default: the task\'s test set in ../shared)' },
  ...taskFlags,
  sigma: { type: 'number', description: 'noise level of --task denoise on the 0–255 scale (default 25)', min: 0, max: 255 },
  seed: { type: 'number', description: 'seed of the test inputs: noise, rain, haze, motion blur angle (default 1000)', integer: true, min: 0 },
  limit: { type: 'number', description: 'evaluate only the first N images', integer: true, min: 1 },
  'self-ensemble': selfEnsembleFlag,
  json: { type: 'boolean', description: 'print one JSON object' },
  quiet: { type: 'boolean', description: 'print only errors' },
}

const SPACE_WORDS = { rgb: 'RGB', grey: 'grey', y: 'the Y channel (BT.601)' } as const

export function run(args: Parsed): void {
  // The task and its options are checked before the model loads.
  taskFromArgs(args)
  const file = modelFile(args)
  const loaded = loadModel(file)
  const { spec, step, imageChannels } = loaded
  const model = restorerFromArgs(args, loaded.model)
  const ensembled = args.flags['self-ensemble'] === true
  const setup = taskFromArgs(args, imageChannels)
  const given = args.flags['data']
  const data = typeof given === 'string' ? given : defaultTestSet(setup)
  if (data === null) throw new UsageError(`--data DIR is required (no default test set of --task ${setup.task.name} for ${setup.channels} channel(s) on this machine)`)
  const options: TaskPairsOptions = {}
  if (typeof args.flags['seed'] === 'number') options.seed = args.flags['seed']
  if (typeof args.flags['limit'] === 'number') options.limit = args.flags['limit']
  const source = folderSource(data, setup.channels)
  const paired = source.kind === 'paired'
  const output = Output.from(args.flags)
  const count = listImages(source.kind === 'paired' ? source.targetDir : source.kind === 'folder' ? source.dir : data).length
  const progress = output.progress('eval', Math.min(count, options.limit ?? Infinity), { unit: 'images', psnrLabel: 'mean PSNR' })
  let sum = 0
  const result = evaluateTask(model, setup, source, options, (done, _total, r) => {
    sum += r.psnr
    progress.update(done, { psnr: sum / done })
  })
  output.end()
  const degradation = describeSetup(setup, paired)
  if (args.flags['json']) {
    const p = setup.params
    console.log(
      JSON.stringify({
        model: file,
        kind: spec.kind,
        step,
        selfEnsemble: ensembled ? SELF_ENSEMBLE_PASSES : 1,
        task: setup.task.name,
        data,
        channels: setup.channels,
        metric: { psnr: 'PSNR (dB, peak 255)', ssim: 'SSIM (11×11 Gaussian, σ = 1.5)', space: result.space, ...(setup.metric.quantize ? { quantize: setup.metric.quantize } : {}) },
        degradation: paired ? 'real pairs' : setup.testDegradation,
        // The options made the inputs only where the inputs were made, not for real pairs.
        ...(!paired && p.sigma !== null ? { sigma: p.sigma } : {}),
        ...(!paired && p.quality !== null ? { quality: p.quality } : {}),
        ...(!paired && p.blur !== null ? { blur: p.blur, blurKernel: p.blurKernel } : {}),
        ...result,
      }),
    )
    return
  }
  if (output.quiet) return
  for (const r of result.perImage) console.log(`${r.name.padEnd(16)} PSNR ${r.psnr.toFixed(2)} dB  SSIM ${r.ssim.toFixed(4)}`)
  const q = setup.metric.quantize ? `, output ${setup.metric.quantize === 'truncate' ? 'truncated' : 'rounded'} to 8 bits` : ''
  const e = ensembled ? `, self-ensemble of ${SELF_ENSEMBLE_PASSES} orientations` : ''
  console.log(
    `average over ${result.images} images, --task ${setup.task.name} (${degradation}), on ${SPACE_WORDS[result.space]}${q}${e}: PSNR ${result.psnr.toFixed(2)} dB, SSIM ${result.ssim.toFixed(4)}`,
  )
}
