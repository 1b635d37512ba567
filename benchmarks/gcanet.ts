/**
 * `npm run bench -- gcanet`: the published GCANet dehazer on the 50-pair
 * SOTS-indoor subset, scored as the source's test script saves its outputs
 * (residual added to the 0–255 input, rounded and clipped to 8 bits), RGB PSNR
 * over the full image, beside the weights' README: 29.99 dB on this subset
 * (an independent NumPy implementation; 30.23 dB published on all 500).
 * Needs ../shared. `--limit N` uses the first N pairs only.
 *
 * @module
 */
import { GCANet, psnr, ssim } from '../index'
import { runPaired } from './paired'
import type { BenchArgs } from './run'

export function run(args: BenchArgs): Record<string, unknown> {
  return runPaired(
    {
      name: 'gcanet',
      data: 'dehaze/sots_indoor',
      weights: 'gcanet_dehaze.safetensors',
      load: (w) => GCANet.fromSafetensors(w),
      // The source's protocol: the output rounded and clipped to 0..255 and saved as 8-bit PNG, scored on RGB.
      score: (out, target, h, w) => {
        const q = { quantize: 'round', space: 'rgb' } as const
        return { rgb: psnr(out, target, q), ssimRgb: ssim(out, target, h, w, q) }
      },
      expected: { rgb: 29.99 },
    },
    args,
  )
}
