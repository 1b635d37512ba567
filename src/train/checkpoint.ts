/**
 * Checkpoints (DESIGN §8): the model's parameters and buffers in a
 * safetensors file with PyTorch-style names, training state (optimizer
 * moments, hint adapters) in a second safetensors file, and a JSON sidecar
 * with config, step, seed and metrics.
 *
 * Files carry the step in their names and are each written atomically and
 * flushed to disk (file before its rename, folder after); the sidecar
 * `NAME.json` is written last and names them with their SHA-256, so a write
 * interrupted at any point leaves the previous checkpoint intact and loadable,
 * and a model and optimizer state of different steps never load as a pair.
 *
 * @module
 */
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'

import { readSafetensors, writeSafetensors, type NamedArray } from '../io'
import type { Module } from '../nn/module'

/** The JSON sidecar. */
export interface CheckpointInfo {
  format: 'spikeir-checkpoint'
  version: 1
  step: number
  seed: number
  config: Record<string, unknown>
  metrics: Record<string, unknown>
  /** File names (relative to the sidecar) of the model and training state. */
  model: string
  trainingState: string | null
  /** SHA-256 (hex) of those files, checked on load; absent in checkpoints that predate it. */
  sha256?: { model: string; trainingState: string | null }
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/**
 * Kill tests set `SPIKEIR_TEST_CHECKPOINT_PAUSE_MS` to hold each stage of a
 * checkpoint write open that long, so that random kills land inside it often
 * enough to be tested; unset, this does nothing.
 */
function pauseForKillTests(): void {
  const ms = Number(process.env['SPIKEIR_TEST_CHECKPOINT_PAUSE_MS'] ?? 0)
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** Flushes a folder's entries (a rename in it) to disk; only Unix can open a folder for that. */
function syncFolder(dir: string): void {
  if (process.platform === 'win32') return
  const fd = fs.openSync(dir, 'r')
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Writes `contents` to `file` atomically and durably: a temporary file beside
 * it, flushed before the rename (else a crash can leave a short file under the
 * final name), then the folder flushed (else the old file can come back).
 */
export function writeFileAtomic(file: string, contents: string | Uint8Array): void {
  const dir = path.dirname(file)
  fs.mkdirSync(dir, { recursive: true })
  const tmp = `${file}.tmp-${process.pid}`
  try {
    const fd = fs.openSync(tmp, 'w')
    try {
      fs.writeFileSync(fd, contents)
      fs.fsyncSync(fd)
    } finally {
      fs.closeSync(fd)
    }
    pauseForKillTests()
    fs.renameSync(tmp, file)
  } catch (e) {
    fs.rmSync(tmp, { force: true })
    throw new Error(`cannot write '${file}': ${e instanceof Error ? e.message : String(e)}`)
  }
  syncFolder(dir)
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Removes temporary files of checkpoint `name` left in `dir` by writers that were killed. */
function removeStaleTemporaries(dir: string, name: string): void {
  for (const f of fs.readdirSync(dir)) {
    const m = /\.tmp-(\d+)$/.exec(f)
    if (!m || !(f.startsWith(`${name}-step`) || f.startsWith(`${name}.`))) continue
    const pid = Number(m[1])
    if (pid !== process.pid && !alive(pid)) fs.rmSync(path.join(dir, f), { force: true })
  }
}

/**
 * Saves `model` (and optional training state) as checkpoint `NAME` in `dir`:
 * `NAME-stepS.safetensors`, `NAME-stepS.train.safetensors`, `NAME.json`.
 * Older step files of the same name are removed after the sidecar moves on.
 */
export function saveCheckpoint(
  dir: string,
  name: string,
  model: Module,
  info: Omit<CheckpointInfo, 'format' | 'version' | 'model' | 'trainingState'>,
  trainingState: NamedArray[] | null = null,
): string {
  fs.mkdirSync(dir, { recursive: true })
  removeStaleTemporaries(dir, name)
  const modelFile = `${name}-step${info.step}.safetensors`
  const stateFile = trainingState ? `${name}-step${info.step}.train.safetensors` : null
  // Each file is durable before the sidecar names it; the hashes are of what
  // is on disk now, so a later change to either file is caught on load.
  model.saveSafetensors(path.join(dir, modelFile), { step: String(info.step) })
  const hashes: { model: string; trainingState: string | null } = { model: sha256(fs.readFileSync(path.join(dir, modelFile))), trainingState: null }
  pauseForKillTests()
  if (trainingState && stateFile) {
    writeSafetensors(path.join(dir, stateFile), trainingState, { step: String(info.step) })
    hashes.trainingState = sha256(fs.readFileSync(path.join(dir, stateFile)))
    pauseForKillTests()
  }
  const sidecar = path.join(dir, `${name}.json`)
  const full: CheckpointInfo = { format: 'spikeir-checkpoint', version: 1, ...info, model: modelFile, trainingState: stateFile, sha256: hashes }
  writeFileAtomic(sidecar, JSON.stringify(full, null, 2) + '\n')
  const keep = new Set([modelFile, stateFile])
  for (const f of fs.readdirSync(dir)) {
    if (f.startsWith(`${name}-step`) && f.endsWith('.safetensors') && !keep.has(f)) fs.rmSync(path.join(dir, f))
  }
  return sidecar
}

/** Reads a checkpoint's sidecar (`NAME.json`, or a model file beside one). */
export function readCheckpointInfo(file: string): { info: CheckpointInfo; dir: string; sidecar: string } {
  const sidecar = file.endsWith('.json') ? file : file.replace(/(-step\d+)?(\.train)?\.safetensors$/, '.json')
  if (!fs.existsSync(sidecar)) throw new Error(`checkpoint: no sidecar '${sidecar}' (expected the JSON written with the model)`)
  if (fs.statSync(sidecar).isDirectory()) throw new Error(`checkpoint '${sidecar}' is a folder, not a sidecar file`)
  let raw: unknown
  try {
    raw = JSON.parse(fs.readFileSync(sidecar, 'utf8'))
  } catch (e) {
    throw new Error(`checkpoint: '${sidecar}' is not valid JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  return { info: checkCheckpointInfo(raw, sidecar), dir: path.dirname(sidecar), sidecar }
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** A file name beside the sidecar: no folders, so a sidecar cannot point elsewhere. */
const isSiblingName = (v: unknown): v is string => typeof v === 'string' && v !== '' && v === path.basename(v) && v !== '.' && v !== '..'

const isHash = (v: unknown): boolean => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)

/**
 * Checks the fields of a parsed sidecar, naming the file and each bad
 * field, so a hand-edited or foreign JSON file is refused before any tensor is read.
 */
export function checkCheckpointInfo(raw: unknown, sidecar: string): CheckpointInfo {
  const where = `checkpoint '${sidecar}'`
  if (!isObject(raw)) throw new Error(`${where}: the sidecar must be a JSON object, got ${typeName(raw)}`)
  if (raw['format'] !== 'spikeir-checkpoint') {
    throw new Error(`${where} is not a spikeir checkpoint (its "format" is ${JSON.stringify(raw['format']) ?? 'missing'}, expected "spikeir-checkpoint")`)
  }
  if (raw['version'] !== 1) throw new Error(`${where} has version ${JSON.stringify(raw['version']) ?? 'missing'}; this spikeir reads version 1`)
  const problems: string[] = []
  const need = (ok: boolean, field: string, what: string) => {
    if (!ok) problems.push(`"${field}" must be ${what}, got ${JSON.stringify(raw[field]) ?? 'nothing'}`)
  }
  const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  need(count(raw['step']), 'step', 'an integer ≥ 0')
  need(count(raw['seed']), 'seed', 'an integer ≥ 0')
  need(isObject(raw['config']), 'config', 'an object')
  need(isObject(raw['metrics']), 'metrics', 'an object')
  // A resumed run continues the validation history it finds here.
  const history = isObject(raw['metrics']) ? raw['metrics']['validation'] : undefined
  if (history !== undefined && !(Array.isArray(history) && history.every((h) => isObject(h) && count(h['step']) && isObject(h['metrics'])))) {
    problems.push(`"metrics.validation" must be a list of { step, metrics }, got ${JSON.stringify(history)}`)
  }
  need(isSiblingName(raw['model']), 'model', 'a file name beside the sidecar')
  need(raw['trainingState'] === null || isSiblingName(raw['trainingState']), 'trainingState', 'null or a file name beside the sidecar')
  const h = raw['sha256']
  need(h === undefined || (isObject(h) && isHash(h['model']) && (h['trainingState'] === null || isHash(h['trainingState']))), 'sha256', '{ model, trainingState } SHA-256 hex digests')
  if (problems.length) throw new Error(`${where}: ${problems.join('; ')}`)
  return raw as unknown as CheckpointInfo
}

/** Checks that a file the sidecar names exists and is the one it was written with. */
function checkNamedFile(sidecar: string, role: string, file: string, expected: string | null | undefined): void {
  if (!fs.existsSync(file)) throw new Error(`checkpoint '${sidecar}': its ${role} file '${file}' does not exist`)
  if (typeof expected !== 'string') return
  const actual = sha256(fs.readFileSync(file))
  if (actual !== expected) {
    throw new Error(
      `checkpoint '${sidecar}': its ${role} file '${file}' is not the one written with it (SHA-256 ${actual.slice(0, 12)}…, the sidecar names ${expected.slice(0, 12)}…); ` +
        'it was changed or replaced afterwards — restore it or train from another checkpoint',
    )
  }
}

/**
 * Loads the model weights of a checkpoint into `model`; returns the sidecar
 * and the training state. Each file must match the SHA-256 the sidecar
 * recorded (when it has them), so weights and optimizer state of different
 * writes are refused rather than resumed. `load` replaces the strict
 * by-name load (a student growing from a smaller one's weights).
 *
 * @example
 * ```ts
 * const net = new DnCNN({ depth: 4, channels: 8 })
 * const sidecar = saveCheckpoint('ckpt', 'teacher', net, { step: 10, seed: 0, config: { model: { kind: 'dncnn', options: { depth: 4, channels: 8 } } }, metrics: {} })
 * const copy = new DnCNN({ depth: 4, channels: 8, seed: 5 })
 * loadCheckpoint(sidecar, copy).info.step // 10; copy now holds net's weights
 * ```
 */
export function loadCheckpoint(
  file: string,
  model: Module,
  options: { load?: (tensors: NamedArray[]) => void } = {},
): { info: CheckpointInfo; trainingState: NamedArray[] | null } {
  const { info, dir, sidecar } = readCheckpointInfo(file)
  const modelFile = path.join(dir, info.model)
  checkNamedFile(sidecar, 'model', modelFile, info.sha256?.model)
  let trainingState: NamedArray[] | null = null
  if (info.trainingState) {
    const stateFile = path.join(dir, info.trainingState)
    checkNamedFile(sidecar, 'training state', stateFile, info.sha256?.trainingState)
    const { tensors, metadata } = readSafetensors(stateFile)
    if (metadata['step'] !== undefined && metadata['step'] !== String(info.step)) {
      throw new Error(`checkpoint '${sidecar}' is at step ${info.step} but its training state '${stateFile}' is from step ${metadata['step']}`)
    }
    trainingState = tensors
  }
  try {
    if (options.load) options.load(readSafetensors(modelFile).tensors)
    else model.loadSafetensors(modelFile)
  } catch (e) {
    const m = e instanceof Error ? e.message : String(e)
    // The names of a foreign model's tensors can run to hundreds of entries.
    const brief = m.length > 400 ? `${m.slice(0, 400)} …` : m
    throw new Error(m.includes(modelFile) ? brief : `checkpoint '${sidecar}': its model file '${modelFile}' does not fit this ${model.constructor.name}: ${brief}`)
  }
  return { info, trainingState }
}

/**
 * Copies a checkpoint's model (not its optimizer state) to a new sidecar
 * `file` (`DIR/NAME.json` beside `DIR/NAME.safetensors`): what ships, e.g. the
 * bundled students under `weights/`. Config, step, seed and metrics are kept,
 * so the copy still says how it was trained. With `trained`, a finished run
 * with a weight average (`ema`) gives its trained weights instead of their
 * average (what the average is worth is then one `eval` of each). Returns the
 * new sidecar's path.
 */
export function exportCheckpoint(source: string, file: string, options: { trained?: boolean } = {}): string {
  if (!file.endsWith('.json')) throw new Error(`export: the destination must be a sidecar NAME.json, got '${file}'`)
  const { info, dir, sidecar } = readCheckpointInfo(source)
  const from = path.join(dir, info.model)
  if (!fs.existsSync(from)) throw new Error(`export: '${source}' names a model file '${from}' that does not exist`)
  checkNamedFile(sidecar, 'model', from, info.sha256?.model)
  const name = path.basename(file, '.json')
  const modelFile = `${name}.safetensors`
  const target = path.join(path.dirname(file), modelFile)
  let out: CheckpointInfo
  if (options.trained) {
    if (!info.trainingState) throw new Error(`export --trained-weights: '${sidecar}' has no training state, so no trained weights apart from its model`)
    const stateFile = path.join(dir, info.trainingState)
    checkNamedFile(sidecar, 'training state', stateFile, info.sha256?.trainingState)
    // A finished run with an average saved the average as its model and the trained weights as `raw.*`.
    const raw = new Map(readSafetensors(stateFile).tensors.filter((a) => a.name.startsWith('raw.')).map((a) => [a.name.slice(4), a] as const))
    if (raw.size === 0) throw new Error(`export --trained-weights: '${sidecar}' holds no trained weights apart from its model (only a finished run with --ema keeps both)`)
    const { tensors, metadata } = readSafetensors(from)
    const missing = [...raw.keys()].filter((n) => !tensors.some((t) => t.name === n))
    if (missing.length) throw new Error(`export --trained-weights: '${sidecar}': trained weights ${missing.join(', ')} are not in its model`)
    writeSafetensors(target, tensors.map((t) => { const r = raw.get(t.name); return r ? { ...r, name: t.name } : t }), metadata)
    out = { ...info, model: modelFile, trainingState: null, ...(info.sha256 ? { sha256: { model: sha256(fs.readFileSync(target)), trainingState: null } } : {}), metrics: { ...info.metrics, exported: 'trained weights (not their average)' } }
  } else {
    writeFileAtomic(target, fs.readFileSync(from))
    out = { ...info, model: modelFile, trainingState: null, ...(info.sha256 ? { sha256: { model: info.sha256.model, trainingState: null } } : {}) }
  }
  writeFileAtomic(file, JSON.stringify(out, null, 2) + '\n')
  return file
}
