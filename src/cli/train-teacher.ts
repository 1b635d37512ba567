/**
 * `spikeir train-teacher`: train an ANN teacher (a U-Net whose levels match
 * the student's resolutions, or a DnCNN) with L1 + λ·FFT loss.
 *
 * @module
 */
import { defaultRecipe } from '../train/recipe'
import { UsageError, type FlagSpec, type Parsed } from './args'
import { recipeFrom, train, trainingFlags } from './distill'

export const summary = 'train an ANN teacher (U-Net or DnCNN)'

export const flags: Record<string, FlagSpec> = {
  ...trainingFlags,
  arch: { type: 'string', description: 'unet (default) or dncnn' },
  width: { type: 'number', description: 'U-Net width / DnCNN channels', integer: true, min: 1, max: 1024 },
  depth: { type: 'number', description: 'DnCNN depth', integer: true, min: 2, max: 256 },
}

export function run(args: Parsed): void {
  const base = { ...defaultRecipe('spikeir-out/teacher'), name: 'teacher' }
  const r = recipeFrom(args, base)
  const arch = (args.flags['arch'] as string | undefined) ?? 'unet'
  const width = args.flags['width'] as number | undefined
  if (arch === 'unet') r.model = { kind: 'unet', options: { width: width ?? 16, seed: r.seed } }
  else if (arch === 'dncnn') {
    const depth = args.flags['depth'] as number | undefined
    r.model = { kind: 'dncnn', options: { channels: width ?? 32, depth: depth ?? 10 } }
  } else throw new UsageError(`unknown --arch '${arch}' (unet, dncnn)`)
  r.teacher = null
  train(r, args)
}
