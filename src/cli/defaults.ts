/**
 * Files that ship with the package: the students the README's tables come
 * from, used when a command is given no `--model`.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

/**
 * The bundled grey σ = 25 student that commands take without `--model`: the
 * width-12 student of one 12,000-step schedule with the default design, its
 * trained weights (README, "A longer run"; BSD68 28.81 dB).
 */
export const DEFAULT_STUDENT = 'spikerir_width12_sigma25.json'

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
export function defaultStudent(name = DEFAULT_STUDENT): string {
  const file = path.resolve(__dirname, '..', '..', '..', 'weights', name)
  if (!fs.existsSync(file)) {
    throw new Error(`no bundled student at ${file}; pass --model CKPT (train one with 'spikeir distill')`)
  }
  return file
}
