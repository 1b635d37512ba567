/**
 * An independent float64 PReNet in plain TypeScript (direct 3×3 convolution
 * loops with zero padding, no engine ops), the reference of prenet.test.ts,
 * and the Rain100L protocol of the source's test script scored on it.
 *
 * Run directly (`node dist/__test__/prenet-reference.js [N | A-B]`), it prints
 * the full-image Y and RGB PSNR of the first N Rain100L pairs (2 by default)
 * or of pairs A … B: the figures prenet.test.ts checks spikeir against.
 */
import * as path from 'node:path'

import { listImages, readImage, readSafetensors } from '../index'

/** A planar float64 image or feature map `[channels, height, width]`. */
export interface Planes {
  c: number
  h: number
  w: number
  data: Float64Array
}

/** The published weights by name, as float64. */
export type Weights = Map<string, { shape: number[]; data: Float64Array }>

export function readWeights(file: string): Weights {
  return new Map(readSafetensors(file).tensors.map((a) => [a.name, { shape: a.shape, data: Float64Array.from(a.data) }]))
}

/** 3×3 convolution, stride 1, zero padding 1, with bias (cross-correlation, as PyTorch). */
export function conv3x3(x: Planes, weights: Weights, name: string): Planes {
  const wt = weights.get(`${name}.weight`)!
  const bias = weights.get(`${name}.bias`)!.data
  const [co, ci] = wt.shape as [number, number]
  if (ci !== x.c) throw new Error(`reference ${name}: ${x.c} input channels, weight wants ${ci}`)
  const { h, w } = x
  const src = x.data
  const wd = wt.data
  const out = new Float64Array(co * h * w)
  for (let o = 0; o < co; o++) {
    const ob = o * h * w
    out.fill(bias[o]!, ob, ob + h * w)
    for (let i = 0; i < ci; i++) {
      const ib = i * h * w
      for (let ky = 0; ky < 3; ky++) {
        // One kernel row at a time: out[y][x] += k0·in[y'][x−1] + k1·in[y'][x] + k2·in[y'][x+1], y' = y + ky − 1.
        const kb = ((o * ci + i) * 3 + ky) * 3
        const k0 = wd[kb]!
        const k1 = wd[kb + 1]!
        const k2 = wd[kb + 2]!
        const y0 = ky === 0 ? 1 : 0
        const y1 = ky === 2 ? h - 1 : h
        for (let y = y0; y < y1; y++) {
          const orow = ob + y * w
          const irow = ib + (y + ky - 1) * w
          out[orow]! += k1 * src[irow]! + (w > 1 ? k2 * src[irow + 1]! : 0)
          for (let xx = 1; xx < w - 1; xx++) out[orow + xx]! += k0 * src[irow + xx - 1]! + k1 * src[irow + xx]! + k2 * src[irow + xx + 1]!
          if (w > 1) out[orow + w - 1]! += k0 * src[irow + w - 2]! + k1 * src[irow + w - 1]!
        }
      }
    }
  }
  return { c: co, h, w, data: out }
}

const map = (x: Planes, f: (v: number) => number): Planes => ({ ...x, data: x.data.map(f) })
const zip = (a: Planes, b: Planes, f: (p: number, q: number) => number): Planes => ({ ...a, data: a.data.map((v, i) => f(v, b.data[i]!)) })
const cat = (a: Planes, b: Planes): Planes => {
  const data = new Float64Array(a.data.length + b.data.length)
  data.set(a.data)
  data.set(b.data, a.data.length)
  return { c: a.c + b.c, h: a.h, w: a.w, data }
}
const relu = (v: number) => (v > 0 ? v : 0)
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v))

/** What the reference gives back: the output and, per stage, h and the residual blocks' outputs. */
export interface ReferenceResult {
  output: Planes
  stages: { conv0: Planes; h: Planes; res: Planes[] }[]
}

