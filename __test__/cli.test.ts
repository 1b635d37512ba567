import { spawnSync } from 'node:child_process'
import * as path from 'node:path'

import test from 'ava'

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')

function cli(...args: string[]) {
  return spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
}

test('info --json prints one JSON object naming the adapter', (t) => {
  const r = cli('info', '--json')
  t.is(r.status, 0, r.stderr)
  const info = JSON.parse(r.stdout.trim().split('\n').pop()!)
  t.is(typeof info.adapterName, 'string')
  t.true(info.adapterName.length > 0)
  t.is(typeof info.maxStorageBindingBytes, 'number')
})

test('an unknown option is a usage error that names it', (t) => {
  const r = cli('info', '--bogus')
  t.is(r.status, 2)
  t.regex(r.stderr, /unknown option --bogus/)
})

test('an unknown command is a usage error that lists the commands', (t) => {
  const r = cli('frobnicate')
  t.is(r.status, 2)
  t.regex(r.stderr, /unknown command 'frobnicate'/)
  t.regex(r.stderr, /info/)
})

test('an adapter that does not exist is an error that lists the available ones', (t) => {
  const r = cli('info', '--adapter', 'no-such-adapter-xyz')
  t.is(r.status, 1)
  t.regex(r.stderr, /no adapter matches 'no-such-adapter-xyz'.*available/)
})
