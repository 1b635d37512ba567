/**
 * Distils a spiking SpikerIR student from a DnCNN teacher with H-KD hints,
 * then compares the two on held-out images: PSNR and energy per image.
 *
 *   node dist/examples/distill-dncnn.js [--teacher FILE | --train-teacher] [--out DIR] [--steps N]
 *
 * The teacher is the file given, or the published DnCNN-S (σ = 25) from
 * ../shared when it is there; elsewhere (or with --train-teacher) a small
 * DnCNN is trained first, so the script runs on any machine. SPIKEIR_EXAMPLE_TINY=1 shrinks every size to a
 * few seconds' work (how CI runs it). In your own project, import from
 * 'spikeir' instead of '../index'.
 */
import * as fs from 'node:fs'
import * as path from 'node:path'
import { parseArgs } from 'node:util'

import { defaultRecipe, denoisingPairs, energyReport, evaluateDenoising, loadModel, runRecipe, type DataSource } from '../index'

const tiny = process.env['SPIKEIR_EXAMPLE_TINY'] === '1'
const { values } = parseArgs({ options: { teacher: { type: 'string' }, 'train-teacher': { type: 'boolean' }, out: { type: 'string' }, steps: { type: 'string' } } })
const out = values.out ?? 'runs/distill-dncnn'
const steps = Number(values.steps ?? (tiny ? 4 : 2000))
const sizes = tiny ? { patch: 16, batch: 2, val: { source: { kind: 'deadLeaves', count: 1, size: 32, seed: 2 }, limit: 1 } as const } : {}

// The published weights sit beside the repository (../shared/models).
const published = path.join(__dirname, '..', '..', '..', 'shared', 'models', 'dncnn_s_sigma25.safetensors')
let teacher = values['train-teacher'] ? null : (values.teacher ?? (fs.existsSync(published) ? published : null))
// DnCNN-S has 17 layers; the default hints read its layers 5, 10 and 15.
let hints: string[] | undefined
if (teacher === null) {
  console.log(values['train-teacher'] ? 'training a small DnCNN teacher first' : `no ${published}: training a small DnCNN teacher first`)
  runRecipe({ ...defaultRecipe(out), ...sizes, name: 'teacher', model: { kind: 'dncnn', options: { depth: 6, channels: 16 } }, steps: tiny ? 4 : 1000 })
  teacher = path.join(out, 'teacher.json')
  hints = ['encoder1:layer2', 'decoder1:layer4', 'refine:layer5']
}

// The student: SpikerIR "tiny" (width 8, T = 4), σ = 25 AWGN on dead-leaves patches.
const { metrics } = runRecipe(
  { ...defaultRecipe(out), ...sizes, teacher, ...(hints ? { hints } : {}), steps, valEvery: Math.max(1, Math.floor(steps / 4)) },
  { onValidation: (step, m) => console.log(`step ${step}: validation PSNR ${m['psnr']!.toFixed(2)} dB`) },
)
if (metrics === null) throw new Error('the run validated nothing')

// Held-out images the training never saw; both models scored with one noise protocol.
const heldOut: DataSource = { kind: 'deadLeaves', count: tiny ? 1 : 8, size: tiny ? 32 : 128, seed: 7 }
// Energy is counted on one noisy image: firing rates, and so the student's cost, depend on the input.
const [probe] = denoisingPairs(heldOut, 25, { limit: 1 })
for (const [name, file] of [
  ['teacher', teacher],
  ['student', path.join(out, 'student.json')],
] as const) {
  const { model } = loadModel(file)
  const { psnr, ssim } = evaluateDenoising(model, heldOut, 25)
  const energy = energyReport(model, probe!.input)
  console.log(`${name}: PSNR ${psnr.toFixed(2)} dB, SSIM ${ssim.toFixed(4)}, ${(energy.totalPj / 1e6).toFixed(3)} µJ per image`)
  model.dispose()
}
probe!.input.dispose()
probe!.target.dispose()
