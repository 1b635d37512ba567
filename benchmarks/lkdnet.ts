/**
 * `npm run bench -- lkdnet`: the published LKD-Net-T on the 50 SOTS-indoor
 * pairs of ../shared, scored as the source's test script does (RGB PSNR of
 * the float output, clipped to [0, 1], whole image, no quantisation), beside
 * the figure of the weights' README: 34.66 dB (an independent NumPy
 * implementation on the same copy of the test set). Needs ../shared.
 * `--limit N` uses the first N pairs only.
 *
 * @module
 */
import { psnr } from '../index'
import { LKDNet } from '../src/models/lkdnet'
import { runPaired } from './paired'
import type { BenchArgs } from './run'

export function run(args: BenchArgs): Record<string, unknown> {
  return runPaired(
    {
      name: 'lkdnet',
      data: 'dehaze/sots_indoor',
      weights: 'lkdnet_t_its_dehaze.safetensors',
      load: (w) => LKDNet.fromSafetensors(w),
      score: (out, target) => ({ rgb: psnr(out, target) }),
      expected: { rgb: 34.66 },
    },
    args,
  )
}
