/**
 * An independent float64 LKD-Net in plain TypeScript (direct convolution
 * loops, its own reflect padding, batch norm, layer norm and pixel shuffle,
 * no engine ops), written from the source's `models/LKD.py` as the
 * reference of lkdnet.test.ts.
 *
 * Run directly (`node dist/__test__/lkdnet-reference.js [N] [SIZE]`), it
 * prints the RGB PSNR of the float output on the first N SOTS-indoor pairs
 * (1 by default), centre-cropped to SIZE × SIZE (whole images without SIZE).
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

function weight(weights: Weights, name: string): { shape: number[]; data: Float64Array } {
  const v = weights.get(name)
  if (!v) throw new Error(`reference: no tensor '${name}' in the weights`)
  return v
}

/** PyTorch's `reflect`: index p of an axis of `size` padded by `before`. */
function mirror(p: number, before: number, size: number): number {
  let i = p - before
  if (i < 0) i = -i
  if (i >= size) i = 2 * (size - 1) - i
  if (i < 0 || i >= size) throw new Error('reference: reflect padding larger than the side')
  return i
}

export function padReflect(x: Planes, top: number, bottom: number, left: number, right: number): Planes {
  const h = x.h + top + bottom
  const w = x.w + left + right
  const data = new Float64Array(x.c * h * w)
  for (let c = 0; c < x.c; c++) {
    for (let y = 0; y < h; y++) {
      const sy = mirror(y, top, x.h)
      for (let xx = 0; xx < w; xx++) data[(c * h + y) * w + xx] = x.data[(c * x.h + sy) * x.w + mirror(xx, left, x.w)]!
    }
  }
  return { c: x.c, h, w, data }
}

interface ConvArgs {
  stride?: number
  /** Zero padding on every side. */
  padding?: number
  dilation?: number
  groups?: number
}

/** Convolution (cross-correlation, as PyTorch) with weights `name.weight` and, if present, `name.bias`. */
export function conv(x: Planes, weights: Weights, name: string, args: ConvArgs = {}): Planes {
  const { stride = 1, padding = 0, dilation = 1, groups = 1 } = args
  const wt = weight(weights, `${name}.weight`)
  const bias = weights.get(`${name}.bias`)?.data
  const [co, cg, kh, kw] = wt.shape as [number, number, number, number]
  if (cg * groups !== x.c) throw new Error(`reference ${name}: ${x.c} input channels, weight wants ${cg}·${groups}`)
  const oh = Math.floor((x.h + 2 * padding - dilation * (kh - 1) - 1) / stride) + 1
  const ow = Math.floor((x.w + 2 * padding - dilation * (kw - 1) - 1) / stride) + 1
  const out = new Float64Array(co * oh * ow)
  const perGroup = co / groups
  for (let o = 0; o < co; o++) {
    const ob = o * oh * ow
    if (bias) out.fill(bias[o]!, ob, ob + oh * ow)
    const g = Math.floor(o / perGroup)
    for (let i = 0; i < cg; i++) {
      const ib = (g * cg + i) * x.h * x.w
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++) {
          const k = wt.data[((o * cg + i) * kh + ky) * kw + kx]!
          for (let y = 0; y < oh; y++) {
            const sy = y * stride + ky * dilation - padding
            if (sy < 0 || sy >= x.h) continue
            for (let xx = 0; xx < ow; xx++) {
              const sx = xx * stride + kx * dilation - padding
              if (sx < 0 || sx >= x.w) continue
              out[ob + y * ow + xx]! += k * x.data[ib + sy * x.w + sx]!
            }
          }
        }
      }
    }
  }
  return { c: co, h: oh, w: ow, data: out }
}

const map = (x: Planes, f: (v: number, c: number) => number): Planes => {
  const hw = x.h * x.w
  return { ...x, data: x.data.map((v, i) => f(v, Math.floor(i / hw))) }
}
const zip = (a: Planes, b: Planes, f: (p: number, q: number) => number): Planes => ({ ...a, data: a.data.map((v, i) => f(v, b.data[i]!)) })
const add = (a: Planes, b: Planes) => zip(a, b, (p, q) => p + q)
const relu = (v: number) => (v > 0 ? v : 0)
const sigmoid = (v: number) => 1 / (1 + Math.exp(-v))

/** The mean of each channel. */
function channelMeans(x: Planes): number[] {
  const hw = x.h * x.w
  return Array.from({ length: x.c }, (_, c) => {
    let s = 0
    for (let i = 0; i < hw; i++) s += x.data[c * hw + i]!
    return s / hw
  })
}

