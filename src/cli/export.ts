/**
 * `spikeir export CKPT OUT.json`: copies a checkpoint's model, without its
 * optimizer state, to `OUT.json` + `OUT.safetensors` — a file set to ship or
 * to pass as `--model`.
 *
 * @module
 */
import { exportCheckpoint } from '../train/checkpoint'
import { checkWritableFile, UsageError, type FlagSpec, type Parsed } from './args'

export const summary = 'copy a checkpoint\'s model (no optimizer state): spikeir export CKPT OUT.json'

export const flags: Record<string, FlagSpec> = {
  'trained-weights': { type: 'boolean', description: 'the trained weights of a finished run with --ema, instead of their average' },
}

export function run(args: Parsed): void {
  const [source, target] = args.positional
  if (!source || !target || args.positional.length !== 2) throw new UsageError('expected CKPT and OUT.json')
  if (!target.endsWith('.json')) throw new UsageError(`OUT must be a sidecar path ending in .json, got '${target}'`)
  checkWritableFile(target, 'OUT')
  console.log(`wrote ${exportCheckpoint(source, target, { trained: args.flags['trained-weights'] === true })}`)
}
