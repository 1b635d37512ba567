/**
 * An independent float64 GCANet in plain TypeScript, the reference of
 * gcanet.test.ts: direct convolution loops (stride, dilation, groups, zero
 * padding), instance norm from its definition, and the transposed
 * convolution in scatter form (each input pixel adds its weighted kernel to
 * the output), as the source's GCANet.py defines the network.
 */
import type { Planes, Weights } from './prenet-reference'

export interface ConvSpec {
  stride?: number
  padding?: number
  dilation?: number
  groups?: number
}

/** Cross-correlation of `x` with weights `[co, ci/groups, k, k]` (and a bias when given). */
export function conv(x: Planes, weight: { shape: number[]; data: Float64Array }, bias: Float64Array | null, spec: ConvSpec = {}): Planes {
  const [co, cig, kh, kw] = weight.shape as [number, number, number, number]
  const s = spec.stride ?? 1
  const p = spec.padding ?? 0
  const d = spec.dilation ?? 1
  const g = spec.groups ?? 1
  const oh = Math.floor((x.h + 2 * p - d * (kh - 1) - 1) / s) + 1
  const ow = Math.floor((x.w + 2 * p - d * (kw - 1) - 1) / s) + 1
  const out = new Float64Array(co * oh * ow)
  const cog = co / g
  for (let o = 0; o < co; o++) {
    const group = Math.floor(o / cog)
    for (let y = 0; y < oh; y++) {
      for (let xx = 0; xx < ow; xx++) {
        let sum = bias ? bias[o]! : 0
        for (let i = 0; i < cig; i++) {
          const ci = group * cig + i
          for (let a = 0; a < kh; a++) {
            const iy = y * s - p + a * d
            if (iy < 0 || iy >= x.h) continue
            for (let b = 0; b < kw; b++) {
              const ix = xx * s - p + b * d
              if (ix < 0 || ix >= x.w) continue
              sum += weight.data[((o * cig + i) * kh + a) * kw + b]! * x.data[(ci * x.h + iy) * x.w + ix]!
            }
          }
        }
        out[(o * oh + y) * ow + xx] = sum
      }
    }
  }
  return { c: co, h: oh, w: ow, data: out }
}

/** PyTorch's ConvTranspose2d (groups 1), weights `[ci, co, k, k]`, by scattering. */
export function convTranspose(x: Planes, weight: { shape: number[]; data: Float64Array }, bias: Float64Array | null, stride: number, padding: number): Planes {
  const [ci, co, kh, kw] = weight.shape as [number, number, number, number]
  const oh = (x.h - 1) * stride - 2 * padding + kh
  const ow = (x.w - 1) * stride - 2 * padding + kw
  const out = new Float64Array(co * oh * ow)
  for (let o = 0; o < co; o++) if (bias) out.fill(bias[o]!, o * oh * ow, (o + 1) * oh * ow)
  for (let i = 0; i < ci; i++) {
    for (let y = 0; y < x.h; y++) {
      for (let xx = 0; xx < x.w; xx++) {
        const v = x.data[(i * x.h + y) * x.w + xx]!
        for (let o = 0; o < co; o++) {
          for (let a = 0; a < kh; a++) {
            const oy = y * stride - padding + a
            if (oy < 0 || oy >= oh) continue
            for (let b = 0; b < kw; b++) {
              const ox = xx * stride - padding + b
              if (ox < 0 || ox >= ow) continue
              out[(o * oh + oy) * ow + ox]! += v * weight.data[((i * co + o) * kh + a) * kw + b]!
            }
          }
        }
      }
    }
  }
  return { c: co, h: oh, w: ow, data: out }
}

/** Instance norm: per channel, (x − mean) / √(biased variance + eps) · weight + bias. */
export function instanceNorm(x: Planes, weight: Float64Array, bias: Float64Array, eps = 1e-5): Planes {
  const n = x.h * x.w
  const out = new Float64Array(x.data.length)
  for (let c = 0; c < x.c; c++) {
    const plane = x.data.subarray(c * n, (c + 1) * n)
    let m = 0
    for (const v of plane) m += v
    m /= n
    let v2 = 0
    for (const v of plane) v2 += (v - m) ** 2
    const sd = Math.sqrt(v2 / n + eps)
    for (let i = 0; i < n; i++) out[c * n + i] = ((plane[i]! - m) / sd) * weight[c]! + bias[c]!
  }
  return { ...x, data: out }
}

const relu = (x: Planes): Planes => ({ ...x, data: x.data.map((v) => (v > 0 ? v : 0)) })
const add = (a: Planes, b: Planes): Planes => ({ ...a, data: a.data.map((v, i) => v + b.data[i]!) })

