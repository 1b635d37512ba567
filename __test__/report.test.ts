import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { readImage } from '../src/io'
import { collectRuns } from '../src/report/collect'
import { encodePng } from '../src/report/png'
import { linearTicks, logTicks } from '../src/report/svg'

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')

function cli(...args: string[]) {
  return spawnSync(process.execPath, [main, ...args], { encoding: 'utf8' })
}

/** A Chromium to drive: $CHROMIUM_PATH, else the usual install locations. */
function findChromium(): string | null {
  const candidates = [process.env['CHROMIUM_PATH'], '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable', '/snap/bin/chromium']
  return candidates.find((c): c is string => !!c && fs.existsSync(c)) ?? null
}

function loadPlaywright(): typeof import('playwright-core') | null {
  try {
    return require('playwright-core') as typeof import('playwright-core')
  } catch {
    return null
  }
}

test('the PNG encoder writes files an independent decoder reads back pixel for pixel', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-png-'))
  try {
    // A 3×2 grey ramp and a 2×2 colour image, values on the 8-bit grid.
    const grey = [0, 51, 102, 153, 204, 255].map((v) => v / 255)
    fs.writeFileSync(path.join(dir, 'g.png'), encodePng(grey, 1, 2, 3))
    const g = readImage(path.join(dir, 'g.png'), { channels: 1 })
    t.deepEqual(g.shape, [1, 1, 2, 3])
    t.deepEqual([...g.toFloat32Array()].map((v) => Math.round(v * 255)), [0, 51, 102, 153, 204, 255])
    const rgb = [1, 0, 0, 0.2, /* G */ 0, 1, 0, 0.4, /* B */ 0, 0, 1, 0.6]
    fs.writeFileSync(path.join(dir, 'c.png'), encodePng(rgb, 3, 2, 2))
    const c = readImage(path.join(dir, 'c.png'), { channels: 3 })
    t.deepEqual([...c.toFloat32Array()].map((v) => Math.round(v * 255)), [255, 0, 0, 51, 0, 255, 0, 102, 0, 0, 255, 153])
    t.throws(() => encodePng([0, 1], 1, 2, 2), { message: /2 values for a 1×2×2 image/ })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('axis ticks are round numbers inside the range', (t) => {
  t.deepEqual(linearTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1])
  t.deepEqual(linearTicks(0, 30, 6), [0, 5, 10, 15, 20, 25, 30])
  t.deepEqual(logTicks(0.001, 1), [0.001, 0.01, 0.1, 1])
  t.deepEqual(logTicks(0.06, 0.3), [0.06, 0.07, 0.08, 0.09, 0.1, 0.2, 0.3])
  t.deepEqual(logTicks(0.3, 0.32), [0.3, 0.305, 0.31, 0.315, 0.32])
  t.deepEqual(logTicks(0.3, 0.5), [0.3, 0.4, 0.5])
})

test('runs are found in a folder or one level down, told apart when their names clash, torn log lines skipped', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-runs-'))
  try {
    const step = (i: number, hint: number) => JSON.stringify({ step: i, loss: 1, l1: 1, fft: 1, hint, gamma: 0.1, lr: 1e-3, gradNorm: null, firingRates: {}, seconds: 0.1 })
    for (const [name, hint] of [['hkd', 0.5], ['baseline', 0]] as const) {
      fs.mkdirSync(path.join(dir, 'out', name), { recursive: true })
      fs.writeFileSync(path.join(dir, 'out', name, 'student.log.jsonl'), `${step(0, hint)}\n${step(1, hint)}\n{"step": 2, "lo`)
    }
    const runs = collectRuns([path.join(dir, 'out', 'baseline'), path.join(dir, 'out', 'hkd')])
    // Without sidecars the role comes from the hint term; hint runs sort first.
    t.deepEqual(
      runs.map((r) => [r.label, r.role, r.steps.length, r.skippedLines]),
      [
        ['hkd/student', 'hints', 2, 1],
        ['baseline/student', 'unknown', 2, 1],
      ],
    )
    t.is(collectRuns([path.join(dir, 'out')]).length, 2)
    t.throws(() => collectRuns([dir + '/nope']), { message: /report: '.*nope' does not exist/ })
    fs.mkdirSync(path.join(dir, 'empty'))
    t.throws(() => collectRuns([path.join(dir, 'empty')]), { message: /holds no training run/ })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

const chromium = findChromium()
const playwright = loadPlaywright()
// CI sets SPIKEIR_REQUIRE_CHROMIUM so that a missing browser fails instead of skipping.
const required = process.env['SPIKEIR_REQUIRE_CHROMIUM'] === '1'
const missing = !chromium ? 'no Chromium found; install chromium or set CHROMIUM_PATH' : !playwright ? 'playwright-core is not installed' : ''
const browserTest = !missing || required ? test : test.skip
const why = missing ? ` (${required ? 'required' : 'skipped'}: ${missing})` : ''

browserTest(`the demo's report loads in headless Chromium with no errors, every chart drawn and every image decoded${why}`, async (t) => {
  if (missing) {
    t.fail(`SPIKEIR_REQUIRE_CHROMIUM=1 but ${missing}`)
    return
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-report-'))
  try {
    // Five steps a run, each validated: curves with five points, cheap on lavapipe too.
    const demo = cli('demo', '--out', dir, '--steps', '5', '--teacher-steps', '5', '--quiet')
    t.is(demo.status, 0, demo.stderr)
    const file = path.join(dir, 'report.html')
    t.true(fs.existsSync(file), 'the demo writes report.html')
    const html = fs.readFileSync(file, 'utf8')
    // Self-contained: nothing is fetched from anywhere.
    const refs = [...html.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((m) => m[1]!)
    t.deepEqual(refs.filter((r) => !r.startsWith('data:') && !r.startsWith('#')), [])
    t.false(/<script|<link/i.test(html))

    const browser = await playwright!.chromium.launch({ executablePath: chromium!, args: process.getuid?.() === 0 ? ['--no-sandbox'] : [] })
    try {
      const page = await browser.newPage()
      const errors: string[] = []
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text())
      })
      page.on('pageerror', (e) => errors.push(e.message))
      page.on('requestfailed', (r) => errors.push(`request failed: ${r.url()}`))
      await page.goto(`file://${file}`, { waitUntil: 'load' })
      const charts = await page.$$eval('svg.chart', (svgs) =>
        svgs.map((svg) => {
          const title = svg.getAttribute('aria-label') ?? ''
          const paths = [...svg.querySelectorAll('path.series')].map((p) => (p.getAttribute('d')?.match(/[ML]/g) ?? []).length)
          const rects = [...svg.querySelectorAll('g.series')].map((g) => g.querySelectorAll('rect').length)
          const box = svg.getBoundingClientRect()
          return { title, points: Math.max(0, ...paths, ...rects), visible: box.width > 100 && box.height > 100 }
        }),
      )
      const titles = charts.map((c) => c.title)
      for (const expected of ['Total loss', 'L1 loss', 'FFT loss', 'Hint loss (H-KD)', 'Validation PSNR', 'Learning rate']) t.true(titles.includes(expected), expected)
      t.true(titles.some((x) => x.startsWith('Firing rates during training')))
      t.true(titles.some((x) => x.startsWith('Firing rates on ')))
      for (const c of charts) {
        t.true(c.points >= 2, `chart '${c.title}' draws ${c.points} points`)
        t.true(c.visible, `chart '${c.title}' is laid out`)
      }
      // Teacher, student with and without hints, validated at several steps: both students on one PSNR chart.
      const psnrLines = await page.$$eval('svg.chart[aria-label="Validation PSNR"] path.series', (ps) => ps.map((p) => p.getAttribute('data-label')))
      t.deepEqual(psnrLines, ['teacher', 'student-hkd (hints)', 'student-baseline (no hints)'])
      const images = await page.$$eval('img', (imgs) => imgs.map((i) => ({ alt: i.alt, complete: i.complete, width: i.naturalWidth, height: i.naturalHeight })))
      t.deepEqual(
        images.map((i) => i.alt),
        ['ground truth', 'degraded (σ = 25)', 'teacher', 'student-hkd', 'student-baseline'],
      )
      for (const i of images) t.true(i.complete && i.width > 0 && i.height > 0, `image '${i.alt}' decodes (${i.width}×${i.height})`)
      const energyRows = await page.$$eval('table.energy tbody tr', (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((td) => td.textContent ?? '')))
      t.deepEqual(
        energyRows.map((r) => r[0]),
        ['teacher', 'student-hkd', 'student-baseline'],
      )
      // Both conventions: energy and teacher ratio for each, the teacher's own ratio 1.0×.
      t.is(energyRows[0]!.length, 8)
      t.is(energyRows[0]![5], '1.0×')
      t.is(energyRows[0]![7], '1.0×')
      const headers = await page.$eval('table.energy thead', (h) => h.textContent ?? '')
      t.regex(headers, /4\.6 pJ\/MAC, 0\.9 pJ\/SOP/)
      t.regex(headers, /12\.5 pJ\/MAC, 77 fJ\/SOP/)
      t.deepEqual(errors, [])
    } finally {
      await browser.close()
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('report names a folder without runs, and needs one', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-report-empty-'))
  try {
    const r = cli('report', dir)
    t.is(r.status, 1)
    t.regex(r.stderr, /spikeir report: report: '.*' holds no training run/)
    const u = cli('report')
    t.is(u.status, 2)
    t.regex(u.stderr, /name at least one run folder/)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
