/**
 * `npm run bench -- student`: one training step of the `tiny` SpikerIR
 * student (T = 4, batch 8, 64×64 grey patches, L1 + 0.1·FFT loss, AdamW) on
 * the native CPU backend and on lavapipe (or `--device` against the native
 * backend), measured in one run: seconds per step on each and the speed-up,
 * and per step on the wgpu device: dispatches, compute passes, submits,
 * buffer allocations, bind groups created, parameter writes, uploads and
 * readbacks (after a warm-up step; the loss is read back once per step).
 *
 * @module
 */
import { AdamW, SpikerIR, Tensor, gpuCounters, initDevice, info, scope, synchronize, zeroGrad, type GpuCounters } from '../index'
import type { BenchArgs } from './run'

/** Seconds per step, and the GPU work counts per step. */
function secondsPerStep(steps: number): { seconds: number; perStep: GpuCounters } {
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
      // The one readback a training loop needs: the loss, after the optimizer step.
      loss.toFloat32Array()
    })
  step(0) // warm-up: pipelines, pools, parameter slots, bind groups
  synchronize()
  const c0 = gpuCounters()
  const t0 = process.hrtime.bigint()
  for (let i = 1; i <= steps; i++) step(i)
  synchronize()
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9 / steps
  const c1 = gpuCounters()
  const perStep = Object.fromEntries(Object.keys(c1).map((k) => [k, (c1[k as keyof GpuCounters] - c0[k as keyof GpuCounters]) / steps])) as unknown as GpuCounters
  opt.dispose()
  model.dispose()
  return { seconds, perStep }
}

export function run(args: BenchArgs): Record<string, unknown> {
  const steps = args.limit ?? 2
  const other = args.device ?? 'lavapipe'
  initDevice({ adapter: 'cpu' })
  const cpuName = info().adapterName
  const cpu = secondsPerStep(steps).seconds
  console.log(`${cpuName}: ${cpu.toFixed(2)} s per step`)
  initDevice({ adapter: other })
  const otherName = info().adapterName
  const { seconds: gpu, perStep } = secondsPerStep(steps)
  console.log(`${otherName}: ${gpu.toFixed(2)} s per step`)
  console.log(`native CPU backend is ${(gpu / cpu).toFixed(1)}× faster than ${otherName}`)
  console.log(`${otherName}, per step after warm-up (mean of ${steps}):`)
  for (const [k, v] of Object.entries(perStep)) console.log(`  ${k.padEnd(18)} ${v.toFixed(1)}`)
  if (gpu > 0 && perStep.dispatches > 0) console.log(`  ${'µs per dispatch'.padEnd(18)} ${((gpu * 1e6) / perStep.dispatches).toFixed(0)} (step time / dispatches, everything included)`)
  return { bench: 'student', device: 'cpu', other: otherName, cpuSecondsPerStep: cpu, otherSecondsPerStep: gpu, speedup: gpu / cpu, perStep }
}
