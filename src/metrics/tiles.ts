/**
 * Restoring images of any size in bounded memory: the image is cut into
 * overlapping square tiles, each restored on its own, and the tiles are
 * blended back with weights that ramp linearly across each overlap, so no
 * seam shows. The tile side is chosen from the device: one forward pass on a
 * small probe measures the model's peak bytes per pixel; an image whose pass
 * fits the budget ({@link tileBudgetBytes}) is restored whole, a larger one in
 * the largest tiles that fit.
 *
 * @module
 */
import { info, memory, noGrad, resetPeakMemory, scope, Tensor } from '../tensor'
import type { Restorer } from './evaluate'


/** Pixels of overlap between neighbouring tiles when none is given: more than the student's receptive field reaches from a tile's edge. */
export const DEFAULT_OVERLAP = 32

const PROBE_SIDE = 64
const sideCache = new WeakMap<object, Map<number, number>>()

/**
 * Bytes one tile's forward may hold at once: 1 GiB, and on a wgpu adapter at
 * most 8 of its largest bindings (so the biggest single tensor of the pass,
 * a fraction of the total, still binds).
 */
export function tileBudgetBytes(): number {
  const d = info()
  const gib = 2 ** 30
  if (d.backend === 'native') return gib
  return Math.min(gib, 8 * Math.min(d.maxStorageBindingBytes, d.maxBufferBytes))
}

/** Peak bytes per pixel of one forward pass of `model`, measured once per model and channel count on a 64² probe. */
export function bytesPerPixel(model: Restorer, channels: number): number {
  const cached = sideCache.get(model)?.get(channels)
  if (cached !== undefined) return cached
  const m = model.sizeMultiple ?? 1
  const probe = Math.ceil(PROBE_SIDE / m) * m
  const before = memory().bytes
  resetPeakMemory()
  scope(() => noGrad(() => model.forward(Tensor.zeros([1, channels, probe, probe]))))
  const perPixel = Math.max(1, (memory().peakBytes - before) / (probe * probe))
  if (!sideCache.has(model)) sideCache.set(model, new Map())
  sideCache.get(model)!.set(channels, perPixel)
  return perPixel
}

/**
 * The tile side for an image of `channels × h × w`: 0 (no tiling) when the
 * image is no larger than the probe or one forward pass over the whole image
 * fits {@link tileBudgetBytes}; else the
 * largest side, a multiple of the model's `sizeMultiple` and at least 128,
 * whose pass fits what the budget leaves after the whole-image arrays that
 * tiling holds (input, output, blend weights: six image-sized buffers).
 */
export function autoTileSide(model: Restorer, channels: number, h: number, w: number): number {
  // No larger than the probe: restored whole, with no probe pass at all.
  if (h * w <= PROBE_SIDE * PROBE_SIDE) return 0
  const perPixel = bytesPerPixel(model, channels)
  const budget = tileBudgetBytes()
  if (h * w * perPixel <= budget) return 0
  const m = model.sizeMultiple ?? 1
  const left = Math.max(budget / 4, budget - 6 * 4 * channels * h * w)
  return Math.max(128, Math.floor(Math.sqrt(left / perPixel) / m) * m)
}

/** Tile starts along one axis of `size`: every `tile − overlap` pixels, the last flush with the end. */
export function tileStarts(size: number, tile: number, overlap: number): number[] {
  if (size <= tile) return [0]
  const stride = tile - overlap
  const starts: number[] = []
  for (let s = 0; s + tile < size; s += stride) starts.push(s)
  starts.push(size - tile)
  return starts
}

/** Blend weight of pixel `i` of a tile of `len` along one axis: a ramp over `overlap` on each side that has a neighbour. */
function ramp(i: number, len: number, overlap: number, first: boolean, last: boolean): number {
  let w = 1
  if (!first) w = Math.min(w, (i + 1) / (overlap + 1))
  if (!last) w = Math.min(w, (len - i) / (overlap + 1))
  return w
}

/**
 * Restores a `[1, C, H, W]` image tile by tile with `restoreTile` (which
 * takes and returns a `[1, C, h, w]` tile, clipped), blending overlaps.
 */
export function restoreTiled(noisy: Tensor, tile: number, overlap: number, restoreTile: (t: Tensor) => Tensor): Tensor {
  const [, c, h, w] = noisy.shape as [number, number, number, number]
  if (!Number.isInteger(tile) || tile < 1) throw new RangeError(`tile must be a positive integer, got ${tile}`)
  if (!Number.isInteger(overlap) || overlap < 0 || 2 * overlap >= tile) {
    throw new RangeError(`tile overlap must be an integer in [0, tile/2) (tile ${tile}), got ${overlap}`)
  }
  const src = noisy.toFloat32Array()
  const acc = new Float32Array(c * h * w)
  const weight = new Float32Array(h * w)
  const ys = tileStarts(h, tile, overlap)
  const xs = tileStarts(w, tile, overlap)
  const th = Math.min(tile, h)
  const tw = Math.min(tile, w)
  const piece = new Float32Array(c * th * tw)
  for (const [iy, y0] of ys.entries()) {
    for (const [ix, x0] of xs.entries()) {
      for (let ch = 0; ch < c; ch++) {
        for (let y = 0; y < th; y++) piece.set(src.subarray((ch * h + y0 + y) * w + x0, (ch * h + y0 + y) * w + x0 + tw), (ch * th + y) * tw)
      }
      const out = scope(() => restoreTile(Tensor.fromData(piece, [1, c, th, tw])).toFloat32Array())
      for (let y = 0; y < th; y++) {
        const wy = ramp(y, th, overlap, iy === 0, iy === ys.length - 1)
        for (let x = 0; x < tw; x++) {
          const wxy = wy * ramp(x, tw, overlap, ix === 0, ix === xs.length - 1)
          const p = (y0 + y) * w + x0 + x
          weight[p]! += wxy
          for (let ch = 0; ch < c; ch++) acc[ch * h * w + p]! += wxy * out[(ch * th + y) * tw + x]!
        }
      }
    }
  }
  for (let ch = 0; ch < c; ch++) {
    for (let p = 0; p < h * w; p++) acc[ch * h * w + p]! /= weight[p]!
  }
  return Tensor.fromData(acc, [1, c, h, w])
}
