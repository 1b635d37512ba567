/**
 * Geometric self-ensemble (the "+" results of EDSR and RCAN): the image is
 * restored in all eight orientations of the square's symmetry group (the
 * identity, three rotations and their mirror images), each result turned back,
 * and the eight averaged. A restoration model sees no preferred orientation in
 * its training data, so its errors in the eight orientations are partly
 * independent and average down; it costs eight forward passes, and so eight
 * times the energy of one.
 *
 * @module
 */
import { scope, Tensor } from '../tensor'
import type { Restorer } from './evaluate'

/** Forward passes (and energy) of one self-ensembled restoration. */
export const SELF_ENSEMBLE_PASSES = 8

/**
 * Orientation `k` (0–7) as three independent moves: a transpose (bit 2), then
 * a vertical (bit 1) and a horizontal (bit 0) flip; together they make the
 * eight symmetries of the square. For a pixel (y, x) of the oriented `oh × ow`
 * image, the index of its source pixel in the `h × w` original.
 */
function sourceIndex(k: number, y: number, x: number, oh: number, ow: number, w: number): number {
  const a = k & 2 ? oh - 1 - y : y
  const b = k & 1 ? ow - 1 - x : x
  return k & 4 ? b * w + a : a * w + b
}

/** The `[1, C, H, W]` image `x` (`data`) in orientation `k`. */
function orient(data: Float32Array, c: number, h: number, w: number, k: number): { data: Float32Array; h: number; w: number } {
  const [oh, ow] = k & 4 ? [w, h] : [h, w]
  const out = new Float32Array(data.length)
  for (let ch = 0; ch < c; ch++) {
    const base = ch * h * w
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) out[base + y * ow + x] = data[base + sourceIndex(k, y, x, oh, ow, w)]!
    }
  }
  return { data: out, h: oh, w: ow }
}

/**
 * A restorer that restores each image in the eight orientations with `model`
 * and averages the eight results, each turned back to the input's orientation.
 * It has the model's `sizeMultiple`, so `restore` and tiling treat it as they
 * treat the model.
 *
 * @example
 * ```ts
 * const { model } = loadModel(defaultStudent())
 * const r = evaluateDenoising(selfEnsemble(model), { kind: 'deadLeaves', count: 1, size: 32, seed: 3 }, 25)
 * console.log(r.psnr)
 * ```
 */
export function selfEnsemble(model: Restorer): Restorer {
  const ensemble: Restorer = {
    forward(x: Tensor): Tensor {
      const [n, c, h, w] = x.shape as [number, number, number, number]
      if (n !== 1) throw new Error(`self-ensemble: expected one image [1, C, H, W], got [${x.shape.join(', ')}]`)
      const data = x.toFloat32Array()
      const sum = new Float64Array(data.length)
      for (let k = 0; k < SELF_ENSEMBLE_PASSES; k++) {
        const o = orient(data, c, h, w, k)
        // One pass at a time, its tensors freed before the next.
        const out = scope(() => model.forward(Tensor.fromData(o.data, [1, c, o.h, o.w])).toFloat32Array())
        // Each restored pixel goes back to the place its input pixel came from.
        for (let ch = 0; ch < c; ch++) {
          const base = ch * h * w
          for (let yy = 0; yy < o.h; yy++) {
            for (let xx = 0; xx < o.w; xx++) {
              const i = base + sourceIndex(k, yy, xx, o.h, o.w, w)
              sum[i] = sum[i]! + out[base + yy * o.w + xx]!
            }
          }
        }
      }
      const mean = new Float32Array(sum.length)
      for (let i = 0; i < sum.length; i++) mean[i] = sum[i]! / SELF_ENSEMBLE_PASSES
      return Tensor.fromData(mean, [1, c, h, w])
    },
  }
  if (model.sizeMultiple !== undefined) return { ...ensemble, sizeMultiple: model.sizeMultiple }
  return ensemble
}