/** The source's edge map (utils.edge_compute) of an image on the 0–255 scale: one plane. */
export function edges(x: Planes): Planes {
  const { c, h, w } = x
  const out = new Float64Array(h * w)
  const at = (ch: number, y: number, xx: number) => x.data[(ch * h + y) * w + xx]!
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        let s = 0
        if (xx > 0) s += Math.abs(at(ch, y, xx) - at(ch, y, xx - 1))
        if (xx < w - 1) s += Math.abs(at(ch, y, xx + 1) - at(ch, y, xx))
        if (y > 0) s += Math.abs(at(ch, y, xx) - at(ch, y - 1, xx))
        if (y < h - 1) s += Math.abs(at(ch, y + 1, xx) - at(ch, y, xx))
        out[y * w + xx]! += s
      }
    }
  }
  return { c: 1, h, w, data: out.map((v) => v / 3 / 4) }
}

/** GCANet on an RGB image in [0, 1]: the dehazed image in [0, 1] (not rounded) and the gated features. */
export function gcanetReference(rgb: Planes, weights: Weights): { output: Planes; res7: Planes; gate: Planes } {
  const W = (name: string) => weights.get(name)!
  const x255 = { ...rgb, data: rgb.data.map((v) => v * 255) }
  const e = edges(x255)
  const input: Planes = { c: 4, h: rgb.h, w: rgb.w, data: Float64Array.from([...x255.data, ...e.data], (v) => v - 128) }
  const cnr = (x: Planes, convName: string, normName: string, spec: ConvSpec, bias = false, act = true) => {
    const y = instanceNorm(conv(x, W(`${convName}.weight`), bias ? W(`${convName}.bias`).data : null, spec), W(`${normName}.weight`).data, W(`${normName}.bias`).data)
    return act ? relu(y) : y
  }
  let y = cnr(input, 'conv1', 'norm1', { padding: 1 })
  y = cnr(y, 'conv2', 'norm2', { padding: 1 })
  const y1 = cnr(y, 'conv3', 'norm3', { padding: 1, stride: 2 })
  const block = (x: Planes, name: string, d: number, smoothed: boolean) => {
    const pre = (v: Planes, which: string) => {
      if (!smoothed) return v
      const k = W(`${name}.${which}.weight`)
      const kk = k.shape[2]!
      // The one shared filter, as a depthwise conv over every channel.
      const full = { shape: [v.c, 1, kk, kk], data: new Float64Array(v.c * kk * kk).map((_, i) => k.data[i % (kk * kk)]!) }
      return conv(v, full, null, { padding: (kk - 1) / 2, groups: v.c })
    }
    const a = cnr(pre(x, 'pre_conv1'), `${name}.conv1`, `${name}.norm1`, { padding: d, dilation: d })
    const b = cnr(pre(a, 'pre_conv2'), `${name}.conv2`, `${name}.norm2`, { padding: d, dilation: d }, false, false)
    return relu(add(x, b))
  }
  y = block(y1, 'res1', 2, true)
  y = block(y, 'res2', 2, true)
  y = block(y, 'res3', 2, true)
  const y2 = block(y, 'res4', 4, true)
  y = block(y2, 'res5', 4, true)
  y = block(y, 'res6', 4, true)
  const y3 = block(y, 'res7', 1, false)
  const cat: Planes = { c: 3 * y1.c, h: y1.h, w: y1.w, data: Float64Array.from([...y1.data, ...y2.data, ...y3.data]) }
  const gates = conv(cat, W('gate.weight'), W('gate.bias').data, { padding: 1 })
  const n = y1.h * y1.w
  const gated = { ...y1, data: y1.data.map((v, i) => { const p = i % n; return v * gates.data[p]! + y2.data[i]! * gates.data[n + p]! + y3.data[i]! * gates.data[2 * n + p]! }) }
  let d = relu(instanceNorm(convTranspose(gated, W('deconv3.weight'), W('deconv3.bias').data, 2, 1), W('norm4.weight').data, W('norm4.bias').data))
  d = relu(instanceNorm(conv(d, W('deconv2.weight'), W('deconv2.bias').data, { padding: 1 }), W('norm5.weight').data, W('norm5.bias').data))
  const residual = conv(d, W('deconv1.weight'), W('deconv1.bias').data)
  return { output: { ...rgb, data: rgb.data.map((v, i) => (v * 255 + residual.data[i]!) / 255) }, res7: y3, gate: gated }
}
