import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { buildModel } from '../src/models/load'
import { exportCheckpoint } from '../src/train/checkpoint'
import { defaultRecipe, randomSides, runRecipe, type Recipe } from '../src/train/recipe'
import { DnCNN, HKD, SpikerIR, Tensor, clipGradNormOnDevice, gammaAt, gpuCounters, hintStatistics, info, parseGammaSchedule, trainStudent, zeroGrad, noGrad, readCheckpointInfo, loadModel, type BatchStream, type StepRecord } from '../index'

test('γ schedules follow their definitions', (t) => {
  t.is(gammaAt(0.12, { kind: 'constant' }, 500), 0.12)
  t.is(gammaAt(0.12, { kind: 'linear', steps: 100 }, 25), 0.09) // 0.12 · (1 − 25/100)
  t.is(gammaAt(0.12, { kind: 'linear', steps: 100 }, 150), 0)
  t.true(Math.abs(gammaAt(0.12, { kind: 'cosine', steps: 100 }, 50) - 0.06) < 1e-12) // ½·γ·(1 + cos(π/2))
  t.is(gammaAt(0.12, { kind: 'offAfter', step: 10 }, 9), 0.12)
  t.is(gammaAt(0.12, { kind: 'offAfter', step: 10 }, 10), 0)
  t.deepEqual(parseGammaSchedule('cosine:300'), { kind: 'cosine', steps: 300 })
  t.throws(() => parseGammaSchedule('wobbly'), { message: /unknown gamma schedule 'wobbly'/ })
  t.throws(() => parseGammaSchedule('linear:x'), { message: /positive step count/ })
  // Warm-up then cosine: (step + 1)/W·γ on the ramp, ½·γ·(1 + cos(π·t)) after it.
  const wc = parseGammaSchedule('warmup-cosine:10:110')
  t.deepEqual(wc, { kind: 'warmupCosine', warmup: 10, steps: 110 })
  t.true(Math.abs(gammaAt(0.12, wc, 0) - 0.012) < 1e-12)
  t.true(Math.abs(gammaAt(0.12, wc, 9) - 0.12) < 1e-12)
  t.true(Math.abs(gammaAt(0.12, wc, 60) - 0.06) < 1e-12) // halfway through the decay
  t.is(gammaAt(0.12, wc, 110), 0)
  t.throws(() => parseGammaSchedule('warmup-cosine:10:5'), { message: /0 < WARMUP < STEPS/ })
})

test('hint statistics are each teacher channel\'s mean and standard deviation over the batches', (t) => {
  const teacher = new DnCNN({ depth: 4, channels: 3, seed: 5 })
  const batches = [Tensor.rand([2, 1, 8, 8], { seed: 6 }), Tensor.rand([2, 1, 8, 8], { seed: 7 })]
  const stats = hintStatistics(teacher, ['layer2'], batches)
  // Reference: every feature value read back and summed in f64 per channel, batch by batch.
  const c = 3
  const sum = new Float64Array(c)
  const sum2 = new Float64Array(c)
  for (const x of batches) {
    const f = noGrad(() => teacher.forwardHints(x, ['layer2'])).features.get('layer2')!
    const v = f.toFloat32Array()
    const per = v.length / c / 2
    for (let b = 0; b < 2; b++) for (let ch = 0; ch < c; ch++) for (let i = 0; i < per; i++) {
      const z = v[(b * c + ch) * per + i]!
      sum[ch]! += z / (2 * per * batches.length)
      sum2[ch]! += (z * z) / (2 * per * batches.length)
    }
  }
  const mean = stats.get('layer2')!.mean.toFloat32Array()
  const std = stats.get('layer2')!.std.toFloat32Array()
  t.deepEqual(stats.get('layer2')!.mean.shape, [1, 3, 1, 1])
  const rawStd = Array.from(sum2, (v, i) => Math.sqrt(v - sum[i]! ** 2))
  const floor = (0.05 * rawStd.reduce((a, b) => a + b, 0)) / c
  for (let ch = 0; ch < c; ch++) {
    t.true(Math.abs(mean[ch]! - sum[ch]!) < 1e-5, `mean ${ch}: ${mean[ch]} vs ${sum[ch]}`)
    t.true(Math.abs(std[ch]! - Math.max(rawStd[ch]!, floor)) < 1e-4, `std ${ch}: ${std[ch]} vs ${rawStd[ch]}`)
  }
  t.throws(() => hintStatistics(teacher, ['layer9'], batches), { message: /unknown hint tap 'layer9'/ })
})

