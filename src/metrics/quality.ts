/**
 * Image quality: PSNR and SSIM, computed on the host in f64 from values in
 * [0, 1], reported on the 0–255 scale as in the denoising literature.
 *
 * @module
 */

function checkPair(op: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length || a.length === 0) {
    throw new Error(`${op}: images differ in size (${a.length} vs ${b.length} values)`)
  }
}

const clip01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v)

/**
 * PSNR in dB of `pred` against `target` (both in [0, 1]); `pred` is clipped
 * to [0, 1] first. 10·log10(255² / MSE on the 0–255 scale).
 *
 * @example
 * ```ts
 * const clean = new Float32Array(64).fill(0.5)
 * const off = clean.map((v) => v + 0.1)
 * psnr(off, clean) // 20 dB: an error of 0.1 everywhere
 * ```
 */
export function psnr(pred: ArrayLike<number>, target: ArrayLike<number>): number {
  checkPair('psnr', pred, target)
  let se = 0
  for (let i = 0; i < pred.length; i++) {
    const d = clip01(pred[i]!) - target[i]!
    se += d * d
  }
  const mse = se / pred.length
  return mse === 0 ? Infinity : 10 * Math.log10(1 / mse)
}

/** The normalised 1-D Gaussian of SSIM's window (11 taps, σ = 1.5). */
function gaussian(size: number, sigma: number): number[] {
  const half = (size - 1) / 2
  const w = Array.from({ length: size }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)))
  const s = w.reduce((a, b) => a + b, 0)
  return w.map((v) => v / s)
}

/** Separable 'valid' filtering of an h×w plane. */
function filterValid(x: Float64Array, h: number, w: number, k: number[]): Float64Array {
  const n = k.length
  const ow = w - n + 1
  const oh = h - n + 1
  const tmp = new Float64Array(h * ow)
  for (let y = 0; y < h; y++) {
    for (let xo = 0; xo < ow; xo++) {
      let s = 0
      for (let j = 0; j < n; j++) s += k[j]! * x[y * w + xo + j]!
      tmp[y * ow + xo] = s
    }
  }
  const out = new Float64Array(oh * ow)
  for (let yo = 0; yo < oh; yo++) {
    for (let xo = 0; xo < ow; xo++) {
      let s = 0
      for (let j = 0; j < n; j++) s += k[j]! * tmp[(yo + j) * ow + xo]!
      out[yo * ow + xo] = s
    }
  }
  return out
}

/**
 * Mean SSIM (Wang et al. 2004) of one grey plane of `height × width`, on the
 * 0–255 scale: 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, over
 * the 'valid' region. `pred` is clipped to [0, 1]. For C channels, pass each
 * plane and average.
 *
 * @example
 * ```ts
 * const img = Float32Array.from({ length: 32 * 32 }, (_, i) => (i % 32) / 31)
 * ssim(img, img, 32, 32) // 1: identical images
 * ```
 */
export function ssim(pred: ArrayLike<number>, target: ArrayLike<number>, height: number, width: number): number {
  checkPair('ssim', pred, target)
  if (pred.length !== height * width) throw new Error(`ssim: ${pred.length} values are not ${height}×${width}`)
  if (height < 11 || width < 11) throw new Error(`ssim: image ${height}×${width} is smaller than the 11×11 window`)
  const k = gaussian(11, 1.5)
  const L = 255
  const c1 = (0.01 * L) ** 2
  const c2 = (0.03 * L) ** 2
  const n = height * width
  const a = new Float64Array(n)
  const b = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    a[i] = clip01(pred[i]!) * 255
    b[i] = target[i]! * 255
  }
  const prod = (p: Float64Array, q: Float64Array) => p.map((v, i) => v * q[i]!)
  const muA = filterValid(a, height, width, k)
  const muB = filterValid(b, height, width, k)
  const eAA = filterValid(prod(a, a), height, width, k)
  const eBB = filterValid(prod(b, b), height, width, k)
  const eAB = filterValid(prod(a, b), height, width, k)
  let sum = 0
  for (let i = 0; i < muA.length; i++) {
    const ma = muA[i]!
    const mb = muB[i]!
    const va = eAA[i]! - ma * ma
    const vb = eBB[i]! - mb * mb
    const cov = eAB[i]! - ma * mb
    sum += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2))
  }
  return sum / muA.length
}