/** A 1×1 conv on a vector of channels (bias if present). */
function dense(v: number[], weights: Weights, name: string): number[] {
  const wt = weight(weights, `${name}.weight`)
  const bias = weights.get(`${name}.bias`)?.data
  const [co, ci] = wt.shape as [number, number]
  return Array.from({ length: co }, (_, o) => {
    let s = bias ? bias[o]! : 0
    for (let i = 0; i < ci; i++) s += wt.data[o * ci + i]! * v[i]!
    return s
  })
}

function batchNorm(x: Planes, weights: Weights, name: string): Planes {
  const m = weight(weights, `${name}.running_mean`).data
  const v = weight(weights, `${name}.running_var`).data
  const g = weight(weights, `${name}.weight`).data
  const b = weight(weights, `${name}.bias`).data
  return map(x, (t, c) => ((t - m[c]!) / Math.sqrt(v[c]! + 1e-5)) * g[c]! + b[c]!)
}

/** LKD-Net's LayerNorm: statistics over C, H and W of the image, per-channel affine. */
function layerNormCHW(x: Planes, weights: Weights, name: string): Planes {
  const n = x.data.length
  let mean = 0
  for (const t of x.data) mean += t
  mean /= n
  let varSum = 0
  for (const t of x.data) varSum += (t - mean) ** 2
  const std = Math.sqrt(varSum / n + 1e-5)
  const g = weight(weights, `${name}.weight`).data
  const b = weight(weights, `${name}.bias`).data
  return map(x, (t, c) => ((t - mean) / std) * g[c]! + b[c]!)
}

function pixelShuffle(x: Planes, r: number): Planes {
  const c = x.c / (r * r)
  const h = x.h * r
  const w = x.w * r
  const data = new Float64Array(x.data.length)
  for (let ch = 0; ch < c; ch++) {
    for (let i = 0; i < r; i++) {
      for (let j = 0; j < r; j++) {
        for (let y = 0; y < x.h; y++) {
          for (let xx = 0; xx < x.w; xx++) {
            data[(ch * h + y * r + i) * w + xx * r + j] = x.data[((ch * r * r + i * r + j) * x.h + y) * x.w + xx]!
          }
        }
      }
    }
  }
  return { c, h, w, data }
}

function lkdBlock(x: Planes, weights: Weights, name: string): Planes {
  let t = batchNorm(x, weights, `${name}.norm1`)
  t = conv(t, weights, `${name}.Linear1`)
  t = conv(padReflect(t, 2, 2, 2, 2), weights, `${name}.DWConv`, { groups: t.c })
  t = conv(padReflect(t, 9, 9, 9, 9), weights, `${name}.DWDConv`, { groups: t.c, dilation: 3 })
  const y = add(conv(t, weights, `${name}.Linear2`), x)
  const z = batchNorm(y, weights, `${name}.norm2`)
  // CEFN: attn = scaler · σ(ca(avgpool(z))); out = LN(mlp(z)) · attn.
  const pooled = channelMeans(z)
  const gate = dense(dense(pooled, weights, `${name}.cemlp.ca.1`).map(relu), weights, `${name}.cemlp.ca.3`).map(sigmoid)
  const scaler = weight(weights, `${name}.cemlp.scaler`).data
  let m = conv(z, weights, `${name}.cemlp.mlp.mlp.0`)
  m = map(conv(m, weights, `${name}.cemlp.mlp.mlp.1`, { padding: 1, groups: m.c }), relu)
  m = layerNormCHW(conv(m, weights, `${name}.cemlp.mlp.mlp.3`), weights, `${name}.cemlp.norm`)
  return add(
    map(m, (v, c) => v * scaler[c]! * gate[c]!),
    y,
  )
}

function level(x: Planes, weights: Weights, name: string): Planes {
  let y = x
  for (let j = 0; weights.has(`${name}.blocks.${j}.norm1.weight`); j++) y = lkdBlock(y, weights, `${name}.blocks.${j}`)
  return y
}

/** Selective-kernel fusion of two branches (softmax over the branches per channel). */
function skFusion(a: Planes, b: Planes, weights: Weights, name: string): Planes {
  const pooled = channelMeans(add(a, b))
  const attn = dense(dense(pooled, weights, `${name}.mlp.0`).map(relu), weights, `${name}.mlp.2`)
  const wa: number[] = []
  const wb: number[] = []
  for (let c = 0; c < a.c; c++) {
    const p = attn[c]!
    const q = attn[a.c + c]!
    const top = Math.max(p, q)
    const ep = Math.exp(p - top)
    const eq = Math.exp(q - top)
    wa.push(ep / (ep + eq))
    wb.push(eq / (ep + eq))
  }
  const hw = a.h * a.w
  return { ...a, data: a.data.map((v, i) => v * wa[Math.floor(i / hw)]! + b.data[i]! * wb[Math.floor(i / hw)]!) }
}

