/**
 * `npm run bench -- matmul`: square fp32 matmul throughput at 1024² and 2048²,
 * as GFLOP/s and as a ratio to the fp32 peak of the machine that runs the
 * kernels (the CPU's peak on CPU adapters such as lavapipe).
 *
 * @module
 */
import { Tensor, info, scope, synchronize } from '../index'
import { cpuPeak } from './peak'
import type { BenchArgs } from './run'

function timeMatmul(n: number, reps: number): number {
  return scope(() => {
    const a = Tensor.randn([n, n], { seed: 1 })
    const b = Tensor.randn([n, n], { seed: 2 })
    scope(() => a.matmul(b))
    synchronize() // warm-up: pipeline compilation and buffer allocation
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < reps; i++) scope(() => a.matmul(b))
    synchronize()
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9
    return (2 * n ** 3 * reps) / seconds / 1e9
  })
}

export function run(args: BenchArgs): Record<string, unknown> {
  const device = info()
  const peak = cpuPeak(args.flopsPerCycle)
  const onCpu = device.deviceType === 'cpu'
  console.log(`device: ${device.adapterName} (${device.deviceType}, ${device.backend}, ${device.kernelVariant} kernels)`)
  if (onCpu) console.log(`fp32 peak: ${peak.formula}`)
  const results: Record<string, { gflops: number; peakRatio: number | null }> = {}
  for (const n of [1024, 2048]) {
    const gflops = timeMatmul(n, n === 1024 ? 4 : 2)
    const peakRatio = onCpu ? gflops / peak.gflops : null
    results[String(n)] = { gflops, peakRatio }
    console.log(
      `matmul ${n}×${n}: ${gflops.toFixed(2)} GFLOP/s` +
        (peakRatio === null ? '' : ` = ${(100 * peakRatio).toFixed(1)} % of the CPU's fp32 peak`),
    )
  }
  if (!onCpu) console.log('(on a GPU adapter, compare against the GPU datasheet fp32 peak)')
  return { bench: 'matmul', device: device.adapterName, deviceType: device.deviceType, peak, results }
}
