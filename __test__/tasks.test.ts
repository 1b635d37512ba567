import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { DnCNN, Tensor, evaluatePairs, folderSource, getTask, setupTask, taskPairs, writeImage, type Restorer } from '../index'

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')

const made: string[] = []
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-tasks-'))
  made.push(dir)
  return dir
}
test.after.always(() => {
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

/** A planar `[1, c, h, w]` image, every pixel of channel k equal to `levels[k]` / 255. */
function flat(c: number, h: number, w: number, levels: number[]): Tensor {
  return Tensor.fromData(Float32Array.from({ length: c * h * w }, (_, i) => levels[Math.floor(i / (h * w))]! / 255), [1, c, h, w])
}

/** Returns its input: the restored image is the degraded one, so scores are the input's. */
const identity: Restorer = { forward: (x) => x.mul(1) }

test('each task fixes its channels, metric space and defaults', (t) => {
  const grey = setupTask('denoise')
  t.is(grey.channels, 1)
  t.is(grey.metric.space, 'grey')
  t.deepEqual(grey.trainDegradation, { kind: 'awgn', sigma: 25 })
  t.is(setupTask('denoise', { sigma: [0, 55] }, 3).metric.space, 'rgb')
  t.deepEqual(setupTask('denoise', { sigma: [0, 55] }, 3).trainDegradation, { kind: 'awgn', sigmaMin: 0, sigmaMax: 55 })
  t.deepEqual(setupTask('jpeg').testDegradation, { kind: 'jpeg', quality: 10 })
  t.deepEqual(setupTask('jpeg', { quality: 30 }).testDegradation, { kind: 'jpeg', quality: 30 })
  t.deepEqual(setupTask('deblur', { blur: 2.5 }).testDegradation, { kind: 'blur', sigma: 2.5 })
  const derain = setupTask('derain')
  t.is(derain.channels, 3)
  t.deepEqual(derain.metric, { space: 'y', quantize: 'truncate' })
  t.deepEqual(derain.trainDegradation, { kind: 'rain' })
  t.deepEqual(setupTask('dehaze').trainDegradation, { kind: 'haze' })
  t.is(getTask('derain').trainExclude.length, 67)
  t.is(setupTask('dehaze').metric.space, 'rgb')
})

test('a task refuses options it does not take, channels it cannot restore and unknown names, naming the flag', (t) => {
  t.throws(() => setupTask('denoise', { quality: 10 }), { message: /--quality does not apply to --task denoise \(its options: --sigma\)/ })
  t.throws(() => setupTask('jpeg', { sigma: 25 }), { message: /--sigma does not apply to --task jpeg \(its options: --quality\)/ })
  t.throws(() => setupTask('dehaze', { blur: 2 }), { message: /--blur does not apply to --task dehaze \(it takes no options\)/ })
  t.throws(() => setupTask('jpeg', { quality: 101 }), { message: /--quality must be an integer ≥ 1 and ≤ 100, got 101/ })
  t.throws(() => setupTask('derain', {}, 1), { message: /--task derain restores RGB images \(3 channels\), but the model has 1/ })
  t.throws(() => setupTask('colour'), { message: /unknown --task 'colour' \(denoise, jpeg, derain, dehaze, deblur\)/ })
})

test('a folder is read as pairs with input/ and target/, as clean images of target/ alone, else as its own images', (t) => {
  const dir = tmp()
  for (const sub of ['pairs/input', 'pairs/target', 'clean/target', 'plain']) fs.mkdirSync(path.join(dir, sub), { recursive: true })
  t.deepEqual(folderSource(path.join(dir, 'pairs'), 3), { kind: 'paired', inputDir: path.join(dir, 'pairs', 'input'), targetDir: path.join(dir, 'pairs', 'target'), channels: 3 })
  t.deepEqual(folderSource(path.join(dir, 'clean'), 1), { kind: 'folder', dir: path.join(dir, 'clean', 'target'), channels: 1 })
  t.deepEqual(folderSource(path.join(dir, 'plain'), 1), { kind: 'folder', dir: path.join(dir, 'plain'), channels: 1 })
})

test('test pairs: real pairs as stored, clean images through the task degradation (seeded)', (t) => {
  const dir = tmp()
  fs.mkdirSync(path.join(dir, 'input'))
  fs.mkdirSync(path.join(dir, 'target'))
  // 64² so that synthetic rain (tens of streaks per 10⁴ pixels) draws some below.
  writeImage(path.join(dir, 'input', 'a.png'), flat(3, 64, 64, [110, 100, 100]))
  writeImage(path.join(dir, 'target', 'a.png'), flat(3, 64, 64, [100, 100, 100]))
  const derain = setupTask('derain')
  const [pair] = taskPairs(derain, dir)
  t.is(pair!.name, 'a.png')
  t.true(Math.abs(pair!.input.toFloat32Array()[0]! - 110 / 255) < 1e-6)
  // Identity restoration scores the input: R off by 10 grey levels on Y is ΔY = 65.481·10/255 = 2.56788 → 39.94 dB.
  const y = evaluatePairs(identity, [pair!], undefined, derain.metric)
  t.is(y.space, 'y')
  t.true(Math.abs(y.psnr - 20 * Math.log10(255 / ((65.481 * 10) / 255))) < 0.01, `${y.psnr}`)
  // On RGB one plane in three errs by 10: MSE 100/3 → 10·log10(3·255²/100) = 32.92 dB.
  const rgb = evaluatePairs(identity, [pair!], undefined, setupTask('dehaze').metric)
  t.is(rgb.space, 'rgb')
  t.true(Math.abs(rgb.psnr - 10 * Math.log10((3 * 255 * 255) / 100)) < 0.01, `${rgb.psnr}`)
  pair!.input.dispose()
  pair!.target.dispose()
  // A clean folder gets synthetic rain: additive streaks (clipped), the same on every run.
  const rainy = () => taskPairs(derain, path.join(dir, 'target'))
  const [r1] = rainy()
  const [r2] = rainy()
  const a = r1!.input.toFloat32Array()
  const clean = r1!.target.toFloat32Array()
  t.true(a.every((v, i) => v >= clean[i]! - 1e-6), 'streaks only brighten')
  t.true(a.some((v, i) => v > clean[i]! + 1 / 255), 'some streaks are drawn')
  t.deepEqual(Array.from(a), Array.from(r2!.input.toFloat32Array()))
  for (const p of [r1!, r2!]) {
    p.input.dispose()
    p.target.dispose()
  }
  // JPEG: the input is a decoded 8-bit image, not the clean one.
  const cleanDir = tmp()
  writeImage(path.join(cleanDir, 'b.png'), Tensor.fromData(Float32Array.from({ length: 32 * 32 }, (_, i) => ((i * 37) % 256) / 255), [1, 1, 32, 32]))
  const [j] = taskPairs(setupTask('jpeg', { quality: 10 }), cleanDir)
  const input = j!.input.toFloat32Array()
  t.true(input.every((v) => Math.abs(v * 255 - Math.round(v * 255)) < 1e-3), 'decoded JPEG values are 8-bit levels')
  t.notDeepEqual(Array.from(input), Array.from(j!.target.toFloat32Array()))
  j!.input.dispose()
  j!.target.dispose()
})

test('eval --task prints the metric and its colour space (text and --json), with the model\'s channels from a bare DnCNN file', (t) => {
  const dir = tmp()
  fs.mkdirSync(path.join(dir, 'pairs', 'input'), { recursive: true })
  fs.mkdirSync(path.join(dir, 'pairs', 'target'), { recursive: true })
  writeImage(path.join(dir, 'pairs', 'input', 'a.png'), flat(3, 16, 16, [120, 90, 60]))
  writeImage(path.join(dir, 'pairs', 'target', 'a.png'), flat(3, 16, 16, [100, 100, 100]))
  // A tiny 3-channel DnCNN saved without a sidecar: its depth and channels come from the file.
  const net = new DnCNN({ depth: 3, channels: 4, imageChannels: 3, seed: 1 })
  const weights = path.join(dir, 'tiny.safetensors')
  net.saveSafetensors(weights)
  net.dispose()
  const cli = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', env: { ...process.env, SPIKEIR_DEVICE: 'cpu' } })
  const json = cli('eval', '--task', 'dehaze', '--model', weights, '--data', path.join(dir, 'pairs'), '--json', '--quiet')
  t.is(json.status, 0, json.stderr)
  const r = JSON.parse(json.stdout)
  t.is(r.task, 'dehaze')
  t.is(r.channels, 3)
  t.is(r.metric.space, 'rgb')
  t.is(r.degradation, 'real pairs')
  t.is(r.images, 1)
  const text = cli('eval', '--task', 'derain', '--model', weights, '--data', path.join(dir, 'pairs'))
  t.is(text.status, 0, text.stderr)
  t.regex(text.stdout, /average over 1 images, --task derain \(real pairs\), on the Y channel \(BT\.601\), output truncated to 8 bits: PSNR \d+\.\d\d dB, SSIM/)
})
