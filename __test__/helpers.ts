import * as fs from 'node:fs'
import * as path from 'node:path'

/** The shared data folder beside the repository, or null when it is absent. */
export function sharedDir(): string | null {
  const dir = path.resolve(__dirname, '..', '..', '..', 'shared')
  return fs.existsSync(path.join(dir, 'data')) ? dir : null
}

/** Deterministic pseudo-random values in [-1, 1) (an LCG independent of the engine). */
export function lcg(seed: number, n: number): Float32Array {
  let s = (seed * 2654435761) >>> 0
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return (s / 2 ** 32) * 2 - 1
  })
}
