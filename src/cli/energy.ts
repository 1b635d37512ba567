/**
 * `spikeir energy [--task T] --model CKPT --image IMG [--teacher CKPT] [--json]`:
 * per-layer and total energy (DESIGN §7) of a model — and of a teacher beside
 * it — on a real image, read with each model's channels (grey or colour).
 *
 * @module
 */
import { readImage } from '../io'
import { energyReport, type EnergyReport } from '../metrics/energy'
import { loadModel } from '../models/load'
import { scope, Tensor } from '../tensor'
import { UsageError, type FlagSpec, type Parsed } from './args'
import { modelFile, taskFlags, taskFromArgs } from './task'

export const summary = 'energy estimate of a model (and a teacher) on a real image'

export const flags: Record<string, FlagSpec> = {
  model: { type: 'string', description: 'checkpoint or published weights; default: the bundled student of the task (weights/)' },
  task: taskFlags['task']!,
  teacher: { type: 'string', description: 'a second model (e.g. DnCNN weights) to compare with' },
  image: { type: 'string', description: 'image to run on (required)' },
  json: { type: 'boolean', description: 'print one JSON object' },
}

function crop4(h: number, w: number): [number, number] {
  return [h - (h % 4), w - (w % 4)]
}

function report(args: Parsed, file: string, image: string): { file: string; parameters: number; report: EnergyReport } {
  const { model, imageChannels } = loadModel(file)
  // The task and the model must agree on channels; the image is read with the model's.
  const { channels: c } = taskFromArgs(args, imageChannels)
  return scope(() => {
    const img = readImage(image, { channels: c })
    const [, , h, w] = img.shape as [number, number, number, number]
    const [ch, cw] = crop4(h, w)
    if (ch === 0 || cw === 0) throw new Error(`--image '${image}' is ${h}×${w} pixels; the estimate needs at least 4×4 (the student down-samples twice)`)
    // The student needs multiples of 4; crop (not pad) so no layer sees invented pixels.
    const rows = img.toFloat32Array()
    const data = new Float32Array(c * ch * cw)
    for (let k = 0; k < c; k++) for (let y = 0; y < ch; y++) data.set(rows.subarray((k * h + y) * w, (k * h + y) * w + cw), (k * ch + y) * cw)
    const x = Tensor.fromData(data, [1, c, ch, cw])
    return { file, parameters: model.numParameters(), report: energyReport(model, x) }
  })
}

function print(label: string, r: { file: string; parameters: number; report: EnergyReport }): void {
  console.log(`${label}: ${r.file} (${r.parameters} parameters)`)
  // Per image: MACs of one time step, the steps T the layer runs, their
  // product (the equivalent ANN's MACs), and the accumulates of spike-fed layers.
  console.log('  layer'.padEnd(44) + 'input   rate     MACs/step    T   MACs         SOPs         energy (µJ)')
  for (const l of r.report.layers) {
    console.log(
      `  ${l.name.padEnd(42)}${l.input.padEnd(8)}${(l.firingRate === null ? '-' : l.firingRate.toFixed(3)).padEnd(9)}` +
        `${l.macsPerStep.toExponential(3).padEnd(13)}${String(l.timeSteps).padEnd(4)}${l.macs.toExponential(3).padEnd(13)}` +
        `${l.synapticOps.toExponential(3).padEnd(13)}${(l.energyPj / 1e6).toFixed(3)}`,
    )
  }
  const t = r.report
  console.log(
    `  total: ${t.totalMacs.toExponential(3)} MACs (${t.totalRealMacs.toExponential(3)} on real inputs), ` +
      `${t.totalSynapticOps.toExponential(3)} SOPs, ${(t.totalPj / 1e6).toFixed(3)} µJ per image`,
  )
}

export function run(args: Parsed): void {
  const image = args.flags['image']
  if (typeof image !== 'string') throw new UsageError('--image IMG is required')
  taskFromArgs(args)
  const model = report(args, modelFile(args), image)
  const teacher = typeof args.flags['teacher'] === 'string' ? report(args, args.flags['teacher'], image) : null
  const ratio = teacher ? teacher.report.totalPj / model.report.totalPj : null
  if (args.flags['json']) {
    console.log(JSON.stringify({ image, model, teacher, teacherToModelEnergy: ratio, note: model.report.note }))
    return
  }
  print('model', model)
  if (teacher) {
    print('teacher', teacher)
    console.log(`teacher / model energy: ${ratio!.toFixed(1)}×; parameters ${(teacher.parameters / model.parameters).toFixed(1)}×`)
  }
  console.log(model.report.note)
}
