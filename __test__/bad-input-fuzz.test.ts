/**
 * Mutation fuzzing of the checkpoint sidecar reader (`readCheckpointInfo`)
 * and the model-spec check behind `loadModel` (`checkModelSpec`): seeded
 * mutants of valid sidecars — text edits (flips, deletes, inserts of JSON
 * tokens, truncation) and structural edits (a random field of the parsed
 * object set to a value of another type, removed, or given an extra key).
 *
 * Each mutant must either be accepted with fields of the documented types,
 * or refused with a plain `Error` whose message names the file: never a
 * `TypeError` or `RangeError` from reading a field that is not there.
 *
 * `SPIKEIR_FUZZ_SECONDS` sets the duration (default 2: the replay in
 * `npm test`), `SPIKEIR_FUZZ_SEED` the seed (default 1).
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { checkModelSpec } from '../src/models/load'
import { readCheckpointInfo } from '../src/train/checkpoint'

const root = path.resolve(__dirname, '..', '..')

/** SplitMix-style 32-bit generator (independent of the engine's RNG). */
function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x9e3779b9) >>> 0
    let z = s
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32
  }
}

const seeds: string[] = [
  fs.readFileSync(path.join(root, 'weights', 'spikerir_tiny_sigma25.json'), 'utf8'),
  JSON.stringify({
    format: 'spikeir-checkpoint',
    version: 1,
    step: 3,
    seed: 0,
    config: { model: { kind: 'unet', options: { width: 4, seed: 0 } } },
    metrics: { last: null, validation: [] },
    model: 'teacher-step3.safetensors',
    trainingState: 'teacher-step3.train.safetensors',
    sha256: { model: 'a'.repeat(64), trainingState: 'b'.repeat(64) },
  }),
  JSON.stringify({
    format: 'spikeir-checkpoint',
    version: 1,
    step: 0,
    seed: 7,
    config: { model: { kind: 'spikerir', options: { width: 8, timeSteps: 4, blocks: [1, 1, 1, 1, 1, 1], neuron: { kind: 'plif', tau: 2, vReset: null } } } },
    metrics: {},
    model: 's.safetensors',
    trainingState: null,
  }),
  JSON.stringify({ format: 'spikeir-checkpoint', version: 1, step: 1, seed: 1, config: { model: { kind: 'dncnn', options: { depth: 17 } } }, metrics: {}, model: 'd.safetensors', trainingState: null }),
]

/**
 * Mutants that once got past the checks, replayed first (accepted or refused,
 * but never a TypeError): JSON.parse makes `__proto__` an own key, and
 * `in` finds `toString` and `constructor` on every object.
 */
const regressions: string[] = [
  '{"format":"spikeir-checkpoint","version":1,"step":0,"seed":7,"config":{"model":{"kind":"spikerir","options":{"width":8,"neuron":{"kind":"plif","__proto__":"/abs/path"}}}},"metrics":{},"model":"s.safetensors","trainingState":null}',
  '{"format":"spikeir-checkpoint","version":1,"step":0,"seed":7,"config":{"model":{"kind":"toString","options":{}}},"metrics":{},"model":"s.safetensors","trainingState":null}',
  '{"format":"spikeir-checkpoint","version":1,"step":0,"seed":7,"config":{"model":{"kind":"unet","options":{"constructor":1}}},"metrics":{},"model":"s.safetensors","trainingState":null}',
]

const TOKENS = ['null', 'true', '-1', '0', '1e309', '1.5', '"x"', '""', '[]', '{}', '"../x"', '9007199254740993', '"spikerir"', '[1,2]', ',', ':', '"', '{', ']']
const VALUES: unknown[] = [null, true, false, -1, 0, 0.5, 2 ** 53, Number.MAX_VALUE, '', 'x', '../up', 'a/b', [], [1], {}, { kind: 'lif' }, '/abs/path']

