/**
 * The machine's theoretical fp32 peak, the denominator of every ratio the
 * benchmarks print: cores × clock × FLOP per cycle per core.
 *
 * FLOP per cycle per core is read from the CPU flags: two 256-bit FMA pipes
 * (AVX2 + FMA) give 2 × 8 lanes × 2 FLOP = 32. AMD Zen 4 runs AVX-512 at that
 * same 256-bit rate, so AVX-512 alone does not raise it; pass
 * `--flops-per-cycle 64` on CPUs with two full 512-bit FMA units.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as os from 'node:os'

export interface CpuPeak {
  cores: number
  ghz: number
  flopsPerCycle: number
  gflops: number
  formula: string
}

export function cpuPeak(flopsPerCycleOverride?: number): CpuPeak {
  const cores = os.cpus().length
  let mhz = os.cpus()[0]?.speed ?? 0
  let flags = ''
  try {
    const info = fs.readFileSync('/proc/cpuinfo', 'utf8')
    flags = /^flags\s*:(.*)$/m.exec(info)?.[1] ?? ''
    if (!mhz) mhz = Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(info)?.[1] ?? 0)
  } catch {
    // Not Linux: fall back to the speed Node reports.
  }
  const has = (f: string) => new RegExp(`\\b${f}\\b`).test(flags)
  const flopsPerCycle = flopsPerCycleOverride ?? (has('avx2') && has('fma') ? 32 : has('avx') ? 16 : 8)
  const ghz = mhz / 1000
  const gflops = cores * ghz * flopsPerCycle
  return {
    cores,
    ghz,
    flopsPerCycle,
    gflops,
    formula: `${cores} cores × ${ghz.toFixed(2)} GHz × ${flopsPerCycle} FLOP/cycle = ${gflops.toFixed(1)} GFLOP/s`,
  }
}
