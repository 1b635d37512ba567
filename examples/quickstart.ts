// The README's example: distil a spiking student from DnCNN-S, then score it.
//   node dist/examples/quickstart.js [TEACHER.safetensors] [STEPS]
// In your own project the module is 'spikeir' rather than '../index'.
import { defaultRecipe, evaluateDenoising, loadModel, runRecipe } from '../index'

// H-KD: a SpikerIR student (width 8, T = 4) learns σ = 25 denoising on dead-leaves
// patches from the published DnCNN-S, with hints from its layers 5, 10 and 15.
const teacher = process.argv[2] ?? 'dncnn_s_sigma25.safetensors'
const steps = Number(process.argv[3] ?? 2000)
const out = 'runs/quickstart'
runRecipe(
  { ...defaultRecipe(out), teacher, steps, valEvery: Math.ceil(steps / 4) },
  { onValidation: (step, m) => console.log(`step ${step}: ${m['psnr']!.toFixed(2)} dB`) },
)

// The checkpoint rebuilds the student on its own; score it on images it never saw.
const { model } = loadModel(`${out}/student.json`)
const heldOut = { kind: 'deadLeaves', count: 8, size: 128, seed: 7 } as const
console.log(`held out: ${evaluateDenoising(model, heldOut, 25).psnr.toFixed(2)} dB`)
