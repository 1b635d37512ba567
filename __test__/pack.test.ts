/**
 * The package a user installs: `npm pack` of this checkout (as built), the
 * tarball installed into an empty folder with an empty npm cache, offline and
 * with no Rust toolchain on the PATH, then the installed CLI and library used
 * from there: `spikeir info`, `denoise` with the bundled student, a short
 * teacher and a 20-step `distill` with its hints.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

const root = path.join(__dirname, '..', '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx'

/** The addon file napi-rs names for this machine (`--platform` builds). */
function hostBinary(): string {
  const abi = process.platform === 'linux' ? '-gnu' : process.platform === 'win32' ? '-msvc' : ''
  return `binding/spikeir.${process.platform}-${process.arch}${abi}.node`
}

/**
 * The environment of a user without Rust: PATH entries that hold cargo or
 * rustc dropped, cargo's and rustup's variables unset, npm offline with a
 * cache of its own so nothing comes from this machine's cache or the network.
 */
function userEnv(cache: string): NodeJS.ProcessEnv {
  const exe = process.platform === 'win32' ? '.exe' : ''
  const keep = (process.env['PATH'] ?? '')
    .split(path.delimiter)
    .filter((dir) => dir !== '' && !fs.existsSync(path.join(dir, `cargo${exe}`)) && !fs.existsSync(path.join(dir, `rustc${exe}`)))
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: keep.join(path.delimiter) }
  for (const key of Object.keys(env)) {
    if (/^(CARGO|RUSTUP|RUSTC|NAPI_RS)/.test(key) || key.startsWith('npm_')) delete env[key]
  }
  return { ...env, npm_config_cache: cache, npm_config_offline: 'true', npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' }
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { cwd, env, encoding: 'utf8', shell: process.platform === 'win32' })
}

function lastJson(r: SpawnSyncReturns<string>): Record<string, unknown> {
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown>
}

