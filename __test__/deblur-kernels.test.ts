import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { defaultRecipe, describeSetup, setupTask, taskPairs, Tensor, writeImage, type EvalPair } from '../index'
import { applyTask, recipeFrom } from '../src/cli/distill'
import { recipeTask } from '../src/train/recipe'

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')

const made: string[] = []
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-deblur-'))
  made.push(dir)
  return dir
}
test.after.always(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

function cli(...args: string[]) {
  return spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { ...process.env, SPIKEIR_DEVICE: 'cpu' } })
}

/**
 * A grey `size`² image with structure in every direction (a sum of
 * sinusoids at several orientations plus a hash texture), so a motion blur
 * at one angle differs from one at another.
 */
function texture(size: number, phase: number): Tensor {
  const data = Float32Array.from({ length: size * size }, (_, i) => {
    const y = Math.floor(i / size)
    const x = i % size
    const hash = ((Math.imul(i + 1 + phase * 7919, 2654435761) >>> 0) % 1000) / 1000
    const waves = Math.sin(0.9 * x + phase) + Math.sin(0.7 * y) + Math.sin(0.5 * (x + y)) + Math.sin(0.6 * (x - 2 * y))
    return Math.min(1, Math.max(0, 0.5 + 0.08 * waves + 0.25 * (hash - 0.5)))
  })
  return Tensor.fromData(data, [1, 1, size, size])
}

/** A folder of `n` textured grey PNGs, `a.png`, `b.png`, …; `same` makes them one image repeated. */
function folder(n: number, size: number, same = false): string {
  const dir = tmp()
  for (let k = 0; k < n; k++) {
    const img = texture(size, same ? 0 : k)
    writeImage(path.join(dir, `${String.fromCharCode(97 + k)}.png`), img)
    img.dispose()
  }
  return dir
}

function inputs(pairs: EvalPair[]): number[][] {
  const out = pairs.map((p) => Array.from(p.input.toFloat32Array()))
  for (const p of pairs) {
    p.input.dispose()
    p.target.dispose()
  }
  return out
}

test('setupTask: each blur kernel gives its degradation, with the kernel\'s default size', (t) => {
  const gaussian = setupTask('deblur')
  t.deepEqual(gaussian.params, { sigma: null, quality: null, blur: 1.6, blurKernel: 'gaussian' })
  t.deepEqual(gaussian.trainDegradation, { kind: 'blur', sigma: 1.6 })
  t.deepEqual(gaussian.testDegradation, { kind: 'blur', sigma: 1.6 })
  t.deepEqual(setupTask('deblur', { blurKernel: 'gaussian', blur: 3 }).testDegradation, { kind: 'blur', sigma: 3 })
  // No angle: the data layer draws it per patch (training) and per image from the seed (testing).
  const motion = setupTask('deblur', { blurKernel: 'motion' })
  t.deepEqual(motion.params, { sigma: null, quality: null, blur: 15, blurKernel: 'motion' })
  t.deepEqual(motion.trainDegradation, { kind: 'motionBlur', length: 15 })
  t.deepEqual(motion.testDegradation, { kind: 'motionBlur', length: 15 })
  t.deepEqual(setupTask('deblur', { blurKernel: 'motion', blur: 21 }).trainDegradation, { kind: 'motionBlur', length: 21 })
  const defocus = setupTask('deblur', { blurKernel: 'defocus' }, 3)
  t.is(defocus.channels, 3)
  t.deepEqual(defocus.params, { sigma: null, quality: null, blur: 4, blurKernel: 'defocus' })
  t.deepEqual(defocus.trainDegradation, { kind: 'defocus', radius: 4 })
  t.deepEqual(setupTask('deblur', { blurKernel: 'defocus', blur: 2.5 }).testDegradation, { kind: 'defocus', radius: 2.5 })
  // Other tasks have no kernel.
  t.is(setupTask('denoise').params.blurKernel, null)
  t.is(describeSetup(gaussian, false), 'Gaussian blur σ = 1.6 px')
  t.is(describeSetup(motion, false), 'motion blur of 15 px, angle per image from the seed')
  t.is(describeSetup(defocus, false), 'defocus blur, disk radius 4 px')
})