test('standardised hints and output distillation add their terms as defined', (t) => {
  zeroGrad()
  const student = tinyStudent()
  const teacher = new DnCNN({ depth: 4, channels: 6, seed: 2 }).eval()
  const pairs = [{ student: 'decoder1', teacher: 'layer2', studentChannels: student.tapChannels('decoder1'), teacherChannels: 6 }]
  const mean = Tensor.rand([1, 6, 1, 1], { seed: 8 })
  const std = Tensor.rand([1, 6, 1, 1], { seed: 9 }).add(0.5)
  const hkd = new HKD({ forwardHints: (x, taps) => student.forwardHints(x, taps) }, teacher, pairs, {
    lambdaFft: 0.1,
    gamma: 0.5,
    outputWeight: 0.3,
    hintStats: new Map([['layer2', { mean, std }]]),
  })
  const clean = Tensor.rand([2, 1, 16, 16], { seed: 3 })
  const noisy = clean.add(Tensor.randn(clean.shape, { seed: 4, std: 0.1 }))
  const { parts } = hkd.loss(noisy, clean, 0)
  const ref = noGrad(() => {
    const s = student.forwardHints(noisy, ['decoder1'])
    const te = teacher.forwardHints(noisy, ['layer2'])
    const l1 = s.output.l1Loss(clean).toFloat32Array()[0]!
    const fft = s.output.fftLoss(clean).toFloat32Array()[0]!
    // Standardise by hand, element by element, from the raw teacher feature.
    const ft = te.features.get('layer2')!
    const raw = ft.toFloat32Array()
    const [mv, sv] = [mean.toFloat32Array(), std.toFloat32Array()]
    const per = raw.length / 12
    const z = raw.map((v, i) => (v - mv[Math.floor(i / per) % 6]!) / sv[Math.floor(i / per) % 6]!)
    const fs = hkd.adapters.items[0]!.adapt(s.features.get('decoder1')!, ft.shape).toFloat32Array()
    let mse = 0
    for (let i = 0; i < z.length; i++) mse += (fs[i]! - z[i]!) ** 2 / z.length
    const so = s.output.toFloat32Array()
    const to = te.output.toFloat32Array()
    let out = 0
    for (let i = 0; i < so.length; i++) out += Math.abs(so[i]! - to[i]!) / so.length
    return { l1, fft, hint: mse, out }
  })
  t.true(Math.abs(parts.hint - ref.hint) < 1e-4 * ref.hint, `hint ${parts.hint} vs ${ref.hint}`)
  t.true(Math.abs(parts.output - ref.out) < 1e-6, `output ${parts.output} vs ${ref.out}`)
  const total = parts.loss.toFloat32Array()[0]!
  t.true(Math.abs(total - (ref.l1 + 0.1 * ref.fft + 0.5 * ref.hint + 0.3 * ref.out)) < 1e-5 * total, `${total}`)
  parts.loss.backward()
  t.true(teacher.parameters().every((p) => p.grad === null), 'the teacher is frozen')
  zeroGrad()
})

function tinyStudent(seed = 1): SpikerIR {
  return new SpikerIR({ width: 4, timeSteps: 2, seed })
}

