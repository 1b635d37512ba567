// Correctness checks from review: batch norm under noGrad, the teacher's
// mode inside H-KD, neuron overrides, one evaluation protocol, per-name
// initialisation seeds and the energy report's structure.
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { BatchNorm2d, Conv2d, DnCNN, E_AC, E_MAC, HKD, Linear, Module, SpikerIR, Tensor, UNet, defaultRecipe, energyReport, noGrad, runRecipe, scope, writeImage, zeroGrad } from '../index'
import { lcg } from './helpers'

const cliMain = path.join(__dirname, '..', 'src', 'cli', 'main.js')

/** A teacher whose hint passes through batch norm: train and eval modes give different features. */
class BatchNormTeacher extends Module {
  readonly conv = this.registerModule('conv', new Conv2d(1, 2, 3, { seed: 4 }))
  readonly bn = this.registerModule('bn', new BatchNorm2d(2))

  forward(x: Tensor): Tensor {
    const r = this.forwardHints(x, [])
    return r.output
  }

  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> } {
    return scope(() => {
      const f = this.bn.forward(this.conv.forward(x))
      const output = x.add(f.mean(1, true))
      return { output, features: new Map(taps.includes('bn') ? [['bn', f]] : []) }
    })
  }
}

test('batch norm in training mode leaves its running statistics alone under noGrad', (t) => {
  const bn = new BatchNorm2d(2)
  // Channel means 0.5 + 2·c, so an update would move the running mean visibly.
  const data = Float32Array.from(lcg(1, 2 * 2 * 3 * 3), (v, i) => v + 0.5 + 2 * (Math.floor(i / 9) % 2))
  const x = Tensor.fromData(data, [2, 2, 3, 3])
  const y = noGrad(() => bn.forward(x))
  t.deepEqual([...bn.runningMean.toFloat32Array()], [0, 0])
  t.deepEqual([...bn.runningVar.toFloat32Array()], [1, 1])
  // Still the training-mode output: batch statistics, so each channel has mean 0.
  const yv = y.toFloat32Array()
  for (let c = 0; c < 2; c++) {
    let s = 0
    for (let n = 0; n < 2; n++) for (let i = 0; i < 9; i++) s += yv[(n * 2 + c) * 9 + i]!
    t.true(Math.abs(s / 18) < 1e-5, `channel ${c} mean ${s / 18}`)
  }
  // With the tape on, the same forward does update them (momentum 0.1).
  bn.forward(x).dispose()
  const rm = bn.runningMean.toFloat32Array()
  t.true(rm[0]! > 0.02 && rm[1]! > 0.2, `running mean ${rm}`)
  zeroGrad()
  for (const v of [x, y]) v.dispose()
  bn.dispose()
})

test('inside H-KD the teacher runs in evaluation mode, whatever mode it was left in', (t) => {
  zeroGrad()
  const student = new SpikerIR({ width: 4, timeSteps: 2, seed: 1 })
  const teacher = new BatchNormTeacher().train()
  const pair = { student: 'encoder1', teacher: 'bn', studentChannels: student.tapChannels('encoder1'), teacherChannels: 2 }
  const hkd = new HKD(student, teacher, [pair], { gamma: 1 })
  const clean = Tensor.rand([2, 1, 8, 8], { seed: 3 })
  const noisy = clean.add(Tensor.randn(clean.shape, { seed: 4, std: 0.1 }))
  const { output, parts } = hkd.loss(noisy, clean, 0)
  t.true(teacher.training, 'the teacher is handed back in the mode it came in')
  t.deepEqual([...teacher.bn.runningMean.toFloat32Array()], [0, 0], 'the teacher keeps its running statistics')
  // The reference hint: the teacher's features in evaluation mode (running statistics).
  const ref = noGrad(() =>
    scope(() => {
      const s = student.forwardHints(noisy, ['encoder1'])
      teacher.eval()
      const te = teacher.forwardHints(noisy, ['bn'])
      teacher.train()
      const ft = te.features.get('bn')!
      return hkd.adapters.items[0]!.adapt(s.features.get('encoder1')!, ft.shape).mseLoss(ft).toFloat32Array()[0]!
    }),
  )
  t.true(Math.abs(parts.hint - ref) < 1e-6 * (1 + ref), `hint ${parts.hint} vs evaluation-mode reference ${ref}`)
  parts.loss.dispose()
  output.dispose()
  zeroGrad()
  for (const m of [student, teacher, hkd]) m.dispose()
})

