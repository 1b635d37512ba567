/**
 * `spikeir restore [--task T] [--model CKPT] [--self-ensemble] IN OUT` (alias `denoise`):
 * restores one image file, grey or colour by the model's channels.
 *
 * @module
 */
import { readImage, writeImage } from '../io'
import { restore } from '../metrics/evaluate'
import { loadModel } from '../models/load'
import { scope } from '../tensor'
import { checkWritableFile, UsageError, type FlagSpec, type Parsed } from './args'
import { modelFile, restorerFromArgs, selfEnsembleFlag, taskFlags, taskFromArgs } from './task'

export const summary = 'restore one image: spikeir restore [--task T] [--model CKPT] IN OUT (alias: denoise)'

export const flags: Record<string, FlagSpec> = {
  model: { type: 'string', description: 'checkpoint or published weights; default: the bundled student of the task (weights/)' },
  task: taskFlags['task']!,
  tile: { type: 'number', min: 0, integer: true, description: 'restore in overlapping tiles of this side (pixels); default: what fits the device, 0 for the whole image at once' },
  'self-ensemble': selfEnsembleFlag,
}

export function run(args: Parsed): void {
  const [input, output] = args.positional
  if (!input || !output || args.positional.length !== 2) throw new UsageError('expected IN and OUT image paths')
  // Checked before the model runs, so a typo costs no compute and leaves no file.
  if (!/\.(png|jpe?g|bmp|tiff?)$/i.test(output)) throw new UsageError(`OUT '${output}' must end in .png, .jpg, .bmp or .tif (the format written)`)
  checkWritableFile(output, 'OUT')
  taskFromArgs(args)
  const loaded = loadModel(modelFile(args))
  const { imageChannels } = loaded
  const model = restorerFromArgs(args, loaded.model)
  // The task and the model must agree on channels (a grey model cannot derain).
  const setup = taskFromArgs(args, imageChannels)
  scope(() => {
    // Read the file with the model's channel count (colour photos become luma for grey models).
    const img = readImage(input, { channels: setup.channels })
    const tile = args.flags['tile']
    writeImage(output, restore(model, img, typeof tile === 'number' ? { tile } : {}))
  })
  console.log(`wrote ${output}`)
}
