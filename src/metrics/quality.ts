/**
 * Image quality: PSNR and SSIM, computed on the host in f64 from values in
 * [0, 1], reported on the 0–255 scale as in the denoising literature, on the
 * colour space a task's protocol names: every channel as stored (`rgb`,
 * `grey`) or the BT.601 luma of MATLAB's `rgb2ycbcr` (`y`, the deraining
 * protocol).
 *
 * @module
 */

/**
 * Where a metric is taken: `rgb` over the three planes of a colour image,
 * `grey` over a one-channel image, `y` on the BT.601 luma of a colour image
 * (as MATLAB's `rgb2ycbcr`, full image, peak 255).
 */
export type ColourSpace = 'rgb' | 'grey' | 'y'

/** Options of {@link psnr} and {@link ssim}. */
export interface QualityOptions {
  /** The colour space the metric is taken in; without it every value counts as stored (one plane for {@link ssim}). */
  space?: ColourSpace
  /**
   * Quantise the clipped prediction to 8 bits before scoring, as a protocol
   * that saves its outputs as PNG does: `round` (MATLAB `im2uint8`) or
   * `truncate` (NumPy `uint8(255·x)`). Off by default: the float output is scored.
   */
  quantize?: 'round' | 'truncate'
}

function checkPair(op: string, a: ArrayLike<number>, b: ArrayLike<number>): void {
  if (a.length !== b.length || a.length === 0) {
    throw new Error(`${op}: images differ in size (${a.length} vs ${b.length} values)`)
  }
}

const clip01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v)

const SPACES: readonly ColourSpace[] = ['rgb', 'grey', 'y']

function checkSpace(op: string, space: ColourSpace, n: number, plane: number | null): void {
  if (!SPACES.includes(space)) throw new Error(`${op}: unknown colour space '${String(space)}' (rgb, grey or y)`)
  const want = space === 'grey' ? 1 : 3
  if (plane !== null ? n !== want * plane : n % want !== 0) {
    const shape = plane !== null ? ` of ${plane} pixels` : ''
    throw new Error(`${op}: ${n} values are not ${want} plane(s)${shape}, as colour space '${space}' needs`)
  }
}

/** The clipped prediction on the 0–255 scale, quantised as asked. */
function predTo255(pred: ArrayLike<number>, quantize: QualityOptions['quantize']): Float64Array {
  const out = new Float64Array(pred.length)
  for (let i = 0; i < pred.length; i++) {
    const v = clip01(pred[i]!) * 255
    out[i] = quantize === 'round' ? Math.round(v) : quantize === 'truncate' ? Math.floor(v) : v
  }
  return out
}

function to255(x: ArrayLike<number>): Float64Array {
  const out = new Float64Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = x[i]! * 255
  return out
}

/** Y of planar RGB values already on the 0–255 scale. */
function yOf255(rgb: Float64Array, plane: number): Float64Array {
  const y = new Float64Array(plane)
  for (let i = 0; i < plane; i++) {
    y[i] = 16 + (65.481 * rgb[i]! + 128.553 * rgb[plane + i]! + 24.966 * rgb[2 * plane + i]!) / 255
  }
  return y
}

/**
 * The luma Y of ITU-R BT.601 as MATLAB's `rgb2ycbcr` computes it for a
 * double image, on the 0–255 scale: Y = 16 + 65.481·R + 128.553·G + 24.966·B
 * for R, G, B in [0, 1] (so Y lies in [16, 235]). `data` is one planar RGB
 * image `[3, height, width]` (CHW, as tensors store it) with values in [0, 1];
 * it is not clipped here. The result is not rounded: the deraining protocol
 * scores the float Y.
 *
 * @example
 * ```ts
 * // One white and one black pixel: Y = 235 and 16.
 * rgbToY([1, 0, 1, 0, 1, 0], 1, 2) // Float64Array [235, 16]
 * ```
 */
export function rgbToY(data: ArrayLike<number>, height: number, width: number): Float64Array {
  const plane = height * width
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
    throw new Error(`rgbToY: image size ${height}×${width} is not positive whole pixels`)
  }
  if (data.length !== 3 * plane) throw new Error(`rgbToY: ${data.length} values are not 3 planes of ${height}×${width}`)
  return yOf255(to255(data), plane)
}