test('the packed tarball installs offline without Rust and its CLI and library run from there', (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-pack-'))
  try {
    const env = userEnv(path.join(tmp, 'npm-cache'))
    t.false(fs.readdirSync(path.dirname(process.execPath)).includes('cargo'), 'node and cargo share a folder; the test cannot hide cargo')

    // Pack what this checkout built; `prepare` would rebuild the addon.
    const pack = run(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], root, { ...process.env })
    t.is(pack.status, 0, pack.stderr)
    const [info] = JSON.parse(pack.stdout) as [{ filename: string; files: { path: string }[] }]
    const files = info.files.map((f) => f.path)
    t.true(files.includes(hostBinary()), `the tarball lacks ${hostBinary()}`)
    t.true(files.includes('binding/index.js'))
    t.true(files.includes('weights/spikerir_tiny_sigma25.json'))
    t.true(files.includes('weights/spikerir_tiny_sigma25.safetensors'))
    t.true(files.includes('dist/src/cli/main.js'))
    t.deepEqual(
      files.filter((f) => /^(crates|target|src|__test__|benchmarks|examples)\/|^dist\/(__test__|benchmarks|examples)\/|Cargo\.(toml|lock)$|\.rs$/.test(f)),
      [],
      'sources, tests or Rust files in the tarball',
    )
    const tarball = path.join(tmp, info.filename)

    // Without --ignore-scripts too: a tarball install runs no `prepare`, and
    // the package has no install scripts, so this needs neither cargo nor napi.
    for (const [dir, flags] of [
      ['app', ['--ignore-scripts']],
      ['app-scripts', []],
    ] as const) {
      const app = path.join(tmp, dir)
      fs.mkdirSync(app)
      fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: dir, version: '1.0.0', private: true }))
      const install = run(npm, ['install', '--offline', '--no-audit', '--no-fund', ...flags, tarball], app, env)
      t.is(install.status, 0, `npm install ${flags.join(' ')}: ${install.stderr}`)
      t.notRegex(install.stdout + install.stderr, /napi build|cargo|Compiling/)
    }
    const app = path.join(tmp, 'app')
    const pkgDir = path.join(app, 'node_modules', 'spikeir')
    const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>
    t.deepEqual(Object.keys(pkg['dependencies'] ?? {}), [], 'runtime dependencies would need the network')
    t.deepEqual(Object.keys(pkg['optionalDependencies'] ?? {}), [])
    t.deepEqual(
      Object.keys(pkg['scripts'] ?? {}).filter((s) => /^(pre|post)?install$/.test(s)),
      [],
    )
    t.deepEqual(fs.readdirSync(path.join(app, 'node_modules')).filter((d) => !d.startsWith('.')), ['spikeir'])

    const infoRun = run(npx, ['--no', 'spikeir', 'info', '--json'], app, env)
    t.is(infoRun.status, 0, infoRun.stderr)
    t.is(typeof lastJson(infoRun)['adapterName'], 'string')

    // The library from the installed package: a grey image of flat patches
    // (the bundled student is greyscale), σ = 25 noise.
    const make = `
      const spikeir = require('spikeir')
      if (!require.resolve('spikeir').startsWith(${JSON.stringify(pkgDir)})) throw new Error('spikeir resolved to ' + require.resolve('spikeir'))
      const n = 48, clean = new Float32Array(n * n)
      for (let y = 0; y < n; y++) for (let x = 0; x < n; x++)
        clean[y * n + x] = 0.25 + (x >= 16 && y >= 20 ? 0.35 : 0) + (x < 30 && y < 10 ? 0.2 : 0)
      const img = spikeir.Tensor.fromData(clean, [1, 1, n, n])
      const noisy = img.add(spikeir.Tensor.randn([1, 1, n, n], { seed: 3 }).mul(25 / 255))
      spikeir.writeImage('clean.png', img)
      spikeir.writeImage('noisy.png', noisy)
    `
    const made = run(process.execPath, ['-e', make], app, env)
    t.is(made.status, 0, made.stderr)
    const denoise = run(npx, ['--no', 'spikeir', 'denoise', 'noisy.png', 'denoised.png'], app, env)
    t.is(denoise.status, 0, denoise.stderr)
    const score = `
      const { readImage, psnr } = require('spikeir')
      const clean = readImage('clean.png').toFloat32Array()
      console.log(JSON.stringify({ noisy: psnr(readImage('noisy.png').toFloat32Array(), clean), denoised: psnr(readImage('denoised.png').toFloat32Array(), clean) }))
    `
    const scored = run(process.execPath, ['-e', score], app, env)
    t.is(scored.status, 0, scored.stderr)
    const db = lastJson(scored) as { noisy: number; denoised: number }
    t.log(`bundled student on a 48×48 image: ${db.noisy.toFixed(2)} dB noisy, ${db.denoised.toFixed(2)} dB denoised`)
    t.true(db.denoised > db.noisy + 3, `bundled student: ${db.noisy.toFixed(2)} dB noisy, ${db.denoised.toFixed(2)} dB denoised`)

    const tiny = ['--patch', '16', '--batch', '2', '--val-limit', '1']
    const teacher = run(npx, ['--no', 'spikeir', 'train-teacher', '--out', 'teacher', '--width', '4', '--steps', '5', '--no-report', '--quiet', ...tiny], app, env)
    t.is(teacher.status, 0, teacher.stderr)
    const distill = run(npx, ['--no', 'spikeir', 'distill', '--out', 'student', '--teacher', 'teacher/teacher.json', '--steps', '20', '--json', ...tiny], app, env)
    t.is(distill.status, 0, distill.stderr)
    const result = lastJson(distill) as { step: number; validation: { psnr: number }; report: string }
    t.is(result.step, 20)
    t.true(Number.isFinite(result.validation.psnr))
    t.true(fs.existsSync(path.join(app, 'student', 'student.json')))
    t.true(fs.statSync(path.resolve(app, result.report)).size > 0)
    const log = fs.readFileSync(path.join(app, 'student', 'student.log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; hint: number })
    t.is(log.length, 20)
    t.true(log.every((r) => Number.isFinite(r.hint) && r.hint > 0), 'the distillation used no hints')
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
