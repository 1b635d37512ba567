/**
 * `npm run bench -- student`: one training step of the `tiny` SpikerIR
 * student (T = 4, batch 8, 64×64 grey patches, L1 + 0.1·FFT loss, AdamW) on
 * the native CPU backend and on lavapipe (or `--device` against the native
 * backend), measured in one run: seconds per step on each and the speed-up.
 *
 * @module
 */
import { AdamW, SpikerIR, Tensor, initDevice, info, scope, synchronize, zeroGrad } from '../index'
import type { BenchArgs } from './run'

function secondsPerStep(steps: number): number {
  const model = new SpikerIR({ timeSteps: 4, seed: 1 })
  const opt = new AdamW(model.namedParameters(), { lr: 1e-3 })
  const step = (i: number) =>
    scope(() => {
      const clean = Tensor.rand([8, 1, 64, 64], { seed: i })
      const noisy = clean.add(Tensor.randn(clean.shape, { seed: 100 + i, std: 25 / 255 }))
      const out = model.forward(noisy)
      const loss = out.l1Loss(clean).add(out.fftLoss(clean).mul(0.1))
      loss.backward()
      opt.step()
      zeroGrad()
    })
  step(0) // warm-up: pipelines, pools
  synchronize()
  const t0 = process.hrtime.bigint()
  for (let i = 1; i <= steps; i++) step(i)
  synchronize()
  const s = Number(process.hrtime.bigint() - t0) / 1e9 / steps
  opt.dispose()
  model.dispose()
  return s
}

export function run(args: BenchArgs): Record<string, unknown> {
  const steps = args.limit ?? 2
  const other = args.device ?? 'lavapipe'
  initDevice({ adapter: 'cpu' })
  const cpuName = info().adapterName
  const cpu = secondsPerStep(steps)
  console.log(`${cpuName}: ${cpu.toFixed(2)} s per step`)
  initDevice({ adapter: other })
  const otherName = info().adapterName
  const gpu = secondsPerStep(steps)
  console.log(`${otherName}: ${gpu.toFixed(2)} s per step`)
  console.log(`native CPU backend is ${(gpu / cpu).toFixed(1)}× faster than ${otherName}`)
  return { bench: 'student', device: 'cpu', other: otherName, cpuSecondsPerStep: cpu, otherSecondsPerStep: gpu, speedup: gpu / cpu }
}
