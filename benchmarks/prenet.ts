/**
 * `npm run bench -- prenet`: the published PReNet (6 stages) on all 100
 * Rain100L pairs, scored as the source's test and statistic scripts do, beside
 * the figures of the weights' README: 37.48 dB on the Y channel, 36.09 dB on
 * RGB (an independent NumPy implementation on the same copy of the test set).
 * Needs ../shared. `--limit N` uses the first N pairs only.
 *
 * @module
 */
import { PReNet, psnr, ssim } from '../index'
import { runPaired } from './paired'
import type { BenchArgs } from './run'

export function run(args: BenchArgs): Record<string, unknown> {
  return runPaired(
    {
      name: 'prenet',
      data: 'derain/rain100l',
      weights: 'prenet_rain100l.safetensors',
      load: (w) => PReNet.fromSafetensors(w),
      // The source's protocol: the output clipped to [0, 1] and saved as 8-bit PNG by
      // truncation (np.uint8(255·out)), then scored on MATLAB's rgb2ycbcr Y, full image.
      // SSIM: 11×11 Gaussian window, valid region (the published 0.979 is MATLAB's ssim).
      score: (out, target, h, w) => {
        const q = { quantize: 'truncate' } as const
        return { y: psnr(out, target, { ...q, space: 'y' }), rgb: psnr(out, target, { ...q, space: 'rgb' }), ssimY: ssim(out, target, h, w, { ...q, space: 'y' }) }
      },
      expected: { y: 37.48, rgb: 36.09 },
    },
    args,
  )
}
