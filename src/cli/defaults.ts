/**
 * Files that ship with the package: the σ = 25 student the README's numbers
 * come from, used when a command is given no `--model`.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

/**
 * The bundled σ = 25 student checkpoint (its sidecar).
 *
 * @example
 * ```ts
 * const { model } = loadModel(defaultStudent())
 * console.log(model.numParameters())
 * ```
 */
export function defaultStudent(): string {
  const file = path.resolve(__dirname, '..', '..', '..', 'weights', 'spikerir_tiny_sigma25.json')
  if (!fs.existsSync(file)) {
    throw new Error(`no bundled student at ${file}; pass --model CKPT (train one with 'spikeir distill')`)
  }
  return file
}
