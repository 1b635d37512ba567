/**
 * Benchmark runner: `npm run bench -- <name> [--json] [--adapter A]`.
 * With `--json` the last line printed is one JSON object of the figures.
 *
 * @module
 */
import { parseArgs, UsageError } from '../src/cli/args'
import { initDevice } from '../index'
import * as matmul from './matmul'

/** Options every benchmark receives. */
export interface BenchArgs {
  json: boolean
  flopsPerCycle?: number
}

const benches: Record<string, { run(args: BenchArgs): Record<string, unknown> }> = { matmul }

function main(argv: string[]): number {
  const [name, ...rest] = argv
  const bench = name === undefined ? undefined : benches[name]
  if (!bench) {
    console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}> [--json] [--adapter A] [--flops-per-cycle N]`)
    return 2
  }
  try {
    const { flags } = parseArgs(rest, {
      json: { type: 'boolean', description: 'print the figures as one JSON object on the last line' },
      adapter: { type: 'string', description: 'adapter choice' },
      'flops-per-cycle': { type: 'number', description: 'override the FLOP/cycle/core used for the CPU peak' },
    })
    if (typeof flags['adapter'] === 'string') initDevice({ adapter: flags['adapter'] })
    const args: BenchArgs = { json: flags['json'] === true }
    if (typeof flags['flops-per-cycle'] === 'number') args.flopsPerCycle = flags['flops-per-cycle']
    const result = bench.run(args)
    if (args.json) console.log(JSON.stringify(result))
    return 0
  } catch (e) {
    console.error(`bench ${name}: ${e instanceof Error ? e.message : String(e)}`)
    return e instanceof UsageError ? 2 : 1
  }
}

process.exitCode = main(process.argv.slice(2))