test('setupTask: --blur in its kernel\'s range (limits included), else a usage error naming --blur and the kernel', (t) => {
  const ok: [string, number][] = [['gaussian', 0.01], ['gaussian', 32], ['motion', 1], ['motion', 255], ['motion', 7.5], ['defocus', 0.5], ['defocus', 50]]
  for (const [k, b] of ok) t.notThrows(() => setupTask('deblur', { blurKernel: k, blur: b }), `${k} ${b}`)
  const bad: [string | undefined, number, RegExp][] = [
    [undefined, 40, /^--blur must be a number > 0 and ≤ 32, got 40 \(the Gaussian σ in pixels of --blur-kernel gaussian\)$/],
    ['gaussian', 0, /^--blur must be a number > 0 and ≤ 32, got 0 \(the Gaussian σ in pixels of --blur-kernel gaussian\)$/],
    ['motion', 0.5, /^--blur must be a number ≥ 1 and ≤ 255, got 0\.5 \(the motion length in pixels of --blur-kernel motion\)$/],
    ['motion', 256, /^--blur must be a number ≥ 1 and ≤ 255, got 256 \(the motion length in pixels of --blur-kernel motion\)$/],
    ['defocus', 0, /^--blur must be a number > 0 and ≤ 50, got 0 \(the defocus disk radius in pixels of --blur-kernel defocus\)$/],
    ['defocus', 50.5, /^--blur must be a number > 0 and ≤ 50, got 50\.5 \(the defocus disk radius in pixels of --blur-kernel defocus\)$/],
    ['defocus', NaN, /^--blur must be a number > 0 and ≤ 50, got NaN \(the defocus disk radius/],
  ]
  for (const [k, b, message] of bad) t.throws(() => setupTask('deblur', { ...(k ? { blurKernel: k } : {}), blur: b }), { name: 'UsageError', message }, `${k} ${b}`)
  t.throws(() => setupTask('deblur', { blurKernel: 'box' }), { name: 'UsageError', message: /^--blur-kernel must be one of gaussian, motion, defocus, got "box"$/ })
  t.throws(() => setupTask('deblur', { blurKernel: 'motion', blur: 300 }, 1, '--config r.json: '), { message: /^--config r\.json: --blur must be a number ≥ 1 and ≤ 255, got 300/ })
})

test('--blur-kernel on another task is refused by name, and deblur lists it among its options', (t) => {
  t.throws(() => setupTask('denoise', { blurKernel: 'motion' }), { name: 'UsageError', message: /^--blur-kernel does not apply to --task denoise \(its options: --sigma\)$/ })
  t.throws(() => setupTask('dehaze', { blurKernel: 'defocus' }), { message: /^--blur-kernel does not apply to --task dehaze \(it takes no options\)$/ })
  t.throws(() => setupTask('deblur', { quality: 10 }), { message: /^--quality does not apply to --task deblur \(its options: --blur, --blur-kernel\)$/ })
  for (const task of ['eval', 'distill']) {
    const r = cli(task, '--task', 'jpeg', '--blur-kernel', 'motion', '--data', tmp())
    t.is(r.status, 2, r.stderr)
    t.regex(r.stderr, new RegExp(`spikeir ${task}: --blur-kernel does not apply to --task jpeg \\(its options: --quality\\)`))
  }
  const bad = cli('eval', '--task', 'deblur', '--blur-kernel', 'motion', '--blur', '0.5', '--data', tmp())
  t.is(bad.status, 2)
  t.regex(bad.stderr, /spikeir eval: --blur must be a number ≥ 1 and ≤ 255, got 0\.5 \(the motion length in pixels of --blur-kernel motion\)/)
  const unknown = cli('distill', '--task', 'deblur', '--blur-kernel', 'box', '--data', tmp())
  t.is(unknown.status, 2)
  t.regex(unknown.stderr, /spikeir distill: --blur-kernel must be one of gaussian, motion, defocus, got "box"/)
})

test('recipes: blurKernel is checked, a --blur alone is a size of the recipe\'s kernel, and a recipe without the key blurs as before', (t) => {
  const dir = tmp()
  const write = (name: string, recipe: object) => {
    const file = path.join(dir, name)
    fs.writeFileSync(file, JSON.stringify(recipe))
    return file
  }
  // A recipe written before kernels existed: no blurKernel key, a Gaussian σ.
  const old = write('old.json', { task: 'deblur', blur: 2 })
  const r = recipeFrom({ flags: { config: old }, positional: [] }, defaultRecipe(path.join(dir, 'out')))
  t.is(r.blurKernel, null)
  t.deepEqual(recipeTask(r).trainDegradation, { kind: 'blur', sigma: 2 })
  // A Recipe object of code written before the field (no key at all) blurs as before too.
  const { blurKernel: _dropped, ...legacy } = { ...defaultRecipe(dir), task: 'deblur' as const, blur: 2.5 }
  t.deepEqual(recipeTask(legacy as unknown as ReturnType<typeof defaultRecipe>).testDegradation, { kind: 'blur', sigma: 2.5 })
  // The flag overrides the recipe's kernel.
  const flagged = recipeFrom({ flags: { config: old, 'blur-kernel': 'defocus' }, positional: [] }, defaultRecipe(dir))
  t.deepEqual(recipeTask(flagged).trainDegradation, { kind: 'defocus', radius: 2 })
  const motion = write('motion.json', { task: 'deblur', blurKernel: 'motion', blur: 31 })
  t.deepEqual(recipeTask(recipeFrom({ flags: { config: motion }, positional: [] }, defaultRecipe(dir))).testDegradation, { kind: 'motionBlur', length: 31 })
  const bogus = write('bogus.json', { task: 'deblur', blurKernel: 'box' })
  const e1 = cli('distill', '--config', bogus, '--no-hints')
  t.is(e1.status, 2)
  t.regex(e1.stderr, /--config .*bogus\.json: blurKernel must be null or one of gaussian, motion, defocus, got "box"/)
  // Out of the recipe's kernel's range: named with the recipe, before any training.
  const long = write('long.json', { task: 'deblur', blurKernel: 'defocus', blur: 80, outDir: path.join(dir, 'never') })
  const e2 = cli('distill', '--config', long, '--no-hints', '--data', folder(1, 32))
  t.is(e2.status, 2)
  t.regex(e2.stderr, /--config .*long\.json: --blur must be a number > 0 and ≤ 50, got 80 \(the defocus disk radius in pixels of --blur-kernel defocus\)/)
  t.false(fs.existsSync(path.join(dir, 'never')))
  // --blur 40 is a fine motion length for a motion recipe, but not a Gaussian σ.
  const args = { flags: { config: motion, blur: 40 }, positional: [] }
  t.deepEqual(applyTask(recipeFrom(args, defaultRecipe(dir)), args, 1).trainDegradation, { kind: 'motionBlur', length: 40 })
  const e3 = cli('distill', '--config', motion, '--blur', '40', '--blur-kernel', 'gaussian', '--no-hints', '--data', folder(1, 32))
  t.is(e3.status, 2)
  t.regex(e3.stderr, /spikeir distill: --blur must be a number > 0 and ≤ 32, got 40 \(the Gaussian σ in pixels of --blur-kernel gaussian\)/)
})

test('test blur is seeded: a motion blur\'s angle is the same on every run, differs between images and with the seed', (t) => {
  // One image twice: only the angle drawn for each index can tell the two inputs apart.
  const dir = folder(2, 40, true)
  const motion = setupTask('deblur', { blurKernel: 'motion', blur: 9 })
  const [a0, a1] = inputs(taskPairs(motion, dir))
  const [b0, b1] = inputs(taskPairs(motion, dir))
  t.deepEqual(a0, b0)
  t.deepEqual(a1, b1)
  t.notDeepEqual(a0, a1, 'each image draws its own angle')
  const [c0] = inputs(taskPairs(motion, dir, { seed: 7 }))
  t.notDeepEqual(a0, c0, 'another seed draws another angle')
  // A defocus disk has no angle: both images blur the same way.
  const [d0, d1] = inputs(taskPairs(setupTask('deblur', { blurKernel: 'defocus', blur: 3 }), dir))
  t.deepEqual(d0, d1)
})

test('CLI: distill --task deblur --blur-kernel motion trains 2 steps; eval with defocus and motion names the degradation and repeats its PSNR', (t) => {
  const data = folder(2, 40)
  const out = path.join(tmp(), 'run')
  const d = cli('distill', '--task', 'deblur', '--blur-kernel', 'motion', '--no-hints', '--data', data, '--val-data', data, '--val-limit', '1', '--patch', '16', '--batch', '2', '--steps', '2', '--warmup', '0', '--out', out, '--no-report', '--json', '--quiet')
  t.is(d.status, 0, d.stderr)
  const res = JSON.parse(d.stdout)
  t.is(res.step, 2)
  t.true(Number.isFinite(res.validation.psnr))
  const ckpt = res.checkpoint as string
  const sidecar = JSON.parse(fs.readFileSync(ckpt, 'utf8'))
  t.is(sidecar.config.task, 'deblur')
  t.is(sidecar.config.blurKernel, 'motion')
  t.is(sidecar.config.blur, null)

  const evalJson = (...extra: string[]) => {
    const r = cli('eval', '--task', 'deblur', '--model', ckpt, '--data', data, '--limit', '1', '--json', '--quiet', ...extra)
    t.is(r.status, 0, r.stderr)
    return JSON.parse(r.stdout)
  }
  const defocus = evalJson('--blur-kernel', 'defocus')
  t.deepEqual(defocus.degradation, { kind: 'defocus', radius: 4 })
  t.is(defocus.blurKernel, 'defocus')
  t.is(defocus.blur, 4)
  t.is(defocus.images, 1)
  t.is(defocus.perImage[0].name, 'a.png')
  t.true(Number.isFinite(defocus.psnr))
  t.is(evalJson('--blur-kernel', 'defocus').psnr, defocus.psnr)
  const motion = evalJson('--blur-kernel', 'motion', '--blur', '11')
  t.deepEqual(motion.degradation, { kind: 'motionBlur', length: 11 })
  t.is(motion.blurKernel, 'motion')
  t.is(evalJson('--blur-kernel', 'motion', '--blur', '11').psnr, motion.psnr)
  const text = cli('eval', '--task', 'deblur', '--blur-kernel', 'motion', '--model', ckpt, '--data', data, '--limit', '1')
  t.is(text.status, 0, text.stderr)
  t.regex(text.stdout, /average over 1 images, --task deblur \(motion blur of 15 px, angle per image from the seed\), on grey: PSNR \d+\.\d\d dB/)
})
