/**
 * Bring your own teacher: any module with `forwardHints(x, taps)` can hand
 * its features to a spiking student. Here a small residual CNN of our own is
 * trained as the ANN teacher with a plain training loop, then a SpikerIR
 * student learns from it with H-KD through the lower-level API
 * (`HKD`, `DataLoader`, `trainStudent`) that `runRecipe` is built on.
 *
 *   node dist/examples/custom-teacher.js [--out DIR]
 *
 * SPIKEIR_EXAMPLE_TINY=1 shrinks every size to a few seconds' work (how CI
 * runs it). In your own project, import from 'spikeir' instead of '../index'.
 */
import { parseArgs } from 'node:util'

import {
  AdamW,
  Conv2d,
  DataLoader,
  HKD,
  Module,
  SpikerIR,
  Tensor,
  denoisingPairs,
  evaluatePairs,
  loadModel,
  scope,
  trainStudent,
  zeroGrad,
  type DataLoaderOptions,
  type HintPair,
} from '../index'

/**
 * A three-layer residual denoiser. Its hint taps: `shallow` (after the first
 * conv and ReLU) and `deep` (after the second), both `[B, 16, H, W]`.
 */
class SmallTeacher extends Module {
  readonly stem: Conv2d
  readonly body: Conv2d
  readonly head: Conv2d

  constructor(seed = 0) {
    super()
    this.stem = this.registerModule('stem', new Conv2d(1, 16, 3, { padding: 1, seed }))
    this.body = this.registerModule('body', new Conv2d(16, 16, 3, { padding: 1, seed }))
    this.head = this.registerModule('head', new Conv2d(16, 1, 3, { padding: 1, seed }))
    // Each parameter from (seed, its name), as the built-in models do.
    this.initParameters(seed)
  }

  forward(x: Tensor): Tensor {
    const { output } = this.forwardHints(x, [])
    return output
  }

  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> } {
    for (const t of taps) if (t !== 'shallow' && t !== 'deep') throw new Error(`SmallTeacher: unknown hint tap '${t}' (shallow, deep)`)
    // The scope frees what is not returned: the caller owns the output and the requested features.
    return scope(() => {
      const shallow = this.stem.forward(x).relu()
      const deep = this.body.forward(shallow).relu()
      const output = x.sub(this.head.forward(deep))
      const all = new Map([
        ['shallow', shallow],
        ['deep', deep],
      ])
      return { output, features: new Map(taps.map((t) => [t, all.get(t)!])) }
    })
  }
}

const tiny = process.env['SPIKEIR_EXAMPLE_TINY'] === '1'
const { values } = parseArgs({ options: { out: { type: 'string' } } })
const out = values.out ?? 'runs/custom-teacher'
const steps = tiny ? 4 : 1500
const data: Omit<DataLoaderOptions, 'startStep'> = {
  source: { kind: 'deadLeaves', count: tiny ? 8 : 200, size: tiny ? 32 : 96, seed: 1 },
  patch: tiny ? 16 : 48,
  batch: tiny ? 2 : 8,
  degradation: { kind: 'awgn', sigma: 25 },
}
const val = denoisingPairs({ kind: 'deadLeaves', count: tiny ? 1 : 4, size: tiny ? 32 : 128, seed: 2 }, 25)

// 1. The teacher, trained by hand: L1 loss, AdamW, one scope per step.
const teacher = new SmallTeacher(1)
const opt = new AdamW(teacher.namedParameters(), { lr: 2e-3 })
const loader = new DataLoader({ ...data, seed: 1 })
for (let step = 0; step < steps; step++) {
  scope(() => {
    const { input, target } = loader.next()
    teacher.forward(input).l1Loss(target).backward()
    opt.step()
    zeroGrad()
  })
}
loader.dispose()
teacher.eval()
console.log(`teacher: ${evaluatePairs(teacher, val).psnr.toFixed(2)} dB`)

// 2. The student and its hints: student tap → teacher tap, with the channels of each.
const options = { width: 8, timeSteps: 4, seed: 0 }
const student = new SpikerIR(options)
const pairs: HintPair[] = [
  { student: 'encoder1', teacher: 'shallow', studentChannels: student.tapChannels('encoder1'), teacherChannels: 16 },
  { student: 'decoder1', teacher: 'deep', studentChannels: student.tapChannels('decoder1'), teacherChannels: 16 },
]
const hkd = new HKD(student, teacher, pairs, { gamma: 0.12, lambdaFft: 0.1 })

// 3. Distillation: checkpoints, the JSONL log and validation come from trainStudent.
const { validation } = trainStudent({
  student,
  hkd,
  data: (startStep) => new DataLoader({ ...data, seed: 0, startStep }),
  settings: { steps, lr: 1e-3, warmup: Math.floor(steps / 20), minLr: 1e-5, weightDecay: 1e-4, clipNorm: 1, seed: 0, valEvery: 0, checkpointEvery: 0, outDir: out },
  // Recorded in the checkpoint, so loadModel can rebuild the student from the file alone.
  config: { model: { kind: 'spikerir', options } },
  validate: (m) => {
    const r = evaluatePairs(m, val)
    return { psnr: r.psnr, ssim: r.ssim }
  },
  onStep: (r) => {
    if (r.step % Math.max(1, Math.floor(steps / 5)) === 0) console.log(`step ${r.step}: loss ${r.loss.toFixed(4)} (hint ${r.hint.toFixed(4)})`)
  },
})
console.log(`student: ${validation.at(-1)!.metrics['psnr']!.toFixed(2)} dB at step ${validation.at(-1)!.step}`)
hkd.dispose()
student.dispose()
teacher.dispose()

// The checkpoint on its own: the student as `spikeir eval` and `spikeir denoise` load it.
const { model } = loadModel(`${out}/student.json`)
console.log(`reloaded student: ${evaluatePairs(model, val).psnr.toFixed(2)} dB`)
model.dispose()
for (const p of val) {
  p.input.dispose()
  p.target.dispose()
}
