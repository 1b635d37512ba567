/**
 * `npm run bench -- soak [--limit STEPS]`: trains the `tiny` SpikerIR student
 * with hints from a small DnCNN teacher for 2,000 steps (batch 2, 32×32
 * patches, T = 4, AdamW) and prints resident memory (RSS) and the device's
 * bytes and buffers at steps 100, 1,000 and 2,000 (scaled with `--limit`).
 * Memory must be flat after warm-up: the figure to watch is the RSS growth
 * from step 100 to the end (goal: under 5 %).
 *
 * @module
 */
import { AdamW, DnCNN, HKD, SpikerIR, Tensor, memory, scope, zeroGrad } from '../index'
import type { BenchArgs } from './run'

/** One soak sample. */
export interface SoakSample {
  step: number
  rssMiB: number
  /** V8's heap (JS objects); the rest of the RSS is native memory. */
  jsHeapMiB: number
  deviceBytes: number
  deviceBuffers: number
  /** Tensors not yet disposed. */
  handles: number
}

/** Runs `steps` training steps and samples memory at the given steps. */
export function soak(steps: number, at: readonly number[], onSample?: (s: SoakSample) => void): SoakSample[] {
  const student = new SpikerIR({ timeSteps: 4, seed: 1 })
  const teacher = new DnCNN({ depth: 6, channels: 16, seed: 2 })
  const pair = { student: 'decoder1', teacher: 'layer3', studentChannels: student.tapChannels('decoder1'), teacherChannels: teacher.tapChannels('layer3') }
  const hkd = new HKD(student, teacher, [pair], { seed: 3 })
  const opt = new AdamW([...student.namedParameters(), ...hkd.namedParameters()], { lr: 1e-3 })
  const samples: SoakSample[] = []
  for (let step = 1; step <= steps; step++) {
    scope(() => {
      const clean = Tensor.rand([2, 1, 32, 32], { seed: step })
      const noisy = clean.add(Tensor.randn(clean.shape, { seed: 100_000 + step, std: 25 / 255 }))
      const { parts } = hkd.loss(noisy, clean, step)
      parts.loss.backward()
      opt.step()
      zeroGrad()
    })
    if (at.includes(step)) {
      const m = memory()
      const mem = process.memoryUsage()
      const s = { step, rssMiB: mem.rss / 2 ** 20, jsHeapMiB: mem.heapTotal / 2 ** 20, deviceBytes: m.bytes, deviceBuffers: m.buffers, handles: m.handles }
      samples.push(s)
      onSample?.(s)
    }
  }
  opt.dispose()
  student.dispose()
  teacher.dispose()
  hkd.dispose()
  return samples
}

export function run(args: BenchArgs): Record<string, unknown> {
  const steps = args.limit ?? 2000
  // Steps 100, 1,000 and 2,000 of the default run.
  const at = [Math.round(steps / 20), Math.round(steps / 2), steps]
  const samples = soak(steps, at, (s) =>
    console.log(`step ${String(s.step).padStart(5)}: RSS ${s.rssMiB.toFixed(1)} MiB (JS heap ${s.jsHeapMiB.toFixed(1)}, native ${(s.rssMiB - s.jsHeapMiB).toFixed(1)}), device ${s.deviceBytes} bytes in ${s.deviceBuffers} buffers, ${s.handles} live tensors`),
  )
  const [first, mid, last] = samples as [SoakSample, SoakSample, SoakSample]
  const growth = (a: number, b: number) => (b - a) / a
  const pct = (g: number) => `${(100 * g).toFixed(2)} %`
  const rssGrowth = growth(first.rssMiB, last.rssMiB)
  const lateGrowth = growth(mid.rssMiB, last.rssMiB)
  const nativeGrowth = growth(first.rssMiB - first.jsHeapMiB, last.rssMiB - last.jsHeapMiB)
  console.log(`RSS growth, step ${first.step} → ${last.step}: ${pct(rssGrowth)}; step ${mid.step} → ${last.step}: ${pct(lateGrowth)} (goal: under 5 %)`)
  console.log(`native memory (RSS − JS heap) growth, step ${first.step} → ${last.step}: ${pct(nativeGrowth)}`)
  const flat = first.deviceBytes === last.deviceBytes && first.deviceBuffers === last.deviceBuffers && first.handles === last.handles
  console.log(`device bytes, buffers and live tensors ${flat ? 'identical' : 'CHANGED'} from step ${first.step} to ${last.step}`)
  return { bench: 'soak', steps, samples, rssGrowth, lateGrowth, nativeGrowth, deviceFlat: flat }
}