test('a partial neuron override keeps the student defaults and the tdBN initialisation', (t) => {
  for (const [neuron, want] of [
    [{ kind: 'if' }, { kind: 'if', vThreshold: 0.15 }],
    [{ vThreshold: 0.3 }, { kind: 'lif', vThreshold: 0.3 }],
  ] as const) {
    const m = new SpikerIR({ width: 4, timeSteps: 2, neuron })
    t.deepEqual(m.config.neuron, { kind: want.kind, tau: 2, vThreshold: want.vThreshold, vReset: 0, decayInput: false, detachReset: false, surrogate: 'sigmoid', alpha: 4 })
    const neurons = m.neurons()
    t.true(neurons.length > 0)
    for (const [name, n] of neurons) {
      t.deepEqual(
        [n.kind, n.tau, n.vThreshold, n.vReset, n.decayInput, n.surrogate, n.alpha],
        [want.kind, 2, want.vThreshold, 0, false, 'sigmoid', 4],
        name,
      )
    }
    // tdBN weights: α·V_th (α = 1/√2), and 0.2·V_th for the second BN of a residual branch.
    const block = m.encoder_level1.items[0]!
    const bnWeight = (seq: Module, i: number) => seq.namedParameters().find(([n]) => n === `${i}.module.weight`)![1].toFloat32Array()[0]!
    const close = (a: number, b: number) => Math.abs(a - b) < 1e-7
    t.true(close(bnWeight(block.residual, 2), Math.SQRT1_2 * want.vThreshold), `residual.2 ${bnWeight(block.residual, 2)}`)
    t.true(close(bnWeight(block.residual, 5), 0.2 * want.vThreshold), `residual.5 ${bnWeight(block.residual, 5)}`)
    t.true(close(bnWeight(block.shortcut, 1), Math.SQRT1_2 * want.vThreshold), `shortcut.1 ${bnWeight(block.shortcut, 1)}`)
    t.true(close(bnWeight(m.down1_2, 2), Math.SQRT1_2 * want.vThreshold), `down1_2.2 ${bnWeight(m.down1_2, 2)}`)
    m.dispose()
  }
})

test('validation during training and spikeir eval give the same figures for the same weights', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-protocol-'))
  const images = path.join(dir, 'images')
  fs.mkdirSync(images)
  // Two smooth 16×16 grey images (8-bit PNGs, so both paths read the same values).
  for (const [k, name] of ['a.png', 'b.png'].entries()) {
    const v = Float32Array.from({ length: 256 }, (_, i) => 0.5 + 0.3 * Math.sin((i % 16) / (3 + k)) * Math.cos(Math.floor(i / 16) / 4))
    writeImage(path.join(images, name), Tensor.fromData(v, [1, 1, 16, 16]))
  }
  const out = path.join(dir, 'run')
  const { metrics } = runRecipe({
    ...defaultRecipe(out),
    model: { kind: 'spikerir', options: { width: 4, timeSteps: 2, seed: 1 } },
    data: { kind: 'deadLeaves', count: 4, size: 32, seed: 1 },
    patch: 16,
    batch: 2,
    steps: 2,
    warmup: 0,
    val: { source: { kind: 'folder', dir: images, channels: 1 }, limit: 2 },
    name: 'student',
  })
  t.truthy(metrics)
  const r = spawnSync(process.execPath, [cliMain, 'eval', '--model', path.join(out, 'student.json'), '--data', images, '--sigma', '25', '--json'], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  const result = JSON.parse(r.stdout) as { psnr: number; ssim: number; images: number }
  t.is(result.images, 2)
  t.true(Math.abs(result.psnr - metrics!['psnr']!) < 1e-9, `eval ${result.psnr} dB vs validation ${metrics!['psnr']} dB`)
  t.true(Math.abs(result.ssim - metrics!['ssim']!) < 1e-12, `eval SSIM ${result.ssim} vs validation ${metrics!['ssim']}`)
  fs.rmSync(dir, { recursive: true })
})

test('initialisation seeds come from (model seed, parameter name): no two parameters share a random prefix', (t) => {
  const student = new SpikerIR({ width: 4, timeSteps: 4, seed: 0 })
  const pairs = ['encoder1', 'decoder1'].map((s) => ({ student: s, teacher: 'layer1', studentChannels: student.tapChannels(s), teacherChannels: 4 }))
  const models: [string, Module][] = [
    ['spikerir0', student],
    ['spikerir1', new SpikerIR({ width: 4, timeSteps: 4, seed: 1 })],
    ['dncnn0', new DnCNN({ depth: 3, channels: 4, seed: 0 })],
    ['dncnn101', new DnCNN({ depth: 3, channels: 4, seed: 101 })],
    ['unet0', new UNet({ width: 4, seed: 0 })],
    ['hkd0', new HKD(student, null, pairs, { seed: 0 })],
  ]
  // Uniform U(−b, b) parameters: v = b·(2u − 1), so v[i]/v[0] depends on the
  // draws u only, not on the bound. Equal ratios mean the same random stream.
  const drawn: { name: string; ratios: number[] }[] = []
  for (const [model, m] of models) {
    for (const [name, p] of m.namedParameters()) {
      const v = p.toFloat32Array()
      if (v.length < 4 || v.every((x) => x === v[0])) continue // constant inits (tdBN, zeroed outputs)
      drawn.push({ name: `${model}:${name}`, ratios: [1, 2, 3].map((i) => v[i]! / v[0]!) })
    }
  }
  t.true(drawn.length > 60, `${drawn.length} random parameters`)
  const shared: string[] = []
  for (let a = 0; a < drawn.length; a++) {
    for (let b = a + 1; b < drawn.length; b++) {
      const ra = drawn[a]!.ratios
      const rb = drawn[b]!.ratios
      if (ra.every((r, i) => Math.abs(r - rb[i]!) <= 1e-4 * (1 + Math.abs(r)))) shared.push(`${drawn[a]!.name} = ${drawn[b]!.name}`)
    }
  }
  t.deepEqual(shared, [])
  // Still reproducible: the same seed gives the same weights.
  const again = new SpikerIR({ width: 4, timeSteps: 4, seed: 0 })
  t.deepEqual(again.encoder_level1.items[0]!.attn.temporal.fc2.weight.toFloat32Array(), student.encoder_level1.items[0]!.attn.temporal.fc2.weight.toFloat32Array())
  for (const [, m] of [...models, ['again', again] as [string, Module]]) m.dispose()
})

