/**
 * Every bad-input case of `bad-input-cases.ts` through the CLI: a non-zero
 * exit with a message that names the file or option and the reason, no
 * panic, no stack trace, no hang and no partial output — or, for the
 * conversions made by rule, success.
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { cases, runCli, temporaries } from './bad-input-cases'

test('there are at least 25 kinds of bad input', (t) => {
  t.true(cases.filter((c) => c.expect === 'error').length >= 25)
  t.is(new Set(cases.map((c) => c.name)).size, cases.length, 'case names are unique')
})

for (const c of cases) {
  test(`${c.expect === 'error' ? 'refused' : 'accepted'}: ${c.name}`, (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-bad-'))
    try {
      const o = runCli(c.setup(dir))
      const all = o.stdout + o.stderr
      t.false(o.timedOut, 'the command finished in time')
      t.notRegex(all, /panicked|RUST_BACKTRACE/, 'no Rust panic')
      t.notRegex(o.stderr, /\n\s+at .+:\d+:\d+\)?$/m, 'no JavaScript stack trace')
      if (c.expect === 'error') {
        t.true(o.status !== null && o.status !== 0, `non-zero exit, got ${o.status}`)
        t.regex(o.stderr, c.message(dir))
        for (const out of c.outputs) t.false(fs.existsSync(path.join(dir, out)), `${out} was not written`)
      } else {
        t.is(o.status, 0, o.stderr)
        t.regex(o.stdout, c.message(dir))
        for (const out of c.outputs) t.true(fs.existsSync(path.join(dir, out)), `${out} was written`)
      }
      t.deepEqual(temporaries(dir), [], 'no temporary files left')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
}
