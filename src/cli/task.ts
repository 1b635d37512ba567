/**
 * The task flags every command shares (`--task`, `--sigma`, `--quality`,
 * `--blur`) and how they become a {@link TaskSetup}: one reading, so each
 * command refuses the same combinations with the same words.
 *
 * @module
 */
import * as fs from 'node:fs'

import { getTask, setupTask, TASK_NAMES, type TaskParams, type TaskSetup } from '../tasks'
import { UsageError, type FlagSpec, type Parsed } from './args'
import { defaultStudent } from './defaults'

/** `--task` and the options of the tasks. `--sigma` is declared by each command (its default differs in words). */
export const taskFlags: Record<string, FlagSpec> = {
  task: { type: 'string', description: `restoration task: ${TASK_NAMES.join(', ')} (default denoise)` },
  quality: { type: 'number', description: 'JPEG quality of --task jpeg (default 10)', integer: true, min: 1, max: 100 },
  blur: { type: 'number', description: 'Gaussian blur σ in pixels of --task deblur (default 1.6)', min: 0, exclusiveMin: true, max: 32 },
}

/** The task options given on the command line. */
export function taskParams(args: Parsed): TaskParams {
  const f = args.flags
  const p: TaskParams = {}
  if (typeof f['sigma'] === 'number') p.sigma = f['sigma']
  if (typeof f['quality'] === 'number') p.quality = f['quality']
  if (typeof f['blur'] === 'number') p.blur = f['blur']
  return p
}

/** The task named by `--task` (default `denoise`). */
export function taskName(args: Parsed, fallback = 'denoise'): string {
  const t = args.flags['task']
  const name = typeof t === 'string' ? t : fallback
  getTask(name)
  return name
}

/**
 * The task of the command line for a model of `channels` image channels:
 * options checked against the task (naming the flag), defaults filled in.
 */
export function taskFromArgs(args: Parsed, channels?: number): TaskSetup {
  return setupTask(taskName(args), taskParams(args), channels)
}

/**
 * The model a command uses: `--model`, else the bundled student where the
 * task is grey denoising (the one it was trained for); other tasks have no
 * bundled model, which is a usage error naming `--model`.
 */
export function modelFile(args: Parsed): string {
  const m = args.flags['model']
  if (typeof m === 'string') return m
  const name = taskName(args)
  if (name !== 'denoise') throw new UsageError(`--task ${name} has no bundled model; pass --model CKPT (a checkpoint or published weights)`)
  return defaultStudent()
}

/** Whether `dir` is a folder (for messages that say what is missing). */
export function isFolder(dir: string): boolean {
  return fs.existsSync(dir) && fs.statSync(dir).isDirectory()
}
