/**
 * The report page: one self-contained HTML file (inline CSS, inline SVG
 * charts, images as `data:` URIs, no script) built from the runs on disk and,
 * when models could be run, their results on one image.
 *
 * @module
 */
import type { StepRecord } from '../train/distill'
import type { ImageAnalysis, ModelOnImage } from './analyse'
import type { Run, RunRole } from './collect'
import { CONVENTIONS, layerEnergyPj, layerOps, totals } from './energy'
import { barChart, esc, heatmap, lineChart, PALETTE, type Series } from './svg'

/** What the page is made of. */
export interface ReportInput {
  runs: readonly Run[]
  analysis: ImageAnalysis | null
  /** Free-form facts for the header (device, demo time, …). */
  facts?: Record<string, string>
  /** When the report was written (defaults to now). */
  date?: Date
}

const ROLE_NAME: Record<RunRole, string> = { teacher: 'ANN teacher', hints: 'student, H-KD hints', 'no-hints': 'student, no hints', unknown: 'run' }
const ROLE_SHORT: Record<RunRole, string> = { teacher: 'teacher', hints: 'hints', 'no-hints': 'no hints', unknown: '' }
const ROLE_COLOUR: Partial<Record<RunRole, string>> = { teacher: '#2ca02c', hints: '#1f77b4', 'no-hints': '#d62728' }

/** A colour per run: fixed by role for the first of each role, then the palette. */
function colours(runs: readonly Run[]): Map<Run, string> {
  const used = new Set<string>()
  const out = new Map<Run, string>()
  for (const r of runs) {
    const c = ROLE_COLOUR[r.role]
    if (c && !used.has(c)) {
      out.set(r, c)
      used.add(c)
    }
  }
  let i = 0
  for (const r of runs) {
    if (out.has(r)) continue
    while (used.has(PALETTE[i % PALETTE.length]!) && i < PALETTE.length) i++
    const c = PALETTE[i % PALETTE.length]!
    out.set(r, c)
    used.add(c)
    i++
  }
  return out
}

const legendName = (r: Run) => (ROLE_SHORT[r.role] && !r.label.includes(ROLE_SHORT[r.role]) ? `${r.label} (${ROLE_SHORT[r.role]})` : r.label)

/** Centred moving average over `window` points (shrinking at the ends). */
export function smooth(ys: readonly number[], window: number): number[] {
  if (window <= 1) return [...ys]
  const half = Math.floor(window / 2)
  const prefix = [0]
  for (const y of ys) prefix.push(prefix.at(-1)! + y)
  return ys.map((_, i) => {
    const a = Math.max(0, i - half)
    const b = Math.min(ys.length, i + half + 1)
    return (prefix[b]! - prefix[a]!) / (b - a)
  })
}

/** At most `n` evenly spaced points of a curve (its last point kept). */
function thin<T>(xs: readonly T[], n: number): T[] {
  if (xs.length <= n) return [...xs]
  const k = xs.length / n
  const out: T[] = []
  for (let i = 0; i < n; i++) out.push(xs[Math.floor(i * k)]!)
  out.push(xs.at(-1)!)
  return out
}

/** A noisy per-step quantity as a faint raw line under a smoothed one (for long runs). */
function curve(run: Run, colour: string, value: (s: StepRecord) => number, dash?: string): Series[] {
  const steps = run.steps.filter((s) => Number.isFinite(value(s)))
  const xs = steps.map((s) => s.step + 1)
  const ys = steps.map(value)
  const name = legendName(run)
  const d = dash ? { dash } : {}
  if (steps.length <= 60) return [{ label: name, color: colour, points: thin(xs.map((x, i) => [x, ys[i]!] as const), 800), ...d }]
  const window = Math.max(3, Math.round(steps.length / 40))
  const sm = smooth(ys, window)
  return [
    { label: `${name} raw`, color: colour, opacity: 0.25, strokeWidth: 1, hideFromLegend: true, points: thin(xs.map((x, i) => [x, ys[i]!] as const), 800) },
    { label: name, color: colour, points: thin(xs.map((x, i) => [x, sm[i]!] as const), 800), ...d },
  ]
}