/** PSNR on the 0–255 scale of two arrays already on it. */
function psnr255(a: Float64Array, b: Float64Array): number {
  let se = 0
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!
    se += d * d
  }
  const mse = se / a.length
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse)
}

/**
 * PSNR in dB of `pred` against `target` (both in [0, 1]); `pred` is clipped
 * to [0, 1] first. 10·log10(255² / MSE on the 0–255 scale). Without a colour
 * space (or with `rgb`, `grey`) every value counts; with `space: 'y'` both
 * are planar RGB images and the PSNR is taken on their {@link rgbToY} luma.
 *
 * @example
 * ```ts
 * const clean = new Float32Array(3 * 16).fill(0.5) // a 4×4 RGB image, planar
 * const off = clean.map((v) => v + 0.1)
 * psnr(off, clean) // 20 dB: an error of 0.1 everywhere
 * psnr(off, clean, { space: 'rgb' }) // the same
 * psnr(off, clean, { space: 'y' }) // 21.3 dB: Y moves by (65.481 + 128.553 + 24.966)·0.1 = 21.9 of 255
 * ```
 */
export function psnr(pred: ArrayLike<number>, target: ArrayLike<number>, options: QualityOptions = {}): number {
  checkPair('psnr', pred, target)
  const { space, quantize } = options
  if (space !== undefined) checkSpace('psnr', space, pred.length, null)
  if (space === undefined && quantize === undefined) {
    let se = 0
    for (let i = 0; i < pred.length; i++) {
      const d = clip01(pred[i]!) - target[i]!
      se += d * d
    }
    const mse = se / pred.length
    return mse === 0 ? Infinity : 10 * Math.log10(1 / mse)
  }
  const a = predTo255(pred, quantize)
  const b = to255(target)
  if (space === 'y') {
    const plane = pred.length / 3
    return psnr255(yOf255(a, plane), yOf255(b, plane))
  }
  return psnr255(a, b)
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

/** Mean SSIM of one plane of values on the 0–255 scale. */
function ssimPlane(a: Float64Array, b: Float64Array, height: number, width: number): number {
  const k = gaussian(11, 1.5)
  const L = 255
  const c1 = (0.01 * L) ** 2
  const c2 = (0.03 * L) ** 2
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

/**
 * Mean SSIM (Wang et al. 2004) of `height × width` images, on the 0–255
 * scale: 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, over the
 * 'valid' region. `pred` is clipped to [0, 1]. Without a colour space the
 * arrays are one grey plane (as with `grey`); with `rgb` they are three planes
 * (CHW) and the SSIM is the mean of the three planes'; with `y` it is the SSIM
 * of their {@link rgbToY} luma.
 *
 * @example
 * ```ts
 * const img = Float32Array.from({ length: 32 * 32 }, (_, i) => (i % 32) / 31)
 * ssim(img, img, 32, 32) // 1: identical images
 * ```
 */
export function ssim(pred: ArrayLike<number>, target: ArrayLike<number>, height: number, width: number, options: QualityOptions = {}): number {
  checkPair('ssim', pred, target)
  const space = options.space ?? 'grey'
  const plane = height * width
  if (options.space === undefined) {
    if (pred.length !== plane) throw new Error(`ssim: ${pred.length} values are not ${height}×${width}`)
  } else {
    checkSpace('ssim', space, pred.length, plane)
  }
  if (height < 11 || width < 11) throw new Error(`ssim: image ${height}×${width} is smaller than the 11×11 window`)
  const a = predTo255(pred, options.quantize)
  const b = to255(target)
  if (space === 'grey') return ssimPlane(a, b, height, width)
  if (space === 'y') return ssimPlane(yOf255(a, plane), yOf255(b, plane), height, width)
  let s = 0
  for (let ch = 0; ch < 3; ch++) s += ssimPlane(a.subarray(ch * plane, (ch + 1) * plane), b.subarray(ch * plane, (ch + 1) * plane), height, width)
  return s / 3
}
