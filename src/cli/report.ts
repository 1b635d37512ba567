/**
 * `spikeir report RUN_DIR… [--out report.html] [--image IMG]`: one
 * self-contained HTML page of training runs — loss, validation, schedule and
 * firing-rate charts, the energy of teacher and students in two conventions,
 * and restored crops with their PSNR.
 *
 * @module
 */
import { writeReport } from '../report'
import { UsageError, type FlagSpec, type Parsed } from './args'
import { Output } from './progress'

export const summary = 'write an HTML report of training runs (curves, energy, images)'

export const flags: Record<string, FlagSpec> = {
  out: { type: 'string', description: 'HTML file (default: RUN_DIR/report.html for one folder, else ./report.html)' },
  image: { type: 'string', description: 'clean image for energy, firing rates and crops (default: first validation image)' },
  'logs-only': { type: 'boolean', description: 'charts of the logs only; do not run the models' },
  quiet: { type: 'boolean', description: 'print only errors' },
  json: { type: 'boolean', description: 'print one JSON object' },
}

export function run(args: Parsed): void {
  if (args.positional.length === 0) throw new UsageError('name at least one run folder (the --out of a training command, or the demo folder)')
  const out = Output.from(args.flags)
  const file = writeReport(args.positional, {
    ...(typeof args.flags['out'] === 'string' ? { out: args.flags['out'] } : {}),
    ...(typeof args.flags['image'] === 'string' ? { image: args.flags['image'] } : {}),
    ...(args.flags['logs-only'] ? { logsOnly: true } : {}),
  })
  if (args.flags['json']) console.log(JSON.stringify({ report: file }))
  else if (!out.quiet) console.log(`wrote ${file}`)
}