test('the H-KD loss is L1 + λ·FFT + γ·Σ hint MSE, and only the student and adapters learn', (t) => {
  zeroGrad()
  const student = tinyStudent()
  const teacher = new DnCNN({ depth: 4, channels: 6, seed: 2 }).eval()
  const pairs = [
    { student: 'decoder1', teacher: 'layer2', studentChannels: student.tapChannels('decoder1'), teacherChannels: 6 },
    { student: 'decoder2', teacher: 'layer3', studentChannels: student.tapChannels('decoder2'), teacherChannels: 6 },
  ]
  const hkd = new HKD(
    { forwardHints: (x, taps) => student.forwardHints(x, taps) },
    { forwardHints: (x, taps) => teacher.forwardHints(x, taps) },
    pairs,
    { lambdaFft: 0.1, gamma: 0.5 },
  )
  const clean = Tensor.rand([2, 1, 16, 16], { seed: 3 })
  const noisy = clean.add(Tensor.randn(clean.shape, { seed: 4, std: 0.1 }))
  const { parts } = hkd.loss(noisy, clean, 0)
  // Recompose from independent evaluations of each term.
  const ref = noGrad(() => {
    const s = student.forwardHints(noisy, ['decoder1', 'decoder2'])
    const te = teacher.forwardHints(noisy, ['layer2', 'layer3'])
    const l1 = s.output.l1Loss(clean).toFloat32Array()[0]!
    const fft = s.output.fftLoss(clean).toFloat32Array()[0]!
    const h1 = hkd.adapters.items[0]!.adapt(s.features.get('decoder1')!, te.features.get('layer2')!.shape).mseLoss(te.features.get('layer2')!).toFloat32Array()[0]!
    const h2 = hkd.adapters.items[1]!.adapt(s.features.get('decoder2')!, te.features.get('layer3')!.shape).mseLoss(te.features.get('layer3')!).toFloat32Array()[0]!
    return { l1, fft, hint: h1 + h2 }
  })
  const total = parts.loss.toFloat32Array()[0]!
  t.true(Math.abs(parts.l1 - ref.l1) < 1e-6 && Math.abs(parts.fft - ref.fft) < 1e-5 && Math.abs(parts.hint - ref.hint) < 1e-6)
  t.true(Math.abs(total - (ref.l1 + 0.1 * ref.fft + 0.5 * ref.hint)) < 1e-5 * total, `${total}`)
  parts.loss.backward()
  t.true(student.parameters().some((p) => p.grad !== null))
  t.true(hkd.adapters.parameters().every((p) => p.grad !== null))
  t.true(teacher.parameters().every((p) => p.grad === null), 'the teacher is frozen')
  zeroGrad()
})

/** Deterministic synthetic batches by step: smooth patterns plus σ = 0.1 noise. */
function stream(start: number): BatchStream {
  let step = start
  return {
    next() {
      const clean = Tensor.rand([2, 1, 16, 16], { seed: 10_000 + step, low: 0.2, high: 0.8 })
      const input = clean.add(Tensor.randn(clean.shape, { seed: 20_000 + step, std: 0.1 }))
      return { input, target: clean, step: step++ }
    },
    dispose() {},
  }
}

function train(outDir: string, steps: number, resume?: string, ema = 0, onWeights?: (w: Float32Array[]) => void, onStepDone?: () => void): StepRecord[] {
  zeroGrad()
  const student = tinyStudent(7)
  const teacher = new DnCNN({ depth: 3, channels: 4, seed: 8 }).eval()
  const hkd = new HKD(
    { forwardHints: (x, taps) => student.forwardHints(x, taps) },
    { forwardHints: (x, taps) => teacher.forwardHints(x, taps) },
    [{ student: 'decoder1', teacher: 'layer2', studentChannels: student.tapChannels('decoder1'), teacherChannels: 4 }],
    { seed: 3 },
  )
  const records: StepRecord[] = []
  const job = {
    student,
    hkd,
    data: stream,
    settings: { steps, lr: 2e-3, warmup: 2, minLr: 1e-5, weightDecay: 0.01, clipNorm: 1, seed: 7, valEvery: 0, checkpointEvery: 2, outDir, ema },
    config: { model: { kind: 'spikerir', options: { width: 4, timeSteps: 2, seed: 7 } } },
    onStep: (r: StepRecord) => {
      records.push(r)
      onStepDone?.()
      onWeights?.(student.parameters().map((p) => p.toFloat32Array()))
    },
    ...(resume ? { resume } : {}),
  }
  trainStudent(job)
  return records
}