const fmt = (v: number, d = 2) => (Number.isFinite(v) ? v.toFixed(d) : '–')
const sci = (v: number) => (v === 0 ? '0' : v.toExponential(3).replace(/e\+?/, ' × 10^').replace(/\^(-?\d+)$/, '<sup>$1</sup>'))
const uj = (pj: number) => (pj / 1e6 >= 100 ? (pj / 1e6).toFixed(1) : (pj / 1e6).toPrecision(3))

function section(id: string, title: string, body: string, intro = ''): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>${intro ? `<p class="intro">${intro}</p>` : ''}${body}</section>`
}

function summaryTable(runs: readonly Run[], analysis: ImageAnalysis | null, col: Map<Run, string>): string {
  const rows = runs.map((r) => {
    const v = r.validation.at(-1)
    const last = r.steps.at(-1)
    const seconds = r.steps.reduce((a, s) => a + (s.seconds || 0), 0)
    const m = analysis?.models.find((x) => x.label === r.label)
    return (
      `<tr><td><span class="swatch" style="background:${col.get(r)}"></span>${esc(r.label)}</td><td>${esc(ROLE_NAME[r.role])}</td><td class="path">${esc(r.dir)}</td>` +
      `<td class="n">${r.steps.length ? r.steps.at(-1)!.step + 1 : 0}</td><td class="n">${m ? m.parameters.toLocaleString('en-US') : '–'}</td>` +
      `<td class="n">${last ? fmt(last.loss, 4) : '–'}</td><td class="n">${v?.metrics['psnr'] !== undefined ? fmt(v.metrics['psnr']) : '–'}</td>` +
      `<td class="n">${v?.metrics['ssim'] !== undefined ? fmt(v.metrics['ssim'], 4) : '–'}</td><td class="n">${fmt(seconds, 0)}</td></tr>`
    )
  })
  return (
    '<table><thead><tr><th>run</th><th>trains</th><th>folder</th><th>steps</th><th>parameters</th><th>last loss</th><th>val. PSNR (dB)</th><th>val. SSIM</th><th>step time (s)</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table>`
  )
}

function lossCharts(runs: readonly Run[], col: Map<Run, string>): string {
  const terms: { key: 'loss' | 'l1' | 'fft' | 'hint' | 'output'; title: string; y: string }[] = [
    { key: 'loss', title: 'Total loss', y: 'L1 + λ·FFT + γ·hint + β·output' },
    { key: 'l1', title: 'L1 loss', y: 'L1 loss' },
    { key: 'fft', title: 'FFT loss', y: 'FFT loss' },
    { key: 'hint', title: 'Hint loss (H-KD)', y: 'hint loss' },
    { key: 'output', title: "Output distillation (L1 to the teacher's output)", y: 'L1 to the teacher' },
  ]
  return terms
    .map((t) => {
      // The teacher's terms are drawn for the runs that have them.
      const rs = t.key === 'hint' || t.key === 'output' ? runs.filter((r) => r.steps.some((s) => s[t.key] > 0)) : runs
      const series = rs.flatMap((r) => curve(r, col.get(r)!, (s) => s[t.key]))
      return lineChart({ title: t.title, xLabel: 'training step', yLabel: t.y, series, yScale: 'log' })
    })
    .join('')
}

function validationCharts(runs: readonly Run[], col: Map<Run, string>): string {
  const withVal = runs.filter((r) => r.validation.length > 0)
  const chart = (metric: string, title: string, y: string) =>
    lineChart({
      title,
      xLabel: 'training step',
      yLabel: y,
      series: withVal.map((r) => ({ label: legendName(r), color: col.get(r)!, markers: true, points: r.validation.map((v) => [v.step, v.metrics[metric] ?? NaN] as const) })),
    })
  let delta = ''
  const hkd = runs.filter((r) => r.role === 'hints' && r.validation.length)
  const base = runs.filter((r) => r.role === 'no-hints' && r.validation.length)
  if (hkd.length === 1 && base.length === 1) {
    const b = new Map(base[0]!.validation.map((v) => [v.step, v.metrics['psnr']]))
    const rows = hkd[0]!.validation
      .filter((v) => b.has(v.step))
      .map((v) => {
        const d = v.metrics['psnr']! - b.get(v.step)!
        return `<tr><td class="n">${v.step}</td><td class="n">${fmt(v.metrics['psnr']!)}</td><td class="n">${fmt(b.get(v.step)!)}</td><td class="n ${d >= 0 ? 'pos' : 'neg'}">${d >= 0 ? '+' : ''}${fmt(d)}</td></tr>`
      })
    if (rows.length) {
      delta = `<table class="compact"><caption>Validation PSNR (dB) with and without hints</caption><thead><tr><th>step</th><th>${esc(hkd[0]!.label)} (hints)</th><th>${esc(base[0]!.label)} (no hints)</th><th>difference (dB)</th></tr></thead><tbody>${rows.join('')}</tbody></table>`
    }
  }
  return chart('psnr', 'Validation PSNR', 'PSNR (dB)') + chart('ssim', 'Validation SSIM', 'SSIM') + (delta ? `<div class="side">${delta}</div>` : '')
}

