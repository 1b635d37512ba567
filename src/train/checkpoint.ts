/**
 * Checkpoints (DESIGN §8): the model's parameters and buffers in a
 * safetensors file with PyTorch-style names, training state (optimizer
 * moments, hint adapters) in a second safetensors file, and a JSON sidecar
 * with config, step, seed and metrics.
 *
 * Files carry the step in their names and are each written atomically; the
 * sidecar `NAME.json` is written last and names them, so a write interrupted
 * at any point leaves the previous checkpoint intact and loadable.
 *
 * @module
 */
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
}

/** Writes `contents` to `file` atomically (temporary file, then rename). */
export function writeFileAtomic(file: string, contents: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const tmp = `${file}.tmp-${process.pid}`
  fs.writeFileSync(tmp, contents)
  fs.renameSync(tmp, file)
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
  const modelFile = `${name}-step${info.step}.safetensors`
  const stateFile = trainingState ? `${name}-step${info.step}.train.safetensors` : null
  model.saveSafetensors(path.join(dir, modelFile), { step: String(info.step) })
  if (trainingState && stateFile) writeSafetensors(path.join(dir, stateFile), trainingState)
  const sidecar = path.join(dir, `${name}.json`)
  const full: CheckpointInfo = { format: 'spikeir-checkpoint', version: 1, ...info, model: modelFile, trainingState: stateFile }
  writeFileAtomic(sidecar, JSON.stringify(full, null, 2) + '\n')
  const keep = new Set([modelFile, stateFile])
  for (const f of fs.readdirSync(dir)) {
    if (f.startsWith(`${name}-step`) && f.endsWith('.safetensors') && !keep.has(f)) fs.rmSync(path.join(dir, f))
  }
  return sidecar
}

/** Reads a checkpoint's sidecar (`NAME.json`, or a model file beside one). */
export function readCheckpointInfo(file: string): { info: CheckpointInfo; dir: string } {
  const sidecar = file.endsWith('.json') ? file : file.replace(/(-step\d+)?(\.train)?\.safetensors$/, '.json')
  if (!fs.existsSync(sidecar)) throw new Error(`checkpoint: no sidecar '${sidecar}' (expected the JSON written with the model)`)
  let info: CheckpointInfo
  try {
    info = JSON.parse(fs.readFileSync(sidecar, 'utf8'))
  } catch (e) {
    throw new Error(`checkpoint: '${sidecar}' is not valid JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
  if (info.format !== 'spikeir-checkpoint') throw new Error(`checkpoint: '${sidecar}' is not a spikeir checkpoint`)
  return { info, dir: path.dirname(sidecar) }
}

/** Loads the model weights of a checkpoint into `model`; returns the sidecar. */
export function loadCheckpoint(file: string, model: Module): { info: CheckpointInfo; trainingState: NamedArray[] | null } {
  const { info, dir } = readCheckpointInfo(file)
  model.loadSafetensors(path.join(dir, info.model))
  const trainingState = info.trainingState ? readSafetensors(path.join(dir, info.trainingState)).tensors : null
  return { info, trainingState }
}

/**
 * Copies a checkpoint's model (not its optimizer state) to a new sidecar
 * `file` (`DIR/NAME.json` beside `DIR/NAME.safetensors`): what ships, e.g. the
 * bundled students under `weights/`. Config, step, seed and metrics are kept,
 * so the copy still says how it was trained. Returns the new sidecar's path.
 */
export function exportCheckpoint(source: string, file: string): string {
  if (!file.endsWith('.json')) throw new Error(`export: the destination must be a sidecar NAME.json, got '${file}'`)
  const { info, dir } = readCheckpointInfo(source)
  const from = path.join(dir, info.model)
  if (!fs.existsSync(from)) throw new Error(`export: '${source}' names a model file '${from}' that does not exist`)
  const name = path.basename(file, '.json')
  const modelFile = `${name}.safetensors`
  writeFileAtomic(path.join(path.dirname(file), modelFile), fs.readFileSync(from))
  const out: CheckpointInfo = { ...info, model: modelFile, trainingState: null }
  writeFileAtomic(file, JSON.stringify(out, null, 2) + '\n')
  return file
}