test('an interrupted and resumed run gives the same losses as an uninterrupted one', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-resume-'))
  const full = train(path.join(dir, 'full'), 4)
  // Interrupted after 2 steps (the checkpoint at step 2), then resumed to 4.
  train(path.join(dir, 'part'), 2)
  // Killed after logging step 2 and part of step 3, before their checkpoint: the resumed run logs each step once.
  fs.appendFileSync(path.join(dir, 'part', 'student.log.jsonl'), JSON.stringify({ step: 2, loss: 0 }) + '\n{"step":3,"lo')
  const resumed = train(path.join(dir, 'part'), 4, path.join(dir, 'part', 'student.json'))
  t.deepEqual(resumed.map((r) => r.step), [2, 3])
  t.deepEqual(resumed.map((r) => r.loss), full.slice(2).map((r) => r.loss))
  t.deepEqual(resumed.map((r) => r.lr), full.slice(2).map((r) => r.lr))
  // The JSONL log holds every step of the run, and the checkpoint reloads as a model.
  const log = fs.readFileSync(path.join(dir, 'part', 'student.log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  t.deepEqual(log.map((r: StepRecord) => r.step), [0, 1, 2, 3])
  t.true(Object.keys(log[0].firingRates).length > 0)
  t.is(readCheckpointInfo(path.join(dir, 'part', 'student.json')).info.step, 4)
  t.is(loadModel(path.join(dir, 'part', 'student.json')).step, 4)
  fs.rmSync(dir, { recursive: true })
})

test('with ema the saved model is the weight average, and a resumed run keeps it exactly', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-ema-'))
  // The trained weights after each step of a run without averaging (averaging does not change training) ...
  const trajectory: Float32Array[][] = []
  const plain = train(path.join(dir, 'plain'), 5, undefined, 0, (w) => trajectory.push(w))
  // ... averaged here in f64 with the documented decay, min(0.9, (1 + step)/(10 + step)), from the initial weights.
  const init = tinyStudent(7).parameters().map((p) => Float64Array.from(p.toFloat32Array()))
  const avg = init.map((a) => Float64Array.from(a))
  trajectory.forEach((w, step) => {
    const d = Math.min(0.9, (1 + step) / (10 + step))
    avg.forEach((a, i) => a.forEach((v, j) => (a[j] = d * v + (1 - d) * w[i]![j]!)))
  })
  const full = train(path.join(dir, 'ema'), 5, undefined, 0.9)
  t.deepEqual(full.map((r) => r.loss), plain.map((r) => r.loss), 'the average does not change training')
  const saved = loadModel(path.join(dir, 'ema', 'student.json')).model.parameters().map((p) => p.toFloat32Array())
  let worst = 0
  saved.forEach((w, i) => w.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - avg[i]![j]!)))))
  t.true(worst < 1e-5, `largest difference from the f64 average: ${worst}`)
  // Stopped at the step-2 checkpoint and resumed: the same final average.
  train(path.join(dir, 'part'), 2, undefined, 0.9)
  train(path.join(dir, 'part'), 5, path.join(dir, 'part', 'student.json'), 0.9)
  const resumed = loadModel(path.join(dir, 'part', 'student.json')).model.parameters().map((p) => p.toFloat32Array())
  t.deepEqual(resumed, saved)
  // export --trained-weights gives the trained weights the average was made from.
  exportCheckpoint(path.join(dir, 'ema', 'student.json'), path.join(dir, 'trained.json'), { trained: true })
  t.deepEqual(loadModel(path.join(dir, 'trained.json')).model.parameters().map((p) => p.toFloat32Array()), trajectory.at(-1))
  // A checkpoint without an average cannot resume a run that keeps one.
  train(path.join(dir, 'noavg'), 2)
  t.throws(() => exportCheckpoint(path.join(dir, 'noavg', 'student.json'), path.join(dir, 'x.json'), { trained: true }), { message: /holds no trained weights apart from its model/ })
  t.throws(() => train(path.join(dir, 'noavg'), 5, path.join(dir, 'noavg', 'student.json'), 0.9), { message: /no weight average/ })
  fs.rmSync(dir, { recursive: true })
})

