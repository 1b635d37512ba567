/**
 * Prints the README's "Bad input" table: every case of
 * `__test__/bad-input-cases.ts` run through the CLI, with the exit status and
 * the message it printed (the case's temporary folder shown as `$DIR`).
 *
 *     npm run build:ts && node dist/benchmarks/bad-input-table.js
 *
 * @module
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { cases, runCli, shownMessage } from '../__test__/bad-input-cases'

const rows: string[] = []
for (const c of cases) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-bad-'))
  try {
    const o = runCli(c.setup(dir))
    const message = shownMessage(o, dir).replace(/\|/g, '\\|')
    rows.push(`| ${c.name.replace(/\|/g, '\\|')} | ${o.timedOut ? 'hang' : o.status} | ${message} |`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
console.log('| input | exit | message |\n|---|---:|---|\n' + rows.join('\n'))
