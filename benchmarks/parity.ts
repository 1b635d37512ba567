/**
 * `npm run bench -- parity [--preset P] [--shape B,C,H,W] [--seed N] [--dtype float64|float32]`:
 * spikeir against the PyTorch + SpikingJelly reference (benchmarks/reference)
 * on one training step from the same weights and batch, for the student
 * without hints, with raw DnCNN-S hints (γ = 0.12) and with `spikeir
 * distill`'s default design (standardised hints, output distillation). spikeir writes the run folder
 * (weights, batch), takes the step and writes its loss terms, gradients and
 * every threshold decision (each layer's spikes, each ReLU's output);
 * `parity.py` takes the same step in PyTorch and compares: loss terms to 1e-4
 * relative, each parameter's gradient to 1e-3 relative (max |Δ| over max |g|
 * of that parameter), following spikeir's decisions only where they lie
 * within float rounding of the threshold. The reference computes in float64
 * by default, so the errors shown are spikeir's own.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import { GateMlp, MultiDimensionalAttention, RefinementBlock, SpikingNeuron, info, initDevice, noGrad, writeSafetensors, type Module, type Tensor } from '../index'
import { loadRun, runReference, trainedParameters, writeRun, type HintDesign } from './reference/prepare'
import type { BenchArgs } from './run'

/** Decisions of one kind (spikes, ReLU masks): how many, followed within rounding, disagreeing. */
interface Decisions {
  decisions: number
  followed: number
  disagreed: number
  widest: number
}

interface CaseResult {
  case: string
  pass: boolean
  terms: Record<string, number>
  worstGradient: { name: string; rel: number }
  spikes: Decisions
  reluMasks: Decisions
  spikingJellyCheck: number
}

function runCase(preset: 'tiny' | 'small' | 'base', design: HintDesign | null, shape: number[], seed: number, dtype: string, json: boolean): CaseResult {
  const hints = design !== null
  // SPIKEIR_PARITY_KEEP=DIR keeps each run folder under DIR, to rerun parity.py on it.
  const keep = process.env['SPIKEIR_PARITY_KEEP']
  if (keep) fs.mkdirSync(keep, { recursive: true })
  const dir = fs.mkdtempSync(path.join(keep ?? os.tmpdir(), `spikeir-parity-${preset}${design ? `-${design}` : ''}-`))
  try {
    const [batch, , patch] = shape as [number, number, number, number]
    writeRun(dir, { preset, design, batch, patch, seed })
    const run = loadRun(dir)
    try {
      run.student.train()
      // Every decision a rounding error can flip: each layer's spikes and each ReLU's output
      // (its sign is the gradient's mask), so that the reference can tell decisions that lie
      // within rounding of the threshold from real disagreements.
      const decisions = new Map<string, Tensor>()
      const calls = new Map<string, number>()
      const record = (key: string, t: Tensor) => {
        const i = calls.get(key) ?? 0
        calls.set(key, i + 1)
        decisions.set(`${key}#${i}`, noGrad(() => t.reshape(t.shape)))
      }
      const onOutput = (m: Module, key: string) => {
        const forward = m.forward.bind(m)
        m.forward = (x: Tensor) => {
          const y = forward(x)
          record(key, y)
          return y
        }
      }
      const onInput = (m: Module, key: string) => {
        const forward = m.forward.bind(m)
        m.forward = (x: Tensor) => {
          record(key, x)
          return forward(x)
        }
      }
      for (const [name, m] of run.student.namedModules()) {
        if (m instanceof SpikingNeuron) onOutput(m, name)
        // Named as the reference's ReLU modules.
        if (m instanceof MultiDimensionalAttention) onOutput(m, `${name}.relu`)
        if (m instanceof GateMlp) onInput(m.fc2, `${name}.relu`)
        if (m instanceof RefinementBlock) {
          onInput(m.conv3, `${name}.relu`)
          onInput(m.gate2, `${name}.gate_relu`)
        }
      }
      const { output, parts } = run.hkd.loss(run.input, run.target, 0)
      writeSafetensors(path.join(dir, 'spikeir_decisions.safetensors'), decisions)
      for (const t of decisions.values()) t.dispose()
      parts.loss.backward()
      const grads = new Map<string, Tensor>()
      // Adapters under their H-KD module names, as the reference names them.
      for (const [name, p] of trainedParameters(run)) {
        const g = p.grad
        if (g) grads.set(name.replace(/^hkd\./, ''), g)
      }
      writeSafetensors(path.join(dir, 'spikeir_grads.safetensors'), grads)
      for (const g of grads.values()) g.dispose()
      const terms = { loss: parts.value, l1: parts.l1, fft: parts.fft, ...(hints ? { hint: parts.hint } : {}), ...(run.config.outputWeight > 0 ? { output: parts.output } : {}) }
      fs.writeFileSync(path.join(dir, 'spikeir_result.json'), JSON.stringify({ terms }))
      output.dispose()
      parts.loss.dispose()
    } finally {
      run.dispose()
    }
    const what = design === 'default' ? ' + DnCNN, default design (standardised hints, output distillation)' : design === 'raw' ? ' + DnCNN hints (raw)' : ', no hints'
    const label = `${preset}${what}, batch ${shape.join('×')}, seed ${seed}`
    const r = runReference('parity.py', ['--dir', dir, '--dtype', dtype, '--label', label, ...(json ? ['--quiet'] : [])])
    process.stdout.write(r.stdout)
    const resultFile = path.join(dir, 'parity_result.json')
    if (!fs.existsSync(resultFile)) throw new Error(`parity.py wrote no result (exit ${r.status}):\n${r.stderr}`)
    if (r.stderr.trim()) process.stderr.write(r.stderr)
    // Per-parameter errors stay in the printed table; the figures keep the worst.
    const { gradients: _all, ...figures } = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as Omit<CaseResult, 'case'> & { gradients: unknown }
    return { case: label, ...figures }
  } finally {
    if (!keep) fs.rmSync(dir, { recursive: true, force: true })
  }
}

export function run(args: BenchArgs): Record<string, unknown> {
  if (!args.device) initDevice({ adapter: 'cpu' })
  const preset = (args.preset ?? 'tiny') as 'tiny' | 'small' | 'base'
  if (!['tiny', 'small', 'base'].includes(preset)) throw new Error(`parity: unknown --preset '${preset}' (tiny, small, base)`)
  const shape = args.shape ?? [8, 1, 64, 64]
  if (shape[1] !== 1 || shape[2] !== shape[3] || shape[2]! % 4 !== 0) throw new Error(`parity: --shape must be B,1,S,S with S a multiple of 4, got ${shape.join(',')}`)
  const dtype = args.dtype ?? 'float64'
  const seed = args.seed ?? 1
  console.log(`spikeir on ${info().adapterName} against PyTorch + SpikingJelly (${dtype})`)
  const cases = ([null, 'raw', 'default'] as const).map((design) => runCase(preset, design, shape, seed, dtype, args.json))
  const pass = cases.every((c) => c.pass)
  console.log(pass ? 'parity: PASS' : 'parity: FAIL')
  if (!pass) process.exitCode = 1
  return { bench: 'parity', device: info().adapterName, dtype, pass, cases }
}