function lrChart(runs: readonly Run[], col: Map<Run, string>): string {
  // Identical schedules (a student and its baseline) would hide each other: dash every other run.
  const series = runs.map((r, i) => ({ label: legendName(r), color: col.get(r)!, ...(i % 2 ? { dash: '7 4' } : {}), points: thin(r.steps.map((s) => [s.step + 1, s.lr] as const), 800) }))
  // γ is worth a chart only when a schedule changes it.
  const gamma = runs.filter((r) => r.steps.some((s) => s.hint > 0) && new Set(r.steps.map((s) => s.gamma)).size > 1).map((r) => ({ label: legendName(r), color: col.get(r)!, points: thin(r.steps.map((s) => [s.step + 1, s.gamma] as const), 800) }))
  return lineChart({ title: 'Learning rate', xLabel: 'training step', yLabel: 'learning rate', series }) + (gamma.length ? lineChart({ title: 'Hint weight γ', xLabel: 'training step', yLabel: 'γ', series: gamma }) : '')
}

/** Shortens `encoder_level1.0.residual.0` style names only where they carry a redundant suffix. */
const layerName = (n: string) => n.replace(/\.module$/, '')

function firingCharts(runs: readonly Run[], analysis: ImageAnalysis | null, col: Map<Run, string>): string {
  const maps: { run: Run; layers: string[]; columns: number[]; values: number[][] }[] = []
  for (const r of runs) {
    const layers = Object.keys(r.steps.find((s) => s.firingRates && Object.keys(s.firingRates).length)?.firingRates ?? {})
    if (layers.length === 0) continue
    const bins = Math.min(80, r.steps.length)
    const first = r.steps[0]!.step
    const span = r.steps.at(-1)!.step + 1 - first
    const columns = Array.from({ length: bins }, (_, i) => first + 1 + (i * span) / bins)
    const values = layers.map((l) => {
      const sum = new Array<number>(bins).fill(0)
      const n = new Array<number>(bins).fill(0)
      for (const s of r.steps) {
        const v = s.firingRates?.[l]
        if (v === undefined) continue
        const b = Math.min(bins - 1, Math.floor(((s.step - first) / span) * bins))
        sum[b]! += v
        n[b]!++
      }
      return sum.map((v, i) => (n[i] ? v / n[i]! : NaN))
    })
    maps.push({ run: r, layers, columns, values })
  }
  // One colour scale for all runs, so their maps compare at a glance.
  const hi = Math.max(0.05, ...maps.flatMap((m) => m.values.flat().filter(Number.isFinite)))
  const parts = maps.map((m) =>
    heatmap({ title: `Firing rates during training: ${m.run.label}`, xLabel: 'training step', rows: m.layers.map(layerName), columns: m.columns, values: m.values, colorLabel: 'spike rate', range: [0, Math.ceil(hi * 20) / 20] }),
  )
  const spiking = analysis?.models.filter((m) => Object.keys(m.firingRates).length) ?? []
  if (spiking.length) {
    const layers = Object.keys(spiking[0]!.firingRates)
    const colourOf = (m: ModelOnImage) => col.get(runs.find((r) => r.label === m.label)!) ?? PALETTE[0]!
    parts.push(
      barChart({
        title: `Firing rates on ${analysis!.name} (${analysis!.energyInput.width}×${analysis!.energyInput.height})`,
        xLabel: 'mean spike rate (per neuron and time step)',
        categories: layers.map(layerName),
        series: spiking.map((m) => ({ label: m.label, color: colourOf(m), values: layers.map((l) => m.firingRates[l] ?? null) })),
      }),
    )
  }
  return parts.join('')
}

