import * as fs from 'node:fs'
import * as path from 'node:path'

import test, { type ExecutionContext } from 'ava'

/** The shared data folder beside the repository, or null when it is absent. */
export function sharedDir(): string | null {
  const dir = path.resolve(__dirname, '..', '..', '..', 'shared')
  return fs.existsSync(path.join(dir, 'data')) ? dir : null
}

/**
 * `test` where ../shared (published data and weights) is present, else
 * `test.skip`, so ava reports those tests as skipped, with the reason in the
 * title. With SPIKEIR_REQUIRE_SHARED=1 (CI) a missing ../shared fails instead.
 */
export function sharedTest(): { run: Register; shared: string } {
  const shared = sharedDir()
  if (shared !== null) return { run: test, shared }
  if (process.env['SPIKEIR_REQUIRE_SHARED'] === '1') {
    throw new Error('SPIKEIR_REQUIRE_SHARED=1 but ../shared (data and published weights) is absent')
  }
  return { run: (title, impl) => test.skip(`${title} (skipped: ../shared is absent)`, impl), shared: '' }
}

/** Registers one ava test. */
export type Register = (title: string, impl: (t: ExecutionContext) => void | Promise<void>) => void

/** Deterministic pseudo-random values in [-1, 1) (an LCG independent of the engine). */
export function lcg(seed: number, n: number): Float32Array {
  let s = (seed * 2654435761) >>> 0
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0
    return (s / 2 ** 32) * 2 - 1
  })
}