test('a NaN loss stops training with an error and leaves the last checkpoint intact', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-nan-'))
  train(dir, 2)
  const before = fs.readFileSync(path.join(dir, 'student.json'), 'utf8')
  zeroGrad()
  const student = tinyStudent(7)
  const hkd = new HKD({ forwardHints: (x, taps) => student.forwardHints(x, taps) }, null, [])
  const nanStream = (start: number): BatchStream => ({
    next: () => ({ input: Tensor.fromData(new Float32Array(512).fill(Number.NaN), [2, 1, 16, 16]), target: Tensor.zeros([2, 1, 16, 16]), step: start }),
    dispose() {},
  })
  const err = t.throws(() =>
    trainStudent({
      student,
      hkd,
      data: nanStream,
      settings: { steps: 4, lr: 1e-3, warmup: 0, minLr: 0, weightDecay: 0, clipNorm: null, seed: 7, valEvery: 0, checkpointEvery: 1, outDir: dir },
      config: {},
    }),
  )
  t.regex(err!.message, /loss is NaN/)
  t.is(fs.readFileSync(path.join(dir, 'student.json'), 'utf8'), before)
  fs.rmSync(dir, { recursive: true })
})

test('a DnCNN teacher gives the same hint features when it stops at its deepest tap', (t) => {
  const teacher = new DnCNN({ depth: 6, channels: 8, seed: 4 })
  const x = Tensor.rand([2, 1, 12, 12], { seed: 5 })
  const taps = ['layer4', 'layer2', 'layer4']
  const whole = noGrad(() => teacher.forwardHints(x, taps))
  const early = noGrad(() => teacher.forwardFeatures(x, taps))
  t.deepEqual([...early.keys()], [...whole.features.keys()])
  for (const tap of taps) t.deepEqual(early.get(tap)!.toFloat32Array(), whole.features.get(tap)!.toFloat32Array(), tap)
  t.throws(() => teacher.forwardFeatures(x, ['layer6']), { message: /unknown hint tap 'layer6'/ })
})

test('random patch sides crop each batch to a window of a side in [min, max], by (seed, step)', (t) => {
  const max = 24
  // Patches whose pixel values are their own coordinates, so a crop tells where it came from.
  const source = (start: number): BatchStream => {
    let step = start
    return {
      next() {
        const v = new Float32Array(2 * max * max).map((_, i) => (i % (max * max)) + 1000 * step)
        return { input: Tensor.fromData(v, [2, 1, max, max]), target: Tensor.fromData(v, [2, 1, max, max]), step: step++ }
      },
      dispose() {},
    }
  }
  const sides = new Set<number>()
  const crops = (start: number, n: number) => {
    const s = randomSides(source(start), [12, max], 5)
    const out: { side: number; y: number; x: number }[] = []
    for (let i = 0; i < n; i++) {
      const b = s.next()
      const side = b.input.shape[2]!
      t.deepEqual(b.input.shape, [2, 1, side, b.input.shape[3]!])
      t.is(b.input.shape[3], side)
      t.true(side >= 12 && side <= max && side % 4 === 0, `side ${side}`)
      const v = b.input.toFloat32Array()
      const first = v[0]! - 1000 * b.step
      const [y, x] = [Math.floor(first / max), first % max]
      // Every pixel is the original one at (y + r, x + c), in both images of the batch.
      let ok = true
      for (let k = 0; k < 2; k++) for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) {
        if (v[k * side * side + r * side + c] !== (y + r) * max + (x + c) + 1000 * b.step) ok = false
      }
      t.true(ok, `step ${b.step}: the crop is a window of the patch`)
      t.deepEqual(b.target.toFloat32Array(), v)
      sides.add(side)
      out.push({ side, y, x })
    }
    s.dispose()
    return out
  }
  const all = crops(0, 20)
  t.true(sides.size >= 3, `sides seen: ${[...sides].join(', ')}`)
  // Resumed at step 10: the same crops as the run from 0.
  t.deepEqual(crops(10, 10), all.slice(10))
})

