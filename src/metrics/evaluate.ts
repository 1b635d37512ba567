/**
 * Whole-image evaluation (DESIGN §6): each image is degraded by the task's
 * degradation (noise from a fixed seed per image), or taken from real pairs,
 * restored in one forward without a tape, clipped to [0, 1], and scored with
 * PSNR and SSIM on the 0–255 scale in the task's colour space; averages over
 * the set. `spikeir eval`, validation during training and the demo share one
 * pair builder ({@link testPairs}) and one scoring ({@link evaluatePairs}), so
 * the same weights give the same figures everywhere.
 *
 * @module
 */
import { evalPairs, type DataSource, type Degradation, type EvalPair } from '../data/pipeline'
import { noGrad, scope, Tensor } from '../tensor'
import { psnr, ssim, type ColourSpace, type QualityOptions } from './quality'
import { autoTileSide, DEFAULT_OVERLAP, restoreTiled } from './tiles'

/** A restoration model: noisy `[1, C, H, W]` in, restored image out. */
export interface Restorer {
  /** The restored image of a noisy `[1, C, H, W]` one. */
  forward(x: Tensor): Tensor
  /** Image sides must be multiples of this (a U-Net's down-samplings); 1 when absent. */
  readonly sizeMultiple?: number
}

/** Pads `[1, C, H, W]` by edge replication so H and W are multiples of `m`. */
function padTo(x: Float32Array, c: number, h: number, w: number, m: number): { data: Float32Array; h: number; w: number } {
  const ph = Math.ceil(h / m) * m
  const pw = Math.ceil(w / m) * m
  if (ph === h && pw === w) return { data: x, h, w }
  const out = new Float32Array(c * ph * pw)
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < ph; y++) {
      const sy = Math.min(y, h - 1)
      for (let xx = 0; xx < pw; xx++) out[(ch * ph + y) * pw + xx] = x[(ch * h + sy) * w + Math.min(xx, w - 1)]!
    }
  }
  return { data: out, h: ph, w: pw }
}

/** Options of {@link restore}. */
export interface RestoreOptions {
  /** Pad sides to a multiple of this (default the model's `sizeMultiple`). */
  multiple?: number
  /**
   * Tile side in pixels for images larger than it (default: the whole image
   * when its pass fits the device, else the largest tiles that do, see
   * `autoTileSide`); 0 restores the whole image at once.
   */
  tile?: number
  /** Overlap of neighbouring tiles in pixels (default 32). */
  overlap?: number
}

/**
 * Restores one `[1, C, H, W]` image of any size: padded by edge replication to
 * the model's `sizeMultiple` (the student's two down-samplings need 4; a
 * DnCNN is never padded, so its borders see the zeros it was trained with),
 * restored without a tape, cropped back, clipped to [0, 1]. An image larger
 * than the tile side is restored in overlapping tiles blended at the seams,
 * so memory stays bounded whatever the image size.
 */
export function restore(model: Restorer, noisy: Tensor, options: RestoreOptions = {}): Tensor {
  const [, c, h, w] = noisy.shape as [number, number, number, number]
  const multiple = options.multiple ?? model.sizeMultiple ?? 1
  const tile = options.tile ?? autoTileSide(model, c, h, w)
  if (tile > 0 && (h > tile || w > tile)) {
    const side = Math.max(multiple, Math.floor(tile / multiple) * multiple)
    return restoreTiled(noisy, side, options.overlap ?? Math.min(DEFAULT_OVERLAP, Math.ceil(side / 2) - 1), (t) => restoreWhole(model, t, multiple))
  }
  return restoreWhole(model, noisy, multiple)
}

function restoreWhole(model: Restorer, noisy: Tensor, multiple: number): Tensor {
  const [, c, h, w] = noisy.shape as [number, number, number, number]
  return scope(() => {
    const padded = padTo(noisy.toFloat32Array(), c, h, w, multiple)
    const out = noGrad(() => model.forward(Tensor.fromData(padded.data, [1, c, padded.h, padded.w]))).toFloat32Array()
    const crop = new Float32Array(c * h * w)
    for (let ch = 0; ch < c; ch++) {
      for (let y = 0; y < h; y++) {
        for (let x = 0; x < w; x++) crop[(ch * h + y) * w + x] = Math.min(1, Math.max(0, out[(ch * padded.h + y) * padded.w + x]!))
      }
    }
    return Tensor.fromData(crop, [1, c, h, w])
  })
}

/** Per-image and average scores. */
export interface EvalResult {
  images: number
  psnr: number
  ssim: number
  /** The colour space PSNR and SSIM were taken in (`rgb`, `grey` or `y`). */
  space: ColourSpace
  perImage: { name: string; psnr: number; ssim: number }[]
}

/** Noise seed of the first evaluation image when none is given. */
export const EVAL_NOISE_SEED = 1000

/** Options of {@link testPairs}. */
export interface TestPairsOptions {
  /** Image i is degraded from seed `seed + i` (default {@link EVAL_NOISE_SEED}). */
  seed?: number
  /** Only the first N images (in file order). */
  limit?: number
  /** Channels when `source` is a folder path (default 1, grey). */
  channels?: 1 | 3
}

