/**
 * Files that ship with the package: the students the README's tables come
 * from, used when a command is given no `--model`.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

/**
 * A bundled student checkpoint (its sidecar) by file name under `weights/`;
 * by default the grey σ = 25 one.
 *
 * @example
 * ```ts
 * const { model } = loadModel(defaultStudent())
 * console.log(model.numParameters())
 * ```
 */
export function defaultStudent(name = 'spikerir_tiny_sigma25_long.json'): string {
  const file = path.resolve(__dirname, '..', '..', '..', 'weights', name)
  if (!fs.existsSync(file)) {
    throw new Error(`no bundled student at ${file}; pass --model CKPT (train one with 'spikeir distill')`)
  }
  return file
}