test('device-side clipping scales the gradients as clipGradNorm does', (t) => {
  zeroGrad()
  const make = () => {
    const w = Tensor.fromData([3, 4, 0, 12], [4]).toParam()
    const u = Tensor.fromData([1, -2], [2]).toParam()
    // Gradients 2w = [6, 8, 0, 24] and 3u² = [3, 12]: global norm √(36 + 64 + 576 + 9 + 144) = √829.
    w.mul(w).sum(0, true).add(u.mul(u).mul(u).sum(0, true)).backward()
    return [w, u]
  }
  const norm = Math.sqrt(829)
  for (const max of [1, 100]) {
    const [w, u] = make()
    const n = clipGradNormOnDevice([w!, u!], max)
    t.true(Math.abs(n.toFloat32Array()[0]! - norm) < 1e-4)
    const scale = norm > max ? max / (norm + 1e-6) : 1
    const want = [6, 8, 0, 24, 3, 12].map((g) => g * scale)
    const got = [...w!.grad!.toFloat32Array(), ...u!.grad!.toFloat32Array()]
    got.forEach((g, i) => t.true(Math.abs(g - want[i]!) < 1e-5 * Math.max(1, Math.abs(want[i]!)), `max ${max}, grad ${i}: ${g} vs ${want[i]}`))
    zeroGrad()
  }
})

const onWgpu = info().backend !== 'native'
;(onWgpu ? test : test.skip)(`a training step reads back from the device once${onWgpu ? '' : ' (skipped: the device is the native CPU backend, which has no readbacks)'}`, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-readback-'))
  const at: number[] = []
  train(dir, 4, undefined, 0, undefined, () => at.push(gpuCounters().readbacks))
  // Steps 1 and 3 follow steps with no checkpoint after them (every 2 steps, after onStep): one readback each.
  t.deepEqual([at[1]! - at[0]!, at[3]! - at[2]!], [1, 1])
  fs.rmSync(dir, { recursive: true })
})

test('a run started with init fine-tunes those weights, with a fresh step count and schedule', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-init-'))
  const small = { ...defaultRecipe(path.join(dir, 'a')), model: { kind: 'spikerir', options: { width: 4, timeSteps: 2, seed: 3 } }, steps: 3, patch: 16, batch: 2, warmup: 0, lr: 5e-3, val: null, data: { kind: 'deadLeaves', count: 4, size: 32, seed: 1 } } as Recipe
  runRecipe(small)
  const trained = loadModel(path.join(dir, 'a', 'student.json')).model.parameters().map((p) => p.toFloat32Array())
  const fresh = buildModel(small.model).parameters().map((p) => p.toFloat32Array())
  // One step at a learning rate so small that the weights stay where init put them.
  runRecipe({ ...small, outDir: path.join(dir, 'b'), init: path.join(dir, 'a', 'student.json'), steps: 1, lr: 1e-9, seed: 9 })
  const tuned = loadModel(path.join(dir, 'b', 'student.json')).model.parameters().map((p) => p.toFloat32Array())
  const worst = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((w, i) => Math.max(...w.map((v, j) => Math.abs(v - b[i]![j]!)))))
  t.true(worst(tuned, trained) < 1e-6, `init weights moved by ${worst(tuned, trained)}`)
  t.true(worst(trained, fresh) > 1e-3, 'the first run trained away from the initialisation')
  t.is(readCheckpointInfo(path.join(dir, 'b', 'student.json')).info.step, 1)
  // Weights of another width do not fit, and say so.
  t.throws(() => runRecipe({ ...small, outDir: path.join(dir, 'c'), model: { kind: 'spikerir', options: { width: 8, timeSteps: 2 } }, init: path.join(dir, 'a', 'student.json') }), { message: /^init: checkpoint .* does not fit this SpikerIR/ })
  t.false(fs.existsSync(path.join(dir, 'c')))
  fs.rmSync(dir, { recursive: true })
})

