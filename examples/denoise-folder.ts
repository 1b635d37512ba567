/**
 * Denoises every image of a folder into another folder, with the σ = 25
 * spiking student that ships with the package or any checkpoint.
 *
 *   node dist/examples/denoise-folder.js IN_DIR OUT_DIR [--model CKPT]
 *
 * Each output has the input's name and format. Images of any size work:
 * large ones are restored in overlapping tiles, so memory stays bounded.
 * In your own project, import from 'spikeir' instead of '../index'.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parseArgs } from 'node:util'

import { defaultStudent, listImages, loadModel, readImage, restore, scope, writeImage } from '../index'

const { values, positionals } = parseArgs({ options: { model: { type: 'string' } }, allowPositionals: true })
const [inDir, outDir] = positionals
if (!inDir || !outDir || positionals.length !== 2) {
  console.error('usage: denoise-folder IN_DIR OUT_DIR [--model CKPT]')
  process.exit(2)
}

const { model, imageChannels } = loadModel(values.model ?? defaultStudent())
const files = listImages(inDir)
fs.mkdirSync(outDir, { recursive: true })
const start = Date.now()
for (const [i, file] of files.entries()) {
  // listImages gives paths inside IN_DIR. One scope per image: its tensors are freed before the next one is read.
  scope(() => {
    // A grey model reads colour files as their luma.
    const noisy = readImage(file, { channels: imageChannels === 3 ? 3 : 1 })
    writeImage(path.join(outDir, path.basename(file)), restore(model, noisy))
    const [, , h, w] = noisy.shape
    console.log(`${i + 1}/${files.length} ${path.basename(file)} (${w}×${h})`)
  })
}
console.log(`denoised ${files.length} images into ${outDir} in ${((Date.now() - start) / 1000).toFixed(1)} s`)
model.dispose()
