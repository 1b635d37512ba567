/**
 * Building models from checkpoints: the sidecar's `config.model` names the
 * architecture and its options, so a checkpoint file alone recreates the model.
 * A bare safetensors file without a sidecar is read as published DnCNN weights.
 *
 * @module
 */
import * as fs from 'node:fs'

import type { Module } from '../nn/module'
import { loadCheckpoint, readCheckpointInfo } from '../train/checkpoint'
import { DnCNN } from './dncnn'
import { SpikerIR, type SpikerIRConfig } from './spikerir'
import { UNet, type UNetOptions } from './unet'

/** The architecture part of a checkpoint config. */
export type ModelSpec =
  | { kind: 'spikerir'; options: Partial<SpikerIRConfig> }
  | { kind: 'unet'; options: UNetOptions }
  | { kind: 'dncnn'; options: { depth?: number; channels?: number; imageChannels?: number } }

/** A model and the (denoising) restore function used by eval and denoise. */
export interface LoadedModel {
  spec: ModelSpec
  model: Module & { forward(x: import('../tensor').Tensor): import('../tensor').Tensor }
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
  }
}

/** Loads a checkpoint (its sidecar or model file), or bare DnCNN weights. */
export function loadModel(file: string): LoadedModel {
  if (!fs.existsSync(file)) throw new Error(`model '${file}' does not exist`)
  const sidecar = file.endsWith('.json') ? file : file.replace(/(-step\d+)?(\.train)?\.safetensors$/, '.json')
  if (!file.endsWith('.json') && !fs.existsSync(sidecar)) {
    const model = DnCNN.fromSafetensors(file)
    return { spec: { kind: 'dncnn', options: {} }, model, step: null, imageChannels: 1 }
  }
  const { info } = readCheckpointInfo(file)
  const spec = info.config['model'] as ModelSpec | undefined
  if (!spec || !['spikerir', 'unet', 'dncnn'].includes(spec.kind)) {
    throw new Error(`model '${file}': its sidecar has no config.model (spikerir, unet or dncnn)`)
  }
  const model = buildModel(spec)
  loadCheckpoint(file, model)
  model.eval()
  return { spec, model, step: info.step, imageChannels: spec.options.imageChannels ?? 1 }
}