test('a student with more blocks grows from a smaller one: it starts near it, its added blocks learn, and shrinking is refused', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-grow-'))
  const small = { ...defaultRecipe(path.join(dir, 'a')), model: { kind: 'spikerir', options: { width: 4, timeSteps: 2, seed: 3 } }, steps: 3, patch: 16, batch: 2, warmup: 0, lr: 5e-3, val: null, data: { kind: 'deadLeaves', count: 4, size: 32, seed: 1 } } as Recipe
  runRecipe(small)
  const from = loadModel(path.join(dir, 'a', 'student.json')).model as unknown as SpikerIR
  const deepOptions = { width: 4, timeSteps: 2, seed: 3, blocks: [1, 2, 3, 3, 2, 1] as [number, number, number, number, number, number] }
  runRecipe({ ...small, outDir: path.join(dir, 'b'), model: { kind: 'spikerir', options: deepOptions }, init: path.join(dir, 'a', 'student.json'), steps: 1, lr: 1e-9, seed: 9 })
  const grown = loadModel(path.join(dir, 'b', 'student.json')).model as unknown as SpikerIR
  const fresh = new SpikerIR(deepOptions)
  const values = (m: SpikerIR) => new Map([...m.stateDict()].map(([n, v]) => [n, v.toFloat32Array()]))
  const [g, f, s] = [values(grown), values(fresh), values(from)]
  const close = (a: Float32Array, b: Float32Array, tol: number) => a.every((v, i) => Math.abs(v - b[i]!) <= tol * Math.max(1, Math.abs(b[i]!)))
  // Layers the small student has carry its weights; an added block's last tdBNs are 0.01 of their fresh values, the rest fresh.
  for (const [name, v] of g) {
    if (name.endsWith('running_mean') || name.endsWith('running_var')) continue
    const added = /^(encoder_level2\.1|encoder_level3\.[12]|decoder_level3\.[12]|decoder_level2\.1)\./.test(name)
    if (!added) t.true(close(v, s.get(name)!, 1e-5), `${name} keeps the small student's weights`)
    else if (/(residual\.5|shortcut\.1)\.module\.(weight|bias)$/.test(name)) t.true(close(v, f.get(name)!.map((x) => 0.01 * x), 1e-5), `${name} is 0.01 of its initialisation`)
    else t.true(close(v, f.get(name)!, 1e-5), `${name} keeps its initialisation`)
  }
  // By hand: tdBN starts at α·V_th with α = 1/√2 (V_th = 0.15), the residual branch's last one at 0.2·V_th; then × 0.01.
  t.true(close(g.get('encoder_level3.1.shortcut.1.module.weight')!, new Float32Array(16).fill(0.01 * 0.15 * Math.SQRT1_2), 1e-6))
  t.true(close(g.get('encoder_level3.1.residual.5.module.weight')!, new Float32Array(16).fill(0.01 * 0.2 * 0.15), 1e-6))
  // Near the small student's output (the added blocks pass 1 % of a block), far from a freshly drawn deep one's.
  const x = Tensor.rand([1, 1, 32, 32], { seed: 4 })
  const out = (m: SpikerIR) => (m.eval(), m.forward(x).toFloat32Array())
  const rms = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((acc, v, i) => acc + (v - b[i]!) ** 2, 0) / a.length)
  const [yFrom, yGrown, yFresh] = [out(from), out(grown), out(fresh)]
  t.true(rms(yGrown, yFrom) < 0.1 * rms(yFresh, yFrom), `grown ${rms(yGrown, yFrom)} vs fresh ${rms(yFresh, yFrom)} from the small student's output`)
  // The added blocks get gradients (the attention's ReLU would pass none to blocks started at exactly 0).
  grown.train()
  const loss = grown.forward(Tensor.rand([2, 1, 16, 16], { seed: 5 })).mean([0, 1, 2, 3])
  loss.backward()
  const grad = grown.encoder_level3.items[2]!.residual.layers[5]!.parameters()[0]!.grad
  t.true(grad !== null && grad.toFloat32Array().some((v) => v !== 0), 'an added block has a gradient')
  zeroGrad()
  // A student does not shrink into one with fewer blocks, and says so before writing anything.
  t.throws(() => runRecipe({ ...small, outDir: path.join(dir, 'c'), model: { kind: 'spikerir', options: { width: 4, timeSteps: 2, seed: 3, blocks: [1, 1, 2, 2, 1, 1] } }, init: path.join(dir, 'b', 'student.json') }), {
    message: /^init: .*blocks \[1, 2, 3, 3, 2, 1\] does not grow into one with blocks \[1, 1, 2, 2, 1, 1\]/,
  })
  t.false(fs.existsSync(path.join(dir, 'c')))
  fs.rmSync(dir, { recursive: true })
})
