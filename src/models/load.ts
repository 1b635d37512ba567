/**
 * Building models from checkpoints: the sidecar's `config.model` names the
 * architecture and its options, so a checkpoint file alone recreates the model.
 * A bare safetensors file without a sidecar is read as published weights: PReNet's
 * when it holds PReNet's tensor names, else DnCNN's.
 *
 * @module
 */
import * as fs from 'node:fs'

import { describeRule, type NumberRule } from '../cli/args'
import { readSafetensors } from '../io'
import type { Module } from '../nn/module'
import { loadCheckpoint, readCheckpointInfo } from '../train/checkpoint'
import { DnCNN } from './dncnn'
import { GCANet, type GCANetOptions } from './gcanet'
import { LKDNet, type LKDNetOptions } from './lkdnet'
import { PReNet, type PReNetOptions } from './prenet'
import { SpikerIR, type SpikerIRConfig } from './spikerir'
import { UNet, type UNetOptions } from './unet'

/** The architecture part of a checkpoint config. */
export type ModelSpec =
  | { kind: 'spikerir'; options: Partial<SpikerIRConfig> }
  | { kind: 'unet'; options: UNetOptions }
  | { kind: 'dncnn'; options: { depth?: number; channels?: number; imageChannels?: number } }
  | { kind: 'prenet'; options: PReNetOptions }
  | { kind: 'lkdnet'; options: Pick<LKDNetOptions, 'seed'> }
  | { kind: 'gcanet'; options: GCANetOptions }

/** A model and the (denoising) restore function used by eval and denoise. */
export interface LoadedModel {
  spec: ModelSpec
  model: Module & {
    /** The restored image of a noisy `[1, C, H, W]` one. */
    forward(x: import('../tensor').Tensor): import('../tensor').Tensor
  }
  /** Training step of the checkpoint (null for published weights). */
  step: number | null
  /** Channels of the images the model restores (1 grey, 3 colour). */
  imageChannels: number
}

/** Creates an untrained model from its spec. */
export function buildModel(spec: ModelSpec): LoadedModel['model'] {
  switch (spec.kind) {
    case 'spikerir':
      return new SpikerIR(spec.options)
    case 'unet':
      return new UNet(spec.options)
    case 'dncnn':
      return new DnCNN(spec.options)
    case 'prenet':
      return new PReNet(spec.options)
    case 'lkdnet':
      return new LKDNet(spec.options)
    case 'gcanet':
      return new GCANet(spec.options)
  }
}

const int = (min: number, max?: number): NumberRule => ({ integer: true, min, ...(max === undefined ? {} : { max }) })

/** The options each architecture takes, with the rule of each number; anything else is refused. */
const OPTION_RULES: Record<ModelSpec['kind'], Record<string, NumberRule | 'blocks' | 'object'>> = {
  spikerir: {
    width: int(1, 1024),
    blocks: 'blocks',
    timeSteps: int(1, 64),
    imageChannels: int(1, 3),
    neuron: 'object',
    temporalReduction: int(1),
    channelReduction: int(1),
    seed: int(0),
  },
  unet: { width: int(1, 1024), imageChannels: int(1, 3), seed: int(0) },
  dncnn: { depth: int(2, 256), channels: int(1, 1024), imageChannels: int(1, 3), seed: int(0) },
  prenet: { stages: int(1, 64), channels: int(1, 1024), seed: int(0) },
  lkdnet: { seed: int(0) },
  gcanet: { channels: int(1, 1024), seed: int(0) },
}

function typeName(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v
}

function breaks(v: unknown, rule: NumberRule): boolean {
  return (
    typeof v !== 'number' ||
    !Number.isFinite(v) ||
    (rule.integer === true && !Number.isSafeInteger(v)) ||
    (rule.min !== undefined && (rule.exclusiveMin ? v <= rule.min : v < rule.min)) ||
    (rule.max !== undefined && v > rule.max)
  )
}

/** What each neuron option may be (see `NeuronOptions`). */
const NEURON_RULES: Record<string, (v: unknown) => boolean> = {
  kind: (v) => v === 'if' || v === 'lif' || v === 'plif',
  tau: (v) => typeof v === 'number' && Number.isFinite(v) && v > 1,
  vThreshold: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0,
  vReset: (v) => v === null || (typeof v === 'number' && Number.isFinite(v)),
  decayInput: (v) => typeof v === 'boolean',
  detachReset: (v) => typeof v === 'boolean',
  surrogate: (v) => v === 'sigmoid' || v === 'atan' || v === 'triangle',
  alpha: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0,
}