function energySection(a: ImageAnalysis): string {
  const teacher = a.models.find((m) => m.role === 'teacher')
  const head =
    '<tr><th rowspan="2">model</th><th rowspan="2">parameters</th><th rowspan="2">MACs<br><small>real-valued inputs</small></th><th rowspan="2">SOPs<br><small>spiking inputs</small></th>' +
    CONVENTIONS.map((c) => `<th colspan="2">${esc(c.title)}<br><small>${c.macPj} pJ/MAC, ${c.sopPj >= 0.1 ? `${c.sopPj} pJ` : `${Math.round(c.sopPj * 1000)} fJ`}/SOP</small></th>`).join('') +
    '</tr><tr>' +
    CONVENTIONS.map(() => '<th>energy (µJ)</th><th>teacher ÷ model</th>').join('') +
    '</tr>'
  const tt = teacher ? totals(teacher.energy) : null
  const rows = a.models.map((m) => {
    const t = totals(m.energy)
    return (
      `<tr><td>${esc(m.label)}</td><td class="n">${m.parameters.toLocaleString('en-US')}</td><td class="n">${sci(t.macs)}</td><td class="n">${sci(t.sops)}</td>` +
      CONVENTIONS.map((_, i) => `<td class="n">${uj(t.energyPj[i]!)}</td><td class="n">${tt ? `${fmt(tt.energyPj[i]! / t.energyPj[i]!, 1)}×` : '–'}</td>`).join('') +
      '</tr>'
    )
  })
  const table = `<table class="energy"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table>`
  const perLayer = a.models
    .filter((m) => m.role !== 'teacher')
    .map((m) => {
      const lr = m.energy.layers.map((l) => {
        const o = layerOps(l)
        return (
          `<tr><td>${esc(l.name)}</td><td>${l.input}</td><td class="n">${l.firingRate === null ? '–' : l.firingRate.toFixed(3)}</td><td class="n">${o.macs ? sci(o.macs) : '–'}</td><td class="n">${o.sops ? sci(o.sops) : '–'}</td>` +
          CONVENTIONS.map((c) => `<td class="n">${uj(layerEnergyPj(l, c))}</td>`).join('') +
          '</tr>'
        )
      })
      return (
        `<details><summary>Per-layer energy of ${esc(m.label)}</summary><table class="compact"><thead><tr><th>layer</th><th>input</th><th>rate</th><th>MACs</th><th>SOPs</th>` +
        CONVENTIONS.map((c) => `<th>${esc(c.title)} (µJ)</th>`).join('') +
        `</tr></thead><tbody>${lr.join('')}</tbody></table></details>`
      )
    })
    .join('')
  const notes = CONVENTIONS.map((c) => `<li><b>${esc(c.title)}:</b> ${esc(c.note)}.</li>`).join('')
  return (
    table +
    `<ul class="notes">${notes}<li>Counted per image on ${esc(a.name)} (${a.energyInput.width}×${a.energyInput.height}, noisy input); a layer fed with spikes costs SOPs = firing rate × MACs, every time step included. ` +
    'Compute only: memory traffic is not counted, and this is an analytical estimate, not a measurement on neuromorphic hardware.</li></ul>' +
    perLayer
  )
}