/** PReNet on an RGB input in [0, 1], as the source's networks.py defines it. */
export function prenetReference(input: Planes, weights: Weights, stages = 6): ReferenceResult {
  const zeros = (): Planes => ({ c: 32, h: input.h, w: input.w, data: new Float64Array(32 * input.h * input.w) })
  let x = input
  let h = zeros()
  let c = zeros()
  const record: ReferenceResult['stages'] = []
  for (let s = 0; s < stages; s++) {
    const f0 = map(conv3x3(cat(input, x), weights, 'conv0.0'), relu)
    const z = cat(f0, h)
    const gi = map(conv3x3(z, weights, 'conv_i.0'), sigmoid)
    const gf = map(conv3x3(z, weights, 'conv_f.0'), sigmoid)
    const gg = map(conv3x3(z, weights, 'conv_g.0'), Math.tanh)
    const go = map(conv3x3(z, weights, 'conv_o.0'), sigmoid)
    c = { ...c, data: c.data.map((v, i) => gf.data[i]! * v + gi.data[i]! * gg.data[i]!) }
    h = zip(go, c, (o, cv) => o * Math.tanh(cv))
    let r = h
    const res: Planes[] = []
    for (let j = 1; j <= 5; j++) {
      const a = map(conv3x3(r, weights, `res_conv${j}.0`), relu)
      const b = map(conv3x3(a, weights, `res_conv${j}.2`), relu)
      r = zip(b, r, (p, q) => relu(p + q))
      res.push(r)
    }
    record.push({ conv0: f0, h, res })
    x = zip(conv3x3(r, weights, 'conv.0'), input, (p, q) => p + q)
  }
  return { output: x, stages: record }
}

/** An 8-bit image as exact float64 values k/255 (the engine's reader gives float32). */
export function readPlanes(file: string): Planes {
  const t = readImage(file, { channels: 3 })
  const [, c, h, w] = t.shape as [number, number, number, number]
  const data = Float64Array.from(t.toFloat32Array(), (v) => Math.round(v * 255) / 255)
  t.dispose()
  return { c, h, w, data }
}

/** The top-left `h × w` crop. */
export function crop(x: Planes, h: number, w: number): Planes {
  const data = new Float64Array(x.c * h * w)
  for (let ch = 0; ch < x.c; ch++) for (let y = 0; y < h; y++) data.set(x.data.subarray((ch * x.h + y) * x.w, (ch * x.h + y) * x.w + w), (ch * h + y) * w)
  return { c: x.c, h, w, data }
}

/**
 * PSNR of the protocol of the source: the output clipped to [0, 1] and
 * truncated to 8 bits (`np.uint8(255·out)`), then on the Y of MATLAB's
 * `rgb2ycbcr` for doubles (16/255 + (65.481 R + 128.553 G + 24.966 B)/255,
 * peak 1), or on RGB.
 */
export function protocolPsnr(output: Planes, target: Planes): { y: number; rgb: number } {
  const n = output.h * output.w
  const q = output.data.map((v) => Math.floor(Math.min(1, Math.max(0, v)) * 255) / 255)
  const luma = (d: Float64Array, i: number) => 16 / 255 + (65.481 * d[i]! + 128.553 * d[n + i]! + 24.966 * d[2 * n + i]!) / 255
  let seY = 0
  let seRgb = 0
  for (let i = 0; i < n; i++) seY += (luma(q, i) - luma(target.data, i)) ** 2
  for (let i = 0; i < 3 * n; i++) seRgb += (q[i]! - target.data[i]!) ** 2
  return { y: 10 * Math.log10(n / seY), rgb: 10 * Math.log10((3 * n) / seRgb) }
}

function main(): void {
  const shared = path.resolve(__dirname, '..', '..', '..', 'shared')
  const weights = readWeights(path.join(shared, 'models', 'prenet_rain100l.safetensors'))
  const dir = path.join(shared, 'data', 'derain', 'rain100l')
  // `N` scores the first N pairs, `A-B` the pairs A … B (1-based).
  const [from, to] = /^\d+-\d+$/.test(process.argv[2] ?? '') ? process.argv[2]!.split('-').map(Number) : [1, Number(process.argv[2] ?? 2)]
  const inputs = listImages(path.join(dir, 'input')).slice(from! - 1, to)
  const targets = listImages(path.join(dir, 'target')).slice(from! - 1, to)
  inputs.forEach((file, i) => {
    const t0 = Date.now()
    const { output } = prenetReference(readPlanes(file), weights)
    const p = protocolPsnr(output, readPlanes(targets[i]!))
    console.log(`${path.basename(file)}: Y ${p.y.toFixed(6)} dB, RGB ${p.rgb.toFixed(6)} dB (${((Date.now() - t0) / 1000).toFixed(0)} s)`)
  })
}

if (require.main === module) main()