const NEURON_WANTS: Record<string, string> = {
  kind: "'if', 'lif' or 'plif'",
  tau: 'a number > 1',
  vThreshold: 'a number > 0',
  vReset: 'a number, or null (soft reset)',
  decayInput: 'true or false',
  detachReset: 'true or false',
  surrogate: "'sigmoid', 'atan' or 'triangle'",
  alpha: 'a number > 0',
}

function checkNeuron(neuron: Record<string, unknown>, at: string): void {
  for (const [k, v] of Object.entries(neuron)) {
    // Own keys only: JSON may name `__proto__` or `constructor`.
    const ok = Object.hasOwn(NEURON_RULES, k) ? NEURON_RULES[k] : undefined
    if (!ok) throw new Error(`${at}.${k}: unknown neuron option (known: ${Object.keys(NEURON_RULES).join(', ')})`)
    if (v !== undefined && !ok(v)) throw new Error(`${at}.${k} must be ${NEURON_WANTS[k]}, got ${JSON.stringify(v) ?? typeName(v)}`)
  }
}

/**
 * Checks an architecture spec (a sidecar's or a recipe's `model`): a known
 * kind and options of the right types and ranges. `where` names its origin
 * in the error, e.g. `checkpoint 'a.json': config.model`.
 */
export function checkModelSpec(value: unknown, where: string): ModelSpec {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where} must be an object { kind, options }, got ${typeName(value)}`)
  }
  const { kind, options = {} } = value as { kind?: unknown; options?: unknown }
  if (typeof kind !== 'string' || !Object.hasOwn(OPTION_RULES, kind)) {
    throw new Error(`${where}.kind must be one of ${Object.keys(OPTION_RULES).join(', ')}, got ${JSON.stringify(kind) ?? 'nothing'}`)
  }
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new Error(`${where}.options must be an object, got ${typeName(options)}`)
  }
  const rules = OPTION_RULES[kind as ModelSpec['kind']]
  for (const [k, v] of Object.entries(options)) {
    const rule = Object.hasOwn(rules, k) ? rules[k] : undefined
    const at = `${where}.options.${k}`
    if (rule === undefined) throw new Error(`${at}: unknown option for ${kind} (known: ${Object.keys(rules).join(', ')})`)
    if (v === undefined) continue
    if (rule === 'object') {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at} must be an object, got ${typeName(v)}`)
      checkNeuron(v as Record<string, unknown>, at)
    } else if (rule === 'blocks') {
      if (!Array.isArray(v) || v.length !== 6 || v.some((b) => breaks(b, int(1, 64)))) {
        throw new Error(`${at} must be 6 integers ≥ 1 (blocks per level), got ${JSON.stringify(v)}`)
      }
    } else if (breaks(v, rule)) {
      throw new Error(`${at} must be ${describeRule(rule)}, got ${JSON.stringify(v)}`)
    }
  }
  // The rule above admits 1–3; images have 1 or 3 channels.
  if ((options as { imageChannels?: number }).imageChannels === 2) throw new Error(`${where}.options.imageChannels must be 1 or 3, got 2`)
  return { kind, options } as ModelSpec
}

/**
 * Published DnCNN weights: a safetensors file without a sidecar. Depth and
 * channels come from the tensors (17 layers for DnCNN-S, 20 for DnCNN-B,
 * CDnCNN-B and DnCNN-3; grey or RGB); every tensor must then be one of that
 * DnCNN's, of its shape. A file of another model says so, briefly.
 */