test('the energy report of SpikerIR lists every conv and linear layer, spike-fed by structure, with MACs per step, T and SOPs', (t) => {
  const model = new SpikerIR({ width: 4, timeSteps: 2, seed: 3 }).eval()
  // A black-and-white image: binary values, yet the embedding conv is fed real values by construction.
  const image = Tensor.fromData(Float32Array.from({ length: 64 }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0)), [1, 1, 8, 8])
  const report = energyReport(model, image)
  // Spike-fed (DESIGN §4): the conv after the LIF of every LIF → conv → tdBN unit.
  const levels = ['encoder_level1', 'encoder_level2', 'encoder_level3', 'decoder_level3', 'decoder_level2', 'decoder_level1']
  const spikeFed = new Set([
    ...levels.flatMap((l) => [`${l}.0.residual.1.module`, `${l}.0.residual.4.module`]),
    ...['down1_2.1.module', 'down2_3.1.module', 'up3_2.body.1.module', 'reduce_chan_level2.1.module', 'up2_1.body.1.module'],
  ])
  t.is(spikeFed.size, 17)
  const weighted = model.namedModules().filter(([, m]) => m instanceof Conv2d || m instanceof Linear)
  const seen = new Map<string, number>()
  for (const l of report.layers.filter((l) => l.kind !== 'gate')) {
    const base = l.name.replace(/#\d+$/, '')
    seen.set(base, (seen.get(base) ?? 0) + 1)
  }
  // Every conv once; every gate MLP layer twice (average and maximum summaries).
  t.deepEqual(
    [...seen].sort(),
    weighted.map(([n, m]) => [n, m instanceof Linear ? 2 : 1] as [string, number]).sort(),
  )
  for (const l of report.layers) {
    const base = l.name.replace(/#\d+$/, '')
    t.is(l.input, spikeFed.has(base) ? 'spikes' : 'real', l.name)
    t.is(l.macs, l.macsPerStep * l.timeSteps, l.name)
    if (l.input === 'spikes') {
      t.true(l.firingRate !== null && l.firingRate >= 0 && l.firingRate <= 1, l.name)
      t.true(Math.abs(l.synapticOps - l.firingRate! * l.macs) <= 1e-9 * l.macs, l.name)
      t.true(Math.abs(l.energyPj - E_AC * l.synapticOps) <= 1e-9 * (1 + l.energyPj), l.name)
    } else {
      t.is(l.firingRate, null, l.name)
      t.is(l.synapticOps, 0, l.name)
      t.true(Math.abs(l.energyPj - E_MAC * l.macs) <= 1e-9 * l.energyPj, l.name)
    }
  }
  // Hand-derived MACs per image and step (8×8 pixels; d = 4, T = 2):
  const layer = (name: string) => report.layers.find((l) => l.name === name)!
  // embedding 1 → 4, 3×3: 64 · 4 · 9 = 2304, on T = 2 steps;
  t.deepEqual([layer('patch_embed.module').macsPerStep, layer('patch_embed.module').timeSteps], [2304, 2])
  // first residual conv 4 → 4, 3×3: 64 · 4 · 4 · 9 = 9216, on T = 2 steps;
  t.deepEqual([layer('encoder_level1.0.residual.1.module').macsPerStep, layer('encoder_level1.0.residual.1.module').timeSteps], [9216, 2])
  // after the mean over T, the refinement conv 8 → 8, 3×3: 64 · 8 · 8 · 9 = 36864 and the output conv 8 → 1: 4608, once.
  t.deepEqual([layer('refinement.conv1').macsPerStep, layer('refinement.conv1').timeSteps], [36864, 1])
  t.deepEqual([layer('output').macsPerStep, layer('output').timeSteps], [4608, 1])
  const sum = (f: (l: (typeof report.layers)[number]) => number) => report.layers.reduce((a, l) => a + f(l), 0)
  t.true(Math.abs(report.totalPj - sum((l) => l.energyPj)) <= 1e-9 * report.totalPj)
  t.is(report.totalSynapticOps, sum((l) => l.synapticOps))
  image.dispose()
  model.dispose()
})
