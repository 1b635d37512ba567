import * as path from 'node:path'

import type { ExecutionContext } from 'ava'

import { DnCNN, psnr, readSafetensors, restore, Tensor } from '../index'
import { loadModel } from '../src/models/load'
import { setupTask, taskPairs, type TaskParams } from '../src/tasks'
import { sharedTest } from './helpers'

const { run: withShared, shared } = sharedTest()

/**
 * An independent DnCNN in float64 on the host: 3×3 cross-correlations with
 * zero padding 1 and bias, ReLU after every layer but the last, output =
 * input − the last layer. Only the weight file's arrays are shared with the
 * engine under test.
 */
function referenceDnCNN(file: string, x: Float64Array, c: number, h: number, w: number): Float64Array {
  const { tensors } = readSafetensors(file)
  const byName = new Map(tensors.map((a) => [a.name, a]))
  const depth = tensors.filter((a) => /^layers\.\d+\.weight$/.test(a.name)).length
  const n = h * w
  let cur = Float64Array.from(x)
  let inC = c
  for (let l = 0; l < depth; l++) {
    const wt = byName.get(`layers.${l}.weight`)!
    const bias = byName.get(`layers.${l}.bias`)!.data
    const outC = wt.shape[0]!
    const out = new Float64Array(outC * n)
    for (let o = 0; o < outC; o++) {
      const dst = out.subarray(o * n, (o + 1) * n)
      dst.fill(bias[o]!)
      for (let i = 0; i < inC; i++) {
        const src = cur.subarray(i * n, (i + 1) * n)
        for (let ky = 0; ky < 3; ky++) {
          for (let kx = 0; kx < 3; kx++) {
            const k = wt.data[((o * inC + i) * 3 + ky) * 3 + kx]!
            const dy = ky - 1
            const dx = kx - 1
            for (let y = Math.max(0, -dy); y < Math.min(h, h - dy); y++) {
              const row = y * w
              const srow = (y + dy) * w + dx
              for (let xx = Math.max(0, -dx); xx < Math.min(w, w - dx); xx++) dst[row + xx]! += k * src[srow + xx]!
            }
          }
        }
      }
      if (l < depth - 1) for (let j = 0; j < n; j++) if (dst[j]! < 0) dst[j] = 0
    }
    cur = out
    inC = outC
  }
  return x.map((v, j) => v - cur[j]!)
}

/** A `side`² crop at (y0, x0) of a planar `[c, h, w]` image. */
function crop(data: Float32Array, c: number, h: number, w: number, y0: number, x0: number, side: number): Float32Array {
  const out = new Float32Array(c * side * side)
  for (let ch = 0; ch < c; ch++) for (let y = 0; y < side; y++) out.set(data.subarray(ch * h * w + (y0 + y) * w + x0, ch * h * w + (y0 + y) * w + x0 + side), (ch * side + y) * side)
  return out
}

const SIDE = 24

/**
 * The first two images of the task's test set, degraded by the task's test
 * protocol, cropped to 24² in their interior (the reference is slow): the
 * engine's output matches the float64 reference to 1e-4, the PSNRs agree to
 * 0.01 dB, and the teacher improves on its input by at least `gain` dB.
 */
function checkTeacher(t: ExecutionContext, file: string, task: string, params: TaskParams, set: string, channels: 1 | 3, gain: number): void {
  const weights = path.join(shared, 'models', file)
  const model = DnCNN.fromSafetensors(weights)
  t.is(model.depth, 20)
  t.is(model.layers.items[0]!.inChannels, channels)
  const setup = setupTask(task, params, channels)
  const pairs = taskPairs(setup, path.join(shared, 'data', set), { limit: 2 })
  try {
    t.is(pairs.length, 2)
    for (const p of pairs) {
      const [, c, h, w] = p.target.shape as [number, number, number, number]
      t.is(c, channels)
      const y0 = Math.floor(h / 2) - SIDE / 2
      const x0 = Math.floor(w / 2) - SIDE / 2
      const input = crop(p.input.toFloat32Array(), c, h, w, y0, x0, SIDE)
      const target = crop(p.target.toFloat32Array(), c, h, w, y0, x0, SIDE)
      const x = Tensor.fromData(input, [1, c, SIDE, SIDE])
      const mine = restore(model, x, { tile: 0 })
      const ours = mine.toFloat32Array()
      x.dispose()
      mine.dispose()
      const ref = referenceDnCNN(weights, Float64Array.from(input), c, SIDE, SIDE).map((v) => Math.min(1, Math.max(0, v)))
      let worst = 0
      for (let j = 0; j < ref.length; j++) worst = Math.max(worst, Math.abs(ours[j]! - ref[j]!))
      const pOurs = psnr(ours, target, setup.metric)
      const pRef = psnr(ref, target, setup.metric)
      const pIn = psnr(input, target, setup.metric)
      t.log(`${file} ${p.name}: input ${pIn.toFixed(3)} dB, reference ${pRef.toFixed(3)} dB, spikeir ${pOurs.toFixed(3)} dB, max |Δ| ${worst.toExponential(2)}`)
      t.true(worst < 1e-4, `${p.name}: max |spikeir − reference| = ${worst}`)
      t.true(Math.abs(pOurs - pRef) < 0.01, `${p.name}: ${pOurs} vs ${pRef} dB`)
      t.true(pRef > pIn + gain, `${p.name}: the reference improves ${pIn.toFixed(2)} → ${pRef.toFixed(2)} dB`)
    }
  } finally {
    for (const p of pairs) {
      p.input.dispose()
      p.target.dispose()
    }
    model.dispose()
  }
}

withShared('loadModel reads depth and image channels of the 20-layer DnCNN files', (t) => {
  for (const [file, channels] of [['dncnn_b_gray.safetensors', 1], ['cdncnn_b_color.safetensors', 3], ['dncnn3.safetensors', 1], ['dncnn_s_sigma25.safetensors', 1]] as const) {
    const { model, spec, imageChannels } = loadModel(path.join(shared, 'models', file))
    t.is(spec.kind, 'dncnn')
    t.deepEqual(spec.options, { depth: file.startsWith('dncnn_s') ? 17 : 20, channels: 64, imageChannels: channels }, file)
    t.is(imageChannels, channels)
    model.dispose()
  }
})

withShared('DnCNN.fromSafetensors refuses options that disagree with the file', (t) => {
  t.throws(() => DnCNN.fromSafetensors(path.join(shared, 'models', 'cdncnn_b_color.safetensors'), { imageChannels: 1 }), { message: /holds imageChannels 3, not 1/ })
})

withShared('CDnCNN-B matches a float64 reference on CBSD68 crops (σ = 25, RGB)', (t) => {
  checkTeacher(t, 'cdncnn_b_color.safetensors', 'denoise', { sigma: 25 }, 'cbsd68', 3, 3)
})

withShared('DnCNN-B matches a float64 reference on BSD68 crops (σ = 25)', (t) => {
  checkTeacher(t, 'dncnn_b_gray.safetensors', 'denoise', { sigma: 25 }, 'bsd68', 1, 3)
})

withShared('DnCNN-3 matches a float64 reference on Classic5 crops (JPEG q = 10)', (t) => {
  checkTeacher(t, 'dncnn3.safetensors', 'jpeg', { quality: 10 }, 'jpeg/classic5', 1, 0.3)
})