function loadDnCNNWeights(file: string): DnCNN {
  const { tensors } = readSafetensors(file)
  let found: ReturnType<typeof DnCNN.optionsOf>
  try {
    found = DnCNN.optionsOf(tensors, `model '${file}'`)
  } catch (e) {
    throw new Error(`model '${file}' has no sidecar, so it is read as DnCNN weights, but ${e instanceof Error ? e.message.replace(`model '${file}': `, '') : String(e)}`)
  }
  const model = new DnCNN(found)
  const expected = model.stateDict()
  const given = new Set(tensors.map((a) => a.name))
  const missing = [...expected.keys()].filter((n) => !given.has(n))
  const extra = tensors.filter((a) => !expected.has(a.name)).map((a) => a.name)
  const wrong = tensors
    .filter((a) => expected.has(a.name) && expected.get(a.name)!.shape.join(',') !== a.shape.join(','))
    .map((a) => `${a.name} is [${a.shape.join(', ')}], a DnCNN of ${found.depth} layers has [${expected.get(a.name)!.shape.join(', ')}]`)
  const few = (v: string[]) => `${v.length} (${v.slice(0, 3).join(', ')}${v.length > 3 ? ', …' : ''})`
  const problems = [
    ...(missing.length ? [`missing tensors ${few(missing)}`] : []),
    ...(extra.length ? [`unexpected tensors ${few(extra)}`] : []),
    ...(wrong.length ? [`wrong shapes ${few(wrong)}`] : []),
  ]
  if (problems.length) {
    model.dispose()
    throw new Error(`model '${file}' has no sidecar, so it is read as DnCNN weights, but it does not match: ${problems.join('; ')}`)
  }
  model.loadStateDict(tensors)
  return model.eval()
}

/**
 * Loads a checkpoint (its sidecar or model file), or bare DnCNN weights.
 *
 * @example
 * ```ts
 * const { model, spec, step } = loadModel(defaultStudent()) // the bundled σ = 25 student
 * spec.kind // 'spikerir'
 * const noisy = Tensor.rand([1, 1, 40, 40], { seed: 1 })
 * restore(model, noisy).shape // [1, 1, 40, 40]
 * console.log(step)
 * ```
 */
export function loadModel(file: string): LoadedModel {
  if (!fs.existsSync(file)) throw new Error(`model '${file}' does not exist`)
  if (fs.statSync(file).isDirectory()) throw new Error(`model '${file}' is a folder; pass a checkpoint sidecar (.json) or a .safetensors file`)
  if (!file.endsWith('.json') && !file.endsWith('.safetensors')) {
    throw new Error(`model '${file}' is neither a checkpoint sidecar (.json) nor a safetensors file (.safetensors)`)
  }
  const sidecar = file.endsWith('.json') ? file : file.replace(/(-step\d+)?(\.train)?\.safetensors$/, '.json')
  if (!file.endsWith('.json') && !fs.existsSync(sidecar)) {
    // PReNet's ConvLSTM gates name it; its six published stages are not in the file.
    if (readSafetensors(file).tensors.some((a) => a.name === 'conv_i.0.weight')) {
      return { spec: { kind: 'prenet', options: {} }, model: PReNet.fromSafetensors(file), step: null, imageChannels: 3 }
    }
    // LKD-Net's selective-kernel fusion names it.
    if (readSafetensors(file).tensors.some((a) => a.name === 'fusion1.mlp.0.weight')) {
      return { spec: { kind: 'lkdnet', options: {} }, model: LKDNet.fromSafetensors(file), step: null, imageChannels: 3 }
    }
    // GCANet's gated fusion and transposed conv name it.
    if (readSafetensors(file).tensors.some((a) => a.name === 'deconv3.weight')) {
      return { spec: { kind: 'gcanet', options: {} }, model: GCANet.fromSafetensors(file), step: null, imageChannels: 3 }
    }
    const model = loadDnCNNWeights(file)
    const options = { depth: model.depth, channels: model.layers.items[0]!.outChannels, imageChannels: model.layers.items[0]!.inChannels }
    return { spec: { kind: 'dncnn', options }, model, step: null, imageChannels: options.imageChannels }
  }
  const { info } = readCheckpointInfo(file)
  const spec = checkModelSpec(info.config['model'], `checkpoint '${sidecar}': config.model`)
  const model = buildModel(spec)
  try {
    loadCheckpoint(file, model)
  } catch (e) {
    model.dispose()
    throw e
  }
  model.eval()
  const imageChannels = spec.kind === 'prenet' || spec.kind === 'lkdnet' || spec.kind === 'gcanet' ? 3 : (spec.options.imageChannels ?? 1)
  return { spec, model, step: info.step, imageChannels }
}