/** Every path to a value inside `v`. */
function paths(v: unknown, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(at)
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out))
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...at, k], out)
  return out
}

function mutant(next: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(next() * a.length)]!
  const seed = pick(seeds)
  if (next() < 0.5) {
    // Structural: parse, edit one place, serialise.
    const doc = JSON.parse(seed) as Record<string, unknown>
    for (let k = 0; k < 1 + Math.floor(next() * 3); k++) {
      const all = paths(doc).filter((p) => p.length > 0)
      const p = pick(all)
      let parent: Record<string | number, unknown> = doc
      for (const key of p.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>
      const last = p[p.length - 1]!
      const r = next()
      if (r < 0.6) parent[last] = structuredClone(pick(VALUES))
      else if (r < 0.8) delete parent[last]
      else if (!Array.isArray(parent)) parent[pick(['extra', 'kind', 'options', 'neuron', 'tau', '__proto__', 'constructor'])] = structuredClone(pick(VALUES))
    }
    return JSON.stringify(doc)
  }
  // Textual: 1–4 edits.
  let s = seed
  for (let k = 0; k < 1 + Math.floor(next() * 4); k++) {
    const i = Math.floor(next() * (s.length + 1))
    const r = next()
    if (r < 0.25) s = s.slice(0, i) + s.slice(i + 1 + Math.floor(next() * 8))
    else if (r < 0.5) s = s.slice(0, i) + pick(TOKENS) + s.slice(i)
    else if (r < 0.7) s = s.slice(0, i) + String.fromCharCode(s.charCodeAt(i) ^ (1 << Math.floor(next() * 7))) + s.slice(i + 1)
    else if (r < 0.85) s = s.slice(0, i)
    else s = s.replace(/-?\d+(\.\d+)?/, pick(['-1', '0', '1e309', '1.5', '"7"', 'null']))
  }
  return s
}

const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0

test('the sidecar reader and model-spec check refuse every mutant with a message naming the file, or accept it well-typed', (t) => {
  const seconds = Number(process.env['SPIKEIR_FUZZ_SECONDS'] ?? 2)
  const seed = Number(process.env['SPIKEIR_FUZZ_SEED'] ?? 1)
  const next = rng(seed)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-fuzz-'))
  const file = path.join(dir, 'ck.json')
  const t0 = Date.now()
  let executions = 0
  let accepted = 0
  try {
    // The seeds and regressions as they are first, then mutants until the time is up.
    const fixed = [...seeds, ...regressions]
    for (let n = 0; n < fixed.length || Date.now() - t0 < seconds * 1000; n++) {
      const text = n < fixed.length ? fixed[n]! : mutant(next)
      fs.writeFileSync(file, text)
      executions++
      try {
        const { info } = readCheckpointInfo(file)
        const spec = checkModelSpec(info.config['model'], `checkpoint '${file}': config.model`)
        const ok =
          isCount(info.step) &&
          isCount(info.seed) &&
          typeof info.model === 'string' &&
          (info.trainingState === null || typeof info.trainingState === 'string') &&
          ['spikerir', 'unet', 'dncnn'].includes(spec.kind) &&
          typeof spec.options === 'object'
        if (!ok) t.fail(`accepted a sidecar with wrong types: ${text}`)
        accepted++
      } catch (e) {
        if (!(e instanceof Error) || e.constructor !== Error || !e.message.includes(file)) {
          t.fail(`mutant ${n} of seed ${seed}: ${e instanceof Error ? `${e.constructor.name}: ${e.message}` : String(e)}\n${text}`)
          return
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  const s = (Date.now() - t0) / 1000
  t.log(`sidecar fuzz: seed ${seed}, ${executions} executions in ${s.toFixed(1)} s (${(executions / s).toFixed(0)}/s): ${accepted} accepted, ${executions - accepted} refused, 0 failures`)
  t.true(accepted >= seeds.length, 'the seeds themselves are accepted')
})
