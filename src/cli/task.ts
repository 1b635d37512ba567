/**
 * The task flags every command shares (`--task`, `--sigma`, `--quality`,
 * `--blur`, `--blur-kernel`) and how they become a {@link TaskSetup}: one reading, so each
 * command refuses the same combinations with the same words.
 *
 * @module
 */
import * as fs from 'node:fs'

import { BLUR_KERNEL_NAMES, BLUR_KERNELS, getTask, setupTask, TASK_NAMES, type TaskParams, type TaskSetup } from '../tasks'
import { describeRule, UsageError, type FlagSpec, type Parsed } from './args'
import { selfEnsemble } from '../metrics/ensemble'
import type { Restorer } from '../metrics/evaluate'
import { defaultStudent } from './defaults'

/** `--task` and the options of the tasks. `--sigma` is declared by each command (its default differs in words). */
export const taskFlags: Record<string, FlagSpec> = {
  task: { type: 'string', description: `restoration task: ${TASK_NAMES.join(', ')} (default denoise)` },
  quality: { type: 'number', description: 'JPEG quality of --task jpeg (default 10)', integer: true, min: 1, max: 100 },
  // The range of --blur is its kernel's, checked with the task (setupTask), not by the parser.
  blur: {
    type: 'number',
    description: `blur size in pixels of --task deblur, by --blur-kernel: ${BLUR_KERNEL_NAMES.map((k) => `${BLUR_KERNELS[k].size.replace(/^the | in pixels$/g, '')} ${describeRule(BLUR_KERNELS[k].rule).replace(/^a number /, '')} (default ${BLUR_KERNELS[k].default})`).join(', ')}`,
  },
  'blur-kernel': { type: 'string', description: `blur kernel of --task deblur: ${BLUR_KERNEL_NAMES.join(', ')} (default gaussian; a motion blur's angle is random per patch, and per test image from its seed)` },
}

/** The task options given on the command line. */
export function taskParams(args: Parsed): TaskParams {
  const f = args.flags
  const p: TaskParams = {}
  if (typeof f['sigma'] === 'number') p.sigma = f['sigma']
  if (typeof f['quality'] === 'number') p.quality = f['quality']
  if (typeof f['blur'] === 'number') p.blur = f['blur']
  if (typeof f['blur-kernel'] === 'string') p.blurKernel = f['blur-kernel']
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
 * The model a command uses: `--model`, else the task's bundled student for
 * its options (`Task.bundled`); options no student was trained for are a
 * usage error naming `--model`.
 */
export function modelFile(args: Parsed): string {
  const m = args.flags['model']
  if (typeof m === 'string') return m
  const setup = taskFromArgs(args)
  const file = setup.task.bundled(setup.params)
  if (file === null) {
    throw new UsageError(`--task ${setup.task.name} has no bundled model for ${describeParams(setup)}; pass --model CKPT (a checkpoint or published weights)`)
  }
  return defaultStudent(file)
}

/** `--self-ensemble`, shared by the commands that restore images (`eval`, `restore`). */
export const selfEnsembleFlag: FlagSpec = {
  type: 'boolean',
  description: 'restore each image in its 8 orientations and average them (8 forward passes: 8× the time and energy)',
}

/** The model as the command runs it: wrapped in the 8-orientation self-ensemble when `--self-ensemble` is given. */
export function restorerFromArgs(args: Parsed, model: Restorer): Restorer {
  return args.flags['self-ensemble'] === true ? selfEnsemble(model) : model
}

/** A task's options as flags, for messages. */
function describeParams(setup: TaskSetup): string {
  const p = setup.params
  const parts = [
    p.sigma !== null ? `--sigma ${Array.isArray(p.sigma) ? p.sigma.join('-') : p.sigma}` : null,
    p.quality !== null ? `--quality ${p.quality}` : null,
    p.blurKernel !== null ? `--blur-kernel ${p.blurKernel}` : null,
    p.blur !== null ? `--blur ${p.blur}` : null,
  ].filter((x): x is string => x !== null)
  return parts.length ? parts.join(' ') : 'its defaults'
}

/** Whether `dir` is a folder (for messages that say what is missing). */
export function isFolder(dir: string): boolean {
  return fs.existsSync(dir) && fs.statSync(dir).isDirectory()
}
