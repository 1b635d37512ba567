import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { formatDuration, Output, Progress, progressMode, type ProgressStream } from '../src/cli/progress'

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')

function cli(...args: string[]) {
  return spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
}

/** A stream that records what is written, and a clock the test moves. */
function fake(isTTY: boolean) {
  const chunks: string[] = []
  const stream: ProgressStream = { isTTY, columns: 120, write: (s: string) => chunks.push(s) }
  let t = 100
  return { stream, chunks, text: () => chunks.join(''), now: () => t, tick: (s: number) => (t += s) }
}

test('durations read as seconds, minutes or hours', (t) => {
  t.is(formatDuration(0), '0 s')
  t.is(formatDuration(42.4), '42 s')
  t.is(formatDuration(185), '3 min 05 s')
  t.is(formatDuration(7620), '2 h 07 min')
  t.is(formatDuration(NaN), '?')
})

test('the mode is quiet when asked, a bar on a terminal, lines otherwise', (t) => {
  t.is(progressMode(true, { isTTY: true, write: () => true }), 'quiet')
  t.is(progressMode(false, { isTTY: true, write: () => true }), 'bar')
  t.is(progressMode(false, { write: () => true }), 'lines')
})

test('without a terminal, progress is plain periodic lines with rate, ETA, loss and the latest PSNR', (t) => {
  const f = fake(false)
  const p = new Progress({ label: 'student', total: 10, mode: 'lines', stream: f.stream, every: 5, now: f.now })
  for (let step = 1; step <= 10; step++) {
    f.tick(0.5) // two steps a second
    p.update(step, { loss: 1 / step })
    if (step === 6) p.validation(6, { psnr: 27.125, ssim: 0.81234 })
  }
  p.finish()
  const lines = f.text().split('\n').filter(Boolean)
  t.deepEqual(lines, [
    'student: step 1/10  2.0 steps/s  ETA 5 s  loss 1.0000',
    'student: step 5/10  2.0 steps/s  ETA 3 s  loss 0.2000',
    'student: validation at step 6: PSNR 27.13 dB, SSIM 0.8123',
    'student: step 10/10  2.0 steps/s  took 5 s  loss 0.1000  PSNR 27.13 dB',
  ])
  t.false(f.text().includes('\r'), 'no carriage returns in a log file')
})

test('a resumed run counts its rate from where it started', (t) => {
  const f = fake(false)
  const p = new Progress({ label: 'x', total: 100, mode: 'lines', stream: f.stream, every: 50, now: f.now })
  f.tick(1)
  p.update(41) // resumed at step 40: one new step in one second
  t.is(p.rate(), 1)
  t.regex(f.text(), /step 41\/100 {2}1\.0 steps\/s {2}ETA 59 s/)
})

test('on a terminal the bar is redrawn in place and messages go above it', (t) => {
  const f = fake(true)
  const p = new Progress({ label: 'teacher', total: 4, mode: 'bar', stream: f.stream, now: f.now })
  f.tick(1)
  p.update(1, { loss: 0.5 })
  t.true(f.text().startsWith('\r\x1b[2Kteacher '))
  t.false(f.text().includes('\n'), 'the bar stays on one line')
  t.regex(f.text(), / 25% {2}1\/4 {2}1\.0 steps\/s {2}ETA 3 s {2}loss 0\.5000$/)
  p.log('a note')
  // The note replaces the bar's line, then the bar is drawn again below it.
  t.regex(f.text(), /\r\x1b\[2Ka note\n\r\x1b\[2Kteacher [█░]+ {2}25%/)
  f.tick(3)
  p.update(4, { loss: 0.25 })
  p.finish()
  t.true(f.text().endsWith('took 4 s  loss 0.2500\n'))
})

test('--quiet progress writes nothing, not even notes or validation', (t) => {
  const f = fake(true)
  const out = new Output(true, f.stream)
  const p = out.progress('student', 3)
  p.update(1, { loss: 1 })
  p.validation(1, { psnr: 20 })
  out.note('hello')
  out.end()
  t.deepEqual(f.chunks, [])
})

test('training prints periodic lines when piped, nothing with --quiet, and one JSON object with --json', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-progress-'))
  const flags = ['--no-hints', '--steps', '4', '--patch', '16', '--batch', '2', '--val-limit', '1', '--no-report']
  try {
    const plain = cli('distill', ...flags, '--out', path.join(dir, 'plain'))
    t.is(plain.status, 0, plain.stderr)
    const lines = plain.stderr.split('\n').filter((l) => l.startsWith('student: step'))
    t.deepEqual(
      lines.map((l) => l.split('  ')[0]),
      ['student: step 1/4', 'student: step 2/4', 'student: step 3/4', 'student: step 4/4'],
    )
    t.regex(lines[3]!, /steps\/s {2}took \d+ s {2}loss \d\.\d{4}/)
    t.regex(plain.stderr, /student: validation at step 4: PSNR \d+\.\d\d dB/)
    t.false(plain.stderr.includes('\r'))

    const quiet = cli('distill', ...flags, '--quiet', '--out', path.join(dir, 'quiet'))
    t.is(quiet.status, 0, quiet.stderr)
    t.is(quiet.stderr, '')
    t.is(quiet.stdout, '')

    const json = cli('distill', ...flags, '--quiet', '--json', '--out', path.join(dir, 'json'))
    t.is(json.status, 0, json.stderr)
    t.is(json.stdout.trim().split('\n').length, 1)
    t.is(JSON.parse(json.stdout).steps, 4)

    // Errors still get through --quiet.
    const bad = cli('distill', '--quiet', '--patch', '30')
    t.is(bad.status, 2)
    t.regex(bad.stderr, /--patch must be a multiple of 4/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
