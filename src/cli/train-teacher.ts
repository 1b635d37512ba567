/**
 * `spikeir train-teacher`: train an ANN teacher (a U-Net whose levels match
 * the student's resolutions, or a DnCNN) with L1 + λ·FFT loss.
 *
 * @module
 */
import { defaultRecipe } from '../train/recipe'
import { UsageError, type FlagSpec, type Parsed } from './args'
import { getTask } from '../tasks'
import { applyTask, recipeFrom, train, trainingFlags } from './distill'

export const summary = 'train an ANN teacher (U-Net or DnCNN) for a task'

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
  const fixed = args.flags['channels']
  if (fixed === 2) throw new UsageError('--channels must be 1 (grey) or 3 (RGB), got 2')
  const task = getTask(r.task)
  if (typeof fixed === 'number' && task.channels !== null && fixed !== task.channels) throw new UsageError(`--channels ${fixed}: --task ${task.name} restores ${task.channels}-channel images`)
  applyTask(r, args, ((fixed as number | undefined) ?? task.channels ?? 1) as 1 | 3)
  train(r, args)
}
