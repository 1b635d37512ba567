/**
 * `writeReport`: training runs on disk → one self-contained HTML page (loss,
 * validation, schedule and firing-rate charts; energy of teacher and students
 * in two conventions; restored crops with their PSNR).
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

import { info } from '../tensor'
import { writeFileAtomic } from '../train/checkpoint'
import { analyseRuns } from './analyse'
import { collectRuns, readDemoResults } from './collect'
import { renderReport } from './html'

/** Options of {@link writeReport}. */
export interface ReportOptions {
  /** The HTML file (default: `report.html` in the only folder given, else in the working directory). */
  out?: string
  /** A clean image for the energy, firing-rate and crop sections (default: the runs' first validation image). */
  image?: string
  /** Skip running the models: charts of the logs only. */
  logsOnly?: boolean
}

/** Writes the report of the runs in `dirs`; returns its path. */
export function writeReport(dirs: readonly string[], options: ReportOptions = {}): string {
  if (dirs.length === 0) throw new Error('report: name at least one run folder')
  const runs = collectRuns(dirs)
  const analysis = options.logsOnly ? null : analyseRuns(runs, options.image ? { image: options.image } : {})
  const demo = readDemoResults(dirs)
  const facts: Record<string, string> = { device: info().adapterName }
  if (demo && typeof demo['seconds'] === 'number') facts['demo time'] = `${Math.round(demo['seconds'])} s`
  if (demo && typeof demo['data'] === 'string') facts['data'] = demo['data']
  const only = dirs.length === 1 ? (fs.statSync(dirs[0]!).isFile() ? path.dirname(dirs[0]!) : dirs[0]!) : null
  const file = options.out ?? (only ? path.join(only, 'report.html') : 'report.html')
  writeFileAtomic(file, renderReport({ runs, analysis, facts }))
  return file
}