/** What the reference gives back: the output in [0, 1] and each level's features. */
export interface ReferenceResult {
  output: Planes
  features: Record<'encoder1' | 'encoder2' | 'encoder3' | 'decoder2' | 'decoder1', Planes>
}

/** LKD-Net on an RGB input in [0, 1] whose sides are multiples of 4, as the source's `Dehaze.forward`. */
export function lkdnetReference(input: Planes, weights: Weights): ReferenceResult {
  if (input.h % 4 !== 0 || input.w % 4 !== 0) throw new Error('reference: sides must be multiples of 4')
  const x = map(input, (v) => v * 2 - 1)
  const e1 = level(conv(padReflect(x, 1, 1, 1, 1), weights, 'patch_embed.proj'), weights, 'layer1')
  const e2 = level(conv(e1, weights, 'patch_merge1.proj', { stride: 2 }), weights, 'layer2')
  const e3 = level(conv(e2, weights, 'patch_merge2.proj', { stride: 2 }), weights, 'layer3')
  const u2 = pixelShuffle(conv(e3, weights, 'patch_split1.proj.0'), 2)
  const d2 = level(add(skFusion(u2, conv(e2, weights, 'skip2'), weights, 'fusion1'), u2), weights, 'layer4')
  const u1 = pixelShuffle(conv(d2, weights, 'patch_split2.proj.0'), 2)
  const d1 = level(add(skFusion(u1, conv(e1, weights, 'skip1'), weights, 'fusion2'), u1), weights, 'layer5')
  const kb = conv(padReflect(d1, 1, 1, 1, 1), weights, 'patch_unembed.proj.0')
  const hw = x.h * x.w
  const out = new Float64Array(3 * hw)
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < hw; i++) {
      const v = x.data[c * hw + i]!
      const y = kb.data[i]! * v - kb.data[(c + 1) * hw + i]! + v
      out[c * hw + i] = Math.min(1, Math.max(-1, y)) * 0.5 + 0.5
    }
  }
  return { output: { c: 3, h: x.h, w: x.w, data: out }, features: { encoder1: e1, encoder2: e2, encoder3: e3, decoder2: d2, decoder1: d1 } }
}

/** `[1, C, H, W]` values as planes, centre-cropped to `size × size` if given. */
export function toPlanes(data: Float32Array, c: number, h: number, w: number, size?: number): Planes {
  const ch = size ?? h
  const cw = size ?? w
  const y0 = Math.floor((h - ch) / 2)
  const x0 = Math.floor((w - cw) / 2)
  const out = new Float64Array(c * ch * cw)
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < ch; y++) {
      for (let x = 0; x < cw; x++) out[(k * ch + y) * cw + x] = data[(k * h + y0 + y) * w + x0 + x]!
    }
  }
  return { c, h: ch, w: cw, data: out }
}

/** RGB PSNR of outputs in [0, 1] against a target, as the source's test script (no quantisation). */
export function psnrReference(out: Planes, target: Planes): number {
  let se = 0
  for (let i = 0; i < out.data.length; i++) se += (out.data[i]! - target.data[i]!) ** 2
  return 10 * Math.log10(1 / (se / out.data.length))
}

if (require.main === module) {
  const shared = path.resolve(__dirname, '..', '..', '..', 'shared')
  const n = Number(process.argv[2] ?? 1)
  const size = process.argv[3] === undefined ? undefined : Number(process.argv[3])
  const weights = readWeights(path.join(shared, 'models', 'lkdnet_t_its_dehaze.safetensors'))
  const dir = path.join(shared, 'data', 'dehaze', 'sots_indoor')
  for (const file of listImages(path.join(dir, 'input')).slice(0, n)) {
    const read = (f: string) => {
      const t = readImage(f, { channels: 3 })
      const [, c, h, w] = t.shape as [number, number, number, number]
      const planes = toPlanes(t.toFloat32Array(), c, h, w, size)
      t.dispose()
      return planes
    }
    const out = lkdnetReference(read(file), weights).output
    const target = read(path.join(dir, 'target', path.basename(file)))
    console.log(`${path.basename(file)}: RGB PSNR ${psnrReference(out, target).toFixed(4)} dB`)
  }
}
