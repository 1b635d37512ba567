/**
 * Reading training runs for the report: a run is a JSONL step log
 * `NAME.log.jsonl` with (when training got that far) its checkpoint sidecar
 * `NAME.json` beside it. A folder given to the report holds runs directly
 * (`spikeir distill --out DIR`) or one level down (the demo's `teacher/`,
 * `student-hkd/`, `student-baseline/`).
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import type { CheckpointInfo } from '../train/checkpoint'
import type { StepRecord } from '../train/distill'

/** What a run trained: an ANN teacher, a student with hints, or a student without (the baseline). */
export type RunRole = 'teacher' | 'hints' | 'no-hints' | 'unknown'

/** One training run as found on disk. */
export interface Run {
  /** Checkpoint name (`student-hkd`). */
  name: string
  dir: string
  /** Unique, human-readable name in the report (the folder is added when names collide). */
  label: string
  role: RunRole
  /** Step records in step order. */
  steps: StepRecord[]
  /** Validation history (from the sidecar). */
  validation: { step: number; metrics: Record<string, number> }[]
  /** The sidecar path, or null when the run never wrote a checkpoint. */
  checkpoint: string | null
  info: CheckpointInfo | null
  /** Log lines that were not valid JSON (a torn last line of a killed run). */
  skippedLines: number
}

/** Reads a JSONL step log, skipping lines that do not parse. */
export function readStepLog(file: string): { steps: StepRecord[]; skipped: number } {
  const steps: StepRecord[] = []
  let skipped = 0
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue
    try {
      const r = JSON.parse(line) as StepRecord
      // Logs written before output distillation have no output term: it was 0.
      if (typeof r.step === 'number' && typeof r.loss === 'number') steps.push({ ...r, output: typeof r.output === 'number' ? r.output : 0 })
      else skipped++
    } catch {
      skipped++
    }
  }
  steps.sort((a, b) => a.step - b.step)
  return { steps, skipped }
}

function roleOf(info: CheckpointInfo | null, steps: readonly StepRecord[]): RunRole {
  const model = info?.config['model'] as { kind?: string } | undefined
  if (model?.kind) {
    if (model.kind !== 'spikerir') return 'teacher'
    return info?.config['teacher'] ? 'hints' : 'no-hints'
  }
  // No sidecar yet: a positive hint term is the only trace of a teacher.
  return steps.some((s) => s.hint > 0) ? 'hints' : 'unknown'
}

function readRun(logFile: string): Run {
  const dir = path.dirname(logFile)
  const name = path.basename(logFile, '.log.jsonl')
  const { steps, skipped } = readStepLog(logFile)
  const sidecar = path.join(dir, `${name}.json`)
  let info: CheckpointInfo | null = null
  if (fs.existsSync(sidecar)) {
    try {
      const parsed = JSON.parse(fs.readFileSync(sidecar, 'utf8')) as CheckpointInfo
      if (parsed.format === 'spikeir-checkpoint') info = parsed
    } catch (e) {
      throw new Error(`report: checkpoint sidecar '${sidecar}' is not valid JSON: ${e instanceof Error ? e.message : String(e)}`)
    }
  }
  const validation = ((info?.metrics['validation'] ?? []) as { step: number; metrics: Record<string, number> }[]).filter((v) => typeof v.step === 'number')
  return { name, dir, label: name, role: roleOf(info, steps), steps, validation, checkpoint: info ? sidecar : null, info, skippedLines: skipped }
}

function logsIn(dir: string): string[] {
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.log.jsonl'))
    .sort()
    .map((f) => path.join(dir, f))
}

const ROLE_ORDER: Record<RunRole, number> = { teacher: 0, hints: 1, 'no-hints': 2, unknown: 3 }

/**
 * Finds the runs of each argument (a run folder, a folder of run folders, or a
 * `NAME.log.jsonl`/`NAME.json` file); teacher first, then students with and
 * without hints. Errors name the argument that holds no run.
 */
export function collectRuns(args: readonly string[]): Run[] {
  const runs: Run[] = []
  for (const arg of args) {
    if (!fs.existsSync(arg)) throw new Error(`report: '${arg}' does not exist`)
    let logs: string[]
    if (fs.statSync(arg).isFile()) {
      const log = arg.endsWith('.log.jsonl') ? arg : arg.replace(/\.json$/, '.log.jsonl')
      if (!fs.existsSync(log)) throw new Error(`report: '${arg}' has no step log '${log}' beside it`)
      logs = [log]
    } else {
      logs = logsIn(arg)
      if (logs.length === 0) {
        const subdirs = fs
          .readdirSync(arg, { withFileTypes: true })
          .filter((d) => d.isDirectory())
          .map((d) => path.join(arg, d.name))
          .sort()
        logs = subdirs.flatMap(logsIn)
      }
      if (logs.length === 0) throw new Error(`report: '${arg}' holds no training run (no NAME.log.jsonl in it or in its sub-folders)`)
    }
    for (const log of logs) if (!runs.some((r) => path.resolve(r.dir, `${r.name}.log.jsonl`) === path.resolve(log))) runs.push(readRun(log))
  }
  runs.sort((a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role])
  // Two runs named alike (both `student`, in out/hkd and out/baseline) are told apart by their folders.
  for (const r of runs) {
    const clash = runs.filter((o) => o.name === r.name).length > 1
    r.label = clash ? `${path.basename(r.dir)}/${r.name}` : r.name
  }
  return runs
}

/** The demo's `results.json` in any of the folders, if there is one. */
export function readDemoResults(args: readonly string[]): Record<string, unknown> | null {
  for (const arg of args) {
    const file = path.join(arg, 'results.json')
    if (fs.existsSync(file) && fs.statSync(arg).isDirectory()) {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>
      } catch {
        return null
      }
    }
  }
  return null
}
