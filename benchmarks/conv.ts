/**
 * `npm run bench -- conv`: a 3×3, 64→64 convolution on [8, 64, 128, 128]
 * (stride 1, padding 1), forward and forward+backward (input and weight
 * gradients), in GFLOP/s and as a ratio to the CPU's fp32 peak on CPU adapters.
 * FLOPs: forward 2·N·Cout·H·W·Cin·9; backward twice that.
 *
 * @module
 */
import { Tensor, info, noGrad, scope, synchronize, zeroGrad } from '../index'
import { cpuPeak } from './peak'
import type { BenchArgs } from './run'

function seconds(fn: () => void, reps: number): number {
  fn()
  synchronize() // warm-up: pipelines and pool
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < reps; i++) fn()
  synchronize()
  return Number(process.hrtime.bigint() - t0) / 1e9 / reps
}

export function run(args: BenchArgs): Record<string, unknown> {
  const device = info()
  const [n, c, h, w] = args.shape ?? [8, 64, 128, 128]
  const flops = 2 * n! * c! * h! * w! * c! * 9
  const peak = cpuPeak(args.flopsPerCycle)
  const onCpu = device.deviceType === 'cpu'
  console.log(`device: ${device.adapterName} (${device.deviceType}, ${device.kernelVariant} kernels)`)
  if (onCpu) console.log(`fp32 peak: ${peak.formula}`)
  const x = Tensor.randn([n!, c!, h!, w!], { seed: 1 })
  const weight = Tensor.randn([c!, c!, 3, 3], { seed: 2, std: 0.05 })
  const forward = seconds(() => scope(() => noGrad(() => x.conv2d(weight, null, { padding: 1 }))), 2)
  const xp = x.toParam()
  const wp = weight.toParam()
  const g = Tensor.randn([n!, c!, h!, w!], { seed: 3 })
  const both = seconds(
    () =>
      scope(() => {
        xp.conv2d(wp, null, { padding: 1 }).backward(g)
        zeroGrad()
      }),
    2,
  )
  const fwdGflops = flops / forward / 1e9
  const gflops = (3 * flops) / both / 1e9
  const ratio = (v: number) => (onCpu ? v / peak.gflops : null)
  console.log(`conv3x3 [${n}, ${c}, ${h}, ${w}] forward:          ${fwdGflops.toFixed(2)} GFLOP/s` + (onCpu ? ` (${(100 * ratio(fwdGflops)!).toFixed(1)} % of peak)` : ''))
  console.log(`conv3x3 [${n}, ${c}, ${h}, ${w}] forward+backward: ${gflops.toFixed(2)} GFLOP/s` + (onCpu ? ` (${(100 * ratio(gflops)!).toFixed(1)} % of peak)` : ''))
  if (!onCpu) console.log('(on a GPU adapter, compare against the GPU datasheet fp32 peak)')
  return {
    bench: 'conv',
    device: device.adapterName,
    deviceType: device.deviceType,
    shape: [n, c, h, w],
    forwardGflops: fwdGflops,
    gflops,
    peakRatio: ratio(gflops),
    peak,
  }
}