function imageSection(a: ImageAnalysis): string {
  // Side by side in one row of the page: up to 3× the crop, less when many models share the row.
  const n = 2 + a.models.length
  const room = Math.floor((1130 - 14 * (n - 1)) / n) - 18
  const scale = Math.max(1, Math.min(3, room / Math.max(a.crop.width, a.crop.height)))
  const fig = (src: string, title: string, caption: string) =>
    `<figure><img src="${src}" alt="${esc(title)}" width="${Math.round(a.crop.width * scale)}" height="${Math.round(a.crop.height * scale)}"><figcaption><b>${esc(title)}</b><br>${caption}</figcaption></figure>`
  const figs = [
    fig(a.clean, 'ground truth', esc(a.name)),
    fig(a.noisy, `degraded (σ = ${a.sigma})`, `${fmt(a.noisyPsnr)} dB`),
    ...a.models.map((m) => fig(m.crop, m.label, `${fmt(m.psnr)} dB · SSIM ${fmt(m.ssim, 4)}`)),
  ]
  const whole = a.crop.width === a.width && a.crop.height === a.height
  return (
    `<div class="figures">${figs.join('')}</div>` +
    `<p class="intro">${whole ? `The whole ${a.width}×${a.height} image` : `A ${a.crop.width}×${a.crop.height} crop from the centre of the ${a.width}×${a.height} image`}, shown at ${Number(scale.toFixed(2))}× without smoothing; ` +
    `PSNR and SSIM over the whole image (0–255 scale, output clipped), noise from seed 1000.</p>`
  )
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;background:#f6f7f9;margin:0}
main{max-width:1180px;margin:0 auto;padding:18px 24px 40px}
h1{font-size:24px;margin:4px 0 2px}h2{font-size:18px;margin:26px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555;margin:0 0 6px}.intro{color:#444;margin:4px 0 10px;max-width:980px}
.charts{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}.side{flex:0 1 auto}.side table{margin-top:0}
svg.chart{background:#fff;border:1px solid #e2e2e2;border-radius:6px;max-width:100%;height:auto}
table{border-collapse:collapse;background:#fff;margin:8px 0;font-size:13px}
th,td{border:1px solid #e0e0e0;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f0f2f5;font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}td.path{color:#666;font-size:12px;word-break:break-all;max-width:260px}
td.pos{color:#1a7f37}td.neg{color:#b42318}table.compact td,table.compact th{padding:2px 7px;font-size:12px}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:6px;vertical-align:-1px}
.figures{display:flex;flex-wrap:wrap;gap:14px}
figure{margin:0;background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:8px;text-align:center}
figure img{display:block;image-rendering:pixelated;image-rendering:crisp-edges}
figcaption{font-size:13px;margin-top:6px;color:#333}
caption{text-align:left;font-weight:600;padding:2px 0 6px}details{margin:6px 0}summary{cursor:pointer;color:#1f4f8f}ul.notes{color:#444;font-size:13px;margin:4px 0 8px;padding-left:20px}
`

/** Renders the report page. */
export function renderReport(input: ReportInput): string {
  const { runs, analysis } = input
  const col = colours(runs)
  const date = (input.date ?? new Date()).toISOString().replace('T', ' ').slice(0, 16) + ' UTC'
  const facts = Object.entries(input.facts ?? {})
    .map(([k, v]) => `${esc(k)}: ${esc(v)}`)
    .join(' · ')
  const skipped = runs.filter((r) => r.skippedLines > 0).map((r) => `${esc(r.label)}: ${r.skippedLines} unreadable log line(s) skipped`)
  const body = [
    section('runs', 'Runs', summaryTable(runs, analysis, col) + (skipped.length ? `<p class="intro">${skipped.join('; ')}.</p>` : '')),
    section('losses', 'Training losses', `<div class="charts">${lossCharts(runs, col)}</div>`, 'Per-step training losses (log scale): L1 is the mean absolute error of the output, FFT the mean absolute difference of the output\'s and target\'s 2-D spectra, hint the mean squared error between the adapted student features and the teacher\'s (H-KD); long runs show a moving average over the faint raw values.'),
    section(
      'validation',
      'Validation and schedule',
      `<div class="charts">${validationCharts(runs, col)}${lrChart(runs, col)}</div>`,
      'Validation on whole images, noise from a fixed seed, output clipped to [0, 1].',
    ),
    section('firing', 'Firing rates', `<div class="charts">${firingCharts(runs, analysis, col)}</div>`, 'Mean spike rate of each spiking neuron layer: per training step (binned), and in one forward on the report image.'),
    analysis ? section('energy', 'Energy per image', energySection(analysis)) : '',
    analysis ? section('images', 'Restored images', imageSection(analysis)) : '',
  ].join('')
  return (
    `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>spikeir report: ${esc(runs.map((r) => r.label).join(', '))}</title><style>${CSS}</style></head><body><main>` +
    `<h1>spikeir training report</h1><p class="meta">${esc(runs.map((r) => r.label).join(' · '))} — written ${date}${facts ? ` · ${facts}` : ''}</p>` +
    `${body}</main></body></html>\n`
  )
}