/**
 * A whole-image test set, the one pair builder of `spikeir eval`, validation
 * during training and the demo: the images of `source` in file order, each
 * degraded by `degradation` (a paired source's real inputs with `none`).
 * AWGN follows the denoising protocol (DESIGN §6): image i gets
 * N(0, (σ/255)²) drawn with `Tensor.randn` from seed `seed + i`, not clipped;
 * other random degradations draw from (seed, i) in the data layer, and
 * deterministic ones (JPEG, blur) ignore the seed. The caller disposes the pairs.
 */
export function testPairs(source: DataSource | string, degradation: Degradation, options: TestPairsOptions = {}): EvalPair[] {
  const seed = options.seed ?? EVAL_NOISE_SEED
  const src: DataSource = typeof source === 'string' ? { kind: 'folder', dir: source, channels: options.channels ?? 1 } : source
  const awgn = degradation.kind === 'awgn' ? degradation : null
  if (awgn && !('sigma' in awgn)) throw new Error(`test pairs: AWGN for testing needs one sigma, not a range [${awgn.sigmaMin}, ${awgn.sigmaMax}]`)
  const sigma = awgn && 'sigma' in awgn ? awgn.sigma : 0
  if (awgn && (!(sigma >= 0) || !Number.isFinite(sigma))) throw new Error(`denoising evaluation: sigma must be a finite number ≥ 0, got ${sigma}`)
  // The noise of AWGN is added here, from the seed of each image, as it always was; the rest comes from the data layer.
  const d = awgn ? null : degradation.kind === 'none' ? null : degradation
  const all = evalPairs({ source: src, ...(d ? { degradation: d } : {}), seed })
  const kept = all.slice(0, options.limit ?? Infinity)
  for (const p of all.slice(kept.length)) {
    p.input.dispose()
    p.target.dispose()
  }
  if (!awgn) return kept
  return kept.map((p, i) => {
    const input = scope(() => p.input.add(Tensor.randn(p.input.shape, { seed: seed + i, std: sigma / 255 })))
    p.input.dispose()
    return { name: p.name, input, target: p.target }
  })
}

/** Options of {@link denoisingPairs} and {@link evaluateDenoising}. */
export type DenoisingSetOptions = TestPairsOptions

/**
 * The AWGN denoising evaluation set: {@link testPairs} with
 * `{ kind: 'awgn', sigma }`. The caller disposes the pairs.
 */
export function denoisingPairs(source: DataSource | string, sigma: number, options: DenoisingSetOptions = {}): EvalPair[] {
  if (!(sigma >= 0) || !Number.isFinite(sigma)) throw new Error(`denoising evaluation: sigma must be a finite number ≥ 0, got ${sigma}`)
  return testPairs(source, { kind: 'awgn', sigma }, options)
}

/** Told after each image of an evaluation (for progress). */
export type OnImage = (done: number, total: number, result: { name: string; psnr: number; ssim: number }) => void

/**
 * Evaluates AWGN denoising at `sigma` (0–255 scale) on the images of `source`
 * (a folder path or a data source), with the noise of {@link denoisingPairs}.
 *
 * @example
 * ```ts
 * const { model } = loadModel(defaultStudent())
 * // A folder path works too: evaluateDenoising(model, 'set12', 25).
 * const r = evaluateDenoising(model, { kind: 'deadLeaves', count: 2, size: 64, seed: 3 }, 25)
 * console.log(r.psnr, r.ssim, r.perImage.length)
 * ```
 */
export function evaluateDenoising(model: Restorer, source: DataSource | string, sigma: number, options: DenoisingSetOptions = {}, onImage?: OnImage): EvalResult {
  const pairs = denoisingPairs(source, sigma, options)
  try {
    return evaluatePairs(model, pairs, onImage, { space: pairs[0]?.target.shape[1] === 3 ? 'rgb' : 'grey' })
  } finally {
    for (const p of pairs) {
      p.input.dispose()
      p.target.dispose()
    }
  }
}

/**
 * Scores a model on prepared pairs (input, target `[1, C, H, W]`); the pairs
 * are left to the caller. `metric` names the colour space (default: `grey`
 * for one channel, `rgb` for three) and an 8-bit quantisation of the output
 * where a protocol scores saved PNGs.
 */
export function evaluatePairs(model: Restorer, pairs: readonly { name: string; input: Tensor; target: Tensor }[], onImage?: OnImage, metric: QualityOptions = {}): EvalResult {
  let space: ColourSpace | undefined = metric.space
  const perImage = pairs.map((p, i) => {
    const result = scope(() => {
      const [, c, h, w] = p.target.shape as [number, number, number, number]
      const q: QualityOptions = { ...metric, space: metric.space ?? (c === 3 ? 'rgb' : 'grey') }
      space ??= q.space
      const pred = restore(model, p.input).toFloat32Array()
      const target = p.target.toFloat32Array()
      return { name: p.name, psnr: psnr(pred, target, q), ssim: ssim(pred, target, h, w, q) }
    })
    onImage?.(i + 1, pairs.length, result)
    return result
  })
  const mean = (f: (r: { psnr: number; ssim: number }) => number) => perImage.reduce((a, r) => a + f(r), 0) / Math.max(1, perImage.length)
  return { images: perImage.length, psnr: mean((r) => r.psnr), ssim: mean((r) => r.ssim), space: space ?? 'grey', perImage }
}
