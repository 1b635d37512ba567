/**
 * Benchmark runner: `npm run bench -- <name> [--json] [--device D]`.
 * With `--json` the last line printed is one JSON object of the figures.
 *
 * @module
 */
import { parseArgs, UsageError } from '../src/cli/args'
import { initDevice } from '../index'
import * as compare from './compare'
import * as conv from './conv'
import * as dncnn from './dncnn'
import * as gcanet from './gcanet'
import * as large from './large'
import * as layers from './layers'
import * as lkdnet from './lkdnet'
import * as lif from './lif'
import * as matmul from './matmul'
import * as parity from './parity'
import * as prenet from './prenet'
import * as profile from './profile'
import * as soak from './soak'
import * as student from './student'
import * as teachers from './teachers'

/** Options every benchmark receives. */
export interface BenchArgs {
  json: boolean
  flopsPerCycle?: number
  /** Use only the first N images (dncnn, prenet, gcanet, lkdnet). */
  limit?: number
  /** The device compared against the native backend (student). */
  device?: string
  /** Input shape override (conv), e.g. `--shape 2,64,64,64`. */
  shape?: number[]
  /** Student preset (parity, profile). */
  preset?: string
  /** The reference's float type (parity): float64 or float32. */
  dtype?: string
  /** Seed of weights and batch (parity). */
  seed?: number
  /** Times each case alternates between the two sides (compare). */
  rounds?: number
}

const benches: Record<string, { run(args: BenchArgs): Record<string, unknown> }> = { matmul, conv, dncnn, prenet, gcanet, lkdnet, lif, student, soak, parity, compare, profile, large, teachers, layers }

function main(argv: string[]): number {
  const [name, ...rest] = argv
  const bench = name === undefined ? undefined : benches[name]
  if (!bench) {
    console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [--json] [--device D] [--flops-per-cycle N] [--limit N] [--shape N,C,H,W] [--preset P] [--dtype float64|float32] [--seed N] [--rounds N]`)
    return 2
  }
  try {
    const { flags } = parseArgs(rest, {
      json: { type: 'boolean', description: 'print the figures as one JSON object on the last line' },
      adapter: { type: 'string', description: 'adapter choice' },
      device: { type: 'string', description: 'gpu, cpu (native backend), lavapipe or an adapter name' },
      'flops-per-cycle': { type: 'number', description: 'override the FLOP/cycle/core used for the CPU peak' },
      limit: { type: 'number', description: 'use only the first N images' },
      shape: { type: 'string', description: 'input shape N,C,H,W' },
      preset: { type: 'string', description: 'student preset (parity)' },
      dtype: { type: 'string', description: 'the reference\'s float type, float64 or float32 (parity)' },
      seed: { type: 'number', description: 'seed of weights and batch (parity)' },
      rounds: { type: 'number', description: 'times each case alternates between spikeir and PyTorch (compare)' },
    })
    const choice = flags['device'] ?? flags['adapter']
    if (typeof choice === 'string' && name !== 'student') initDevice({ adapter: choice })
    const args: BenchArgs = { json: flags['json'] === true }
    if (typeof choice === 'string') args.device = choice
    if (typeof flags['flops-per-cycle'] === 'number') args.flopsPerCycle = flags['flops-per-cycle']
    if (typeof flags['limit'] === 'number') args.limit = flags['limit']
    if (typeof flags['preset'] === 'string') args.preset = flags['preset']
    if (typeof flags['dtype'] === 'string') args.dtype = flags['dtype']
    if (typeof flags['seed'] === 'number') args.seed = flags['seed']
    if (typeof flags['rounds'] === 'number') {
      if (!Number.isInteger(flags['rounds']) || flags['rounds'] < 1) throw new UsageError('--rounds must be a whole number of at least 1')
      args.rounds = flags['rounds']
    }
    if (typeof flags['shape'] === 'string') {
      const shape = flags['shape'].split(',').map(Number)
      if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 1)) throw new UsageError('--shape must be N,C,H,W')
      args.shape = shape
    }
    const result = bench.run(args)
    if (args.json) console.log(JSON.stringify(result))
    return 0
  } catch (e) {
    console.error(`bench ${name}: ${e instanceof Error ? e.message : String(e)}`)
    return e instanceof UsageError ? 2 : 1
  }
}

process.exitCode = main(process.argv.slice(2))
