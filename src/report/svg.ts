/**
 * Charts as inline SVG strings: line charts (linear or log y), a heat map and
 * horizontal bar charts — the few kinds the training report needs, drawn
 * with nothing but string templates so the report stays one self-contained
 * file. Every chart is an `<svg class="chart">` whose data marks carry the
 * class `series` (paths of line charts, groups of rects otherwise).
 *
 * @module
 */

/** Colours of successive series (distinguishable, and legible on white). */
export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22']

/** Escapes text for SVG/HTML content and attributes. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
}

/** One line of a line chart. */
export interface Series {
  label: string
  color: string
  points: readonly (readonly [number, number])[]
  /** SVG stroke-dasharray, e.g. `6 3`. */
  dash?: string
  strokeWidth?: number
  opacity?: number
  /** Draw a dot at every point (for sparse series such as validation). */
  markers?: boolean
  /** Leave the series out of the legend (e.g. the raw values under a smoothed line). */
  hideFromLegend?: boolean
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  title: string
  xLabel: string
  yLabel: string
  series: readonly Series[]
  yScale?: 'linear' | 'log'
  width?: number
  height?: number
}

const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif"'
/** Approximate advance of one character at 12 px, for laying out legends and labels. */
const CHAR_W = 6.4

/** `v` without the binary rounding noise of repeated steps. */
const clean = (v: number) => (v === 0 ? 0 : Number(v.toPrecision(12)))

/** Round tick values covering [lo, hi] (about `count` of them). */
export function linearTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo]
  const raw = (hi - lo) / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw * (1 - 1e-9)) ?? 10) * mag
  const ticks: number[] = []
  // Multiples of the step, rounded so labels and tests see 0.6 rather than 0.6000000000000001.
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) ticks.push(clean(k * step))
  return ticks
}

/**
 * Ticks of a log axis inside [lo, hi]: powers of ten, then 1-2-5 or every
 * digit as the range narrows; a range inside one decade gets round linear ticks.
 */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo))
  const b = Math.ceil(Math.log10(hi))
  for (const mult of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const ticks: number[] = []
    for (let e = a; e <= b; e++) for (const m of mult) ticks.push(clean(m * 10 ** e))
    const inside = ticks.filter((v) => v >= lo * 0.999 && v <= hi * 1.001)
    if (inside.length >= 3) return inside
  }
  return linearTicks(lo, hi, 4).filter((v) => v > 0 && v >= lo && v <= hi)
}

/** A tick label: plain decimals for ordinary magnitudes, `2e-3` style for very small or large ones. */
export function formatTick(v: number, spacing: number): string {
  if (v === 0) return '0'
  const a = Math.abs(v)
  if (a < 1e-2 || a >= 1e5) {
    const [m, e] = v.toExponential(2).split('e') as [string, string]
    return `${Number(m)}e${Number(e)}`
  }
  // As many decimals as the spacing needs: 0.025 steps need three, 0.2 steps one.
  let decimals = 0
  while (decimals < 6 && Math.abs(Math.round(spacing * 10 ** decimals) - spacing * 10 ** decimals) > 1e-6 * 10 ** decimals) decimals++
  return v.toFixed(decimals)
}

interface LegendItem {
  label: string
  color: string
  dash?: string
}

/** Lays legend items out in rows of at most `width` px; returns the SVG and its height. */
function legend(items: readonly LegendItem[], x0: number, y0: number, width: number): { svg: string; height: number } {
  if (items.length === 0) return { svg: '', height: 0 }
  let x = 0
  let row = 0
  const parts: string[] = []
  for (const it of items) {
    const w = 25 + it.label.length * CHAR_W + 12
    if (x > 0 && x + w > width) {
      x = 0
      row++
    }
    const y = y0 + row * 18
    parts.push(
      `<line x1="${x0 + x}" y1="${y}" x2="${x0 + x + 20}" y2="${y}" stroke="${it.color}" stroke-width="2.5"${it.dash ? ` stroke-dasharray="${it.dash}"` : ''}/>` +
        `<text x="${x0 + x + 25}" y="${y + 4}" font-size="12" fill="#333">${esc(it.label)}</text>`,
    )
    x += w
  }
  return { svg: `<g class="legend">${parts.join('')}</g>`, height: (row + 1) * 18 }
}

const num = (v: number) => (Math.round(v * 100) / 100).toString()

/** A line chart; series with no finite point (or no positive one on a log axis) are left out. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 560
  const H = o.height ?? 300
  const log = o.yScale === 'log'
  const usable = (p: readonly [number, number]) => Number.isFinite(p[0]) && Number.isFinite(p[1]) && (!log || p[1] > 0)
  const series = o.series.map((s) => ({ ...s, points: s.points.filter(usable) })).filter((s) => s.points.length > 0)
  const all = series.flatMap((s) => s.points)
  const items = series.filter((s) => !s.hideFromLegend).map((s) => ({ label: s.label, color: s.color, ...(s.dash ? { dash: s.dash } : {}) }))
  const left = 66
  const right = 18
  const lg = legend(items, left, 44, W - left - right)
  const top = 34 + lg.height + 10
  const bottom = 46
  const pw = W - left - right
  const ph = H - top - bottom
  const head = `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}" ${FONT}>` +
    `<rect width="${W}" height="${H}" fill="#fff"/>` +
    `<text x="${left}" y="22" font-size="15" font-weight="600" fill="#111">${esc(o.title)}</text>`
  if (all.length === 0) {
    return `${head}<text x="${W / 2}" y="${H / 2}" text-anchor="middle" font-size="13" fill="#777">no data</text></svg>`
  }
  let x0 = Math.min(...all.map((p) => p[0]))
  let x1 = Math.max(...all.map((p) => p[0]))
  if (x1 === x0) {
    x0 -= 1
    x1 += 1
  }
  let y0 = Math.min(...all.map((p) => p[1]))
  let y1 = Math.max(...all.map((p) => p[1]))
  if (log) {
    if (y1 / y0 < 1.5) {
      y0 /= 1.25
      y1 *= 1.25
    }
  } else {
    const pad = y1 > y0 ? (y1 - y0) * 0.06 : Math.abs(y0) * 0.05 || 1
    y0 -= pad
    y1 += pad
  }
  const xs = (x: number) => left + ((x - x0) / (x1 - x0)) * pw
  const ys = log ? (y: number) => top + ph - ((Math.log10(y) - Math.log10(y0)) / (Math.log10(y1) - Math.log10(y0))) * ph : (y: number) => top + ph - ((y - y0) / (y1 - y0)) * ph
  const xt = linearTicks(x0, x1, 6).filter((v) => v >= x0 && v <= x1)
  const yt = log ? logTicks(y0, y1) : linearTicks(y0, y1, 5).filter((v) => v >= y0 && v <= y1)
  const xsp = xt.length > 1 ? xt[1]! - xt[0]! : 1
  const ysp = yt.length > 1 ? yt[1]! - yt[0]! : Math.abs(yt[0] ?? 1)
  // Log ticks are unevenly spaced: each label needs the precision of its nearest neighbour.
  const gap = (i: number) => Math.min(i > 0 ? yt[i]! - yt[i - 1]! : Infinity, i + 1 < yt.length ? yt[i + 1]! - yt[i]! : Infinity, Math.abs(yt[i]!))
  const grid = [
    ...yt.map((v, i) => `<line x1="${left}" x2="${left + pw}" y1="${num(ys(v))}" y2="${num(ys(v))}" stroke="#e6e6e6"/><text x="${left - 7}" y="${num(ys(v) + 4)}" font-size="11" text-anchor="end" fill="#444">${formatTick(v, log ? gap(i) : ysp)}</text>`),
    ...xt.map((v) => `<line x1="${num(xs(v))}" x2="${num(xs(v))}" y1="${top + ph}" y2="${top + ph + 5}" stroke="#666"/><text x="${num(xs(v))}" y="${top + ph + 18}" font-size="11" text-anchor="middle" fill="#444">${formatTick(v, xsp)}</text>`),
  ].join('')
  const axes =
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>` +
    `<text x="${left + pw / 2}" y="${H - 8}" font-size="12" text-anchor="middle" fill="#222">${esc(o.xLabel)}</text>` +
    `<text transform="translate(15 ${top + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle" fill="#222">${esc(o.yLabel)}${log ? ' (log scale)' : ''}</text>`
  // Dashed series go on top, so a dashed line over an identical solid one shows both.
  const lines = [...series]
    .sort((a, b) => Number(!!a.dash) - Number(!!b.dash))
    .map((s) => {
      const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${num(xs(p[0]))},${num(ys(p[1]))}`).join('')
      const path = `<path class="series" data-label="${esc(s.label)}" d="${d}" fill="none" stroke="${s.color}" stroke-width="${s.strokeWidth ?? 2}" stroke-linejoin="round"${s.dash ? ` stroke-dasharray="${s.dash}"` : ''}${s.opacity !== undefined ? ` stroke-opacity="${s.opacity}"` : ''}/>`
      const dots = s.markers ? s.points.map((p) => `<circle cx="${num(xs(p[0]))}" cy="${num(ys(p[1]))}" r="3.2" fill="${s.color}"/>`).join('') : ''
      return path + dots
    })
    .join('')
  return `${head}${lg.svg}${grid}${axes}<g>${lines}</g></svg>`
}

/** A sequential colour ramp (dark blue → green → yellow) for t in [0, 1]. */
export function ramp(t: number): string {
  const stops: [number, number, number][] = [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ]
  const u = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (stops.length - 1)
  const i = Math.min(stops.length - 2, Math.floor(u))
  const f = u - i
  const c = stops[i]!.map((a, k) => Math.round(a + (stops[i + 1]![k]! - a) * f))
  return `rgb(${c[0]},${c[1]},${c[2]})`
}

/** Options of {@link heatmap}. */
export interface HeatmapOptions {
  title: string
  xLabel: string
  /** Row labels, top to bottom. */
  rows: readonly string[]
  /** Column positions (x values, ascending); each cell spans to the next. */
  columns: readonly number[]
  /** values[row][column]; NaN cells stay blank. */
  values: readonly (readonly number[])[]
  colorLabel: string
  /** Colour scale range (default [0, 1]). */
  range?: [number, number]
  width?: number
}

/** A heat map of rows (e.g. layers) over x (e.g. training step), with a colour bar. */
export function heatmap(o: HeatmapOptions): string {
  const W = o.width ?? 560
  const rowH = Math.max(9, Math.min(18, 260 / Math.max(1, o.rows.length)))
  const left = Math.min(280, 14 + Math.max(...o.rows.map((r) => r.length), 4) * 6.2)
  const top = 40
  const right = 84
  const bottom = 46
  const pw = W - left - right
  const ph = rowH * o.rows.length
  const H = top + ph + bottom
  const [lo, hi] = o.range ?? [0, 1]
  const c0 = o.columns[0] ?? 0
  const cn = o.columns.length > 1 ? o.columns.at(-1)! + (o.columns.at(-1)! - o.columns.at(-2)!) : c0 + 1
  const xs = (x: number) => left + ((x - c0) / (cn - c0 || 1)) * pw
  const cells: string[] = []
  o.values.forEach((row, r) =>
    row.forEach((v, c) => {
      if (!Number.isFinite(v)) return
      const xa = xs(o.columns[c]!)
      const xb = c + 1 < o.columns.length ? xs(o.columns[c + 1]!) : left + pw
      cells.push(`<rect x="${num(xa)}" y="${num(top + r * rowH)}" width="${num(Math.max(0.5, xb - xa + 0.3))}" height="${num(rowH + 0.3)}" fill="${ramp((v - lo) / (hi - lo))}"><title>${esc(`${o.rows[r]}: ${v.toFixed(3)}`)}</title></rect>`)
    }),
  )
  const labels = o.rows.map((r, i) => `<text x="${left - 6}" y="${num(top + i * rowH + rowH / 2 + 3.5)}" font-size="${rowH < 12 ? 9.5 : 11}" text-anchor="end" fill="#333">${esc(r)}</text>`).join('')
  const xt = linearTicks(c0, cn, 5).filter((v) => v >= c0 && v <= cn)
  const xsp = xt.length > 1 ? xt[1]! - xt[0]! : 1
  const xticks = xt.map((v) => `<line x1="${num(xs(v))}" x2="${num(xs(v))}" y1="${top + ph}" y2="${top + ph + 5}" stroke="#666"/><text x="${num(xs(v))}" y="${top + ph + 18}" font-size="11" text-anchor="middle" fill="#444">${formatTick(v, xsp)}</text>`).join('')
  const barX = left + pw + 16
  const grad = Array.from({ length: 20 }, (_, i) => `<rect x="${barX}" y="${num(top + (ph * i) / 20)}" width="14" height="${num(ph / 20 + 0.5)}" fill="${ramp(1 - (i + 0.5) / 20)}"/>`).join('')
  const bt = linearTicks(lo, hi, 4).filter((v) => v >= lo && v <= hi)
  const btsp = bt.length > 1 ? bt[1]! - bt[0]! : 1
  const barTicks = bt.map((v) => `<text x="${barX + 19}" y="${num(top + ph - ((v - lo) / (hi - lo)) * ph + 4)}" font-size="11" fill="#444">${formatTick(v, btsp)}</text>`).join('')
  return (
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}" ${FONT}>` +
    `<rect width="${W}" height="${H}" fill="#fff"/>` +
    `<text x="${14}" y="22" font-size="15" font-weight="600" fill="#111">${esc(o.title)}</text>` +
    `<g class="series">${cells.join('')}</g>${labels}` +
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>${xticks}` +
    `<text x="${left + pw / 2}" y="${H - 8}" font-size="12" text-anchor="middle" fill="#222">${esc(o.xLabel)}</text>` +
    `${grad}<rect x="${barX}" y="${top}" width="14" height="${ph}" fill="none" stroke="#999"/>${barTicks}` +
    `<text transform="translate(${W - 6} ${top + ph / 2}) rotate(-90)" font-size="11" text-anchor="middle" fill="#222">${esc(o.colorLabel)}</text></svg>`
  )
}

/** Options of {@link barChart}. */
export interface BarChartOptions {
  title: string
  xLabel: string
  categories: readonly string[]
  series: readonly { label: string; color: string; values: readonly (number | null)[] }[]
  width?: number
}

/** Horizontal grouped bars: one row per category, one bar per series. */
export function barChart(o: BarChartOptions): string {
  const W = o.width ?? 560
  const left = Math.min(280, 14 + Math.max(...o.categories.map((r) => r.length), 4) * 6.2)
  const right = 24
  const pw = W - left - right
  const lg = legend(o.series.map((s) => ({ label: s.label, color: s.color })), left, 44, pw)
  const top = 34 + lg.height + 8
  const barH = o.series.length > 1 ? 6 : 9
  const rowH = barH * o.series.length + 5
  const ph = rowH * o.categories.length
  const bottom = 46
  const H = top + ph + bottom
  const vals = o.series.flatMap((s) => s.values.filter((v): v is number => v !== null && Number.isFinite(v)))
  const hi = Math.max(1e-9, ...vals) * 1.05
  const xt = linearTicks(0, hi, 5).filter((v) => v <= hi)
  const xsp = xt.length > 1 ? xt[1]! - xt[0]! : 1
  const xs = (v: number) => left + (v / hi) * pw
  const grid = xt.map((v) => `<line x1="${num(xs(v))}" x2="${num(xs(v))}" y1="${top}" y2="${top + ph}" stroke="#e6e6e6"/><text x="${num(xs(v))}" y="${top + ph + 18}" font-size="11" text-anchor="middle" fill="#444">${formatTick(v, xsp)}</text>`).join('')
  const labels = o.categories.map((c, i) => `<text x="${left - 6}" y="${num(top + i * rowH + rowH / 2 + 3.5)}" font-size="${rowH < 12 ? 9.5 : 11}" text-anchor="end" fill="#333">${esc(c)}</text>`).join('')
  const bars = o.series
    .map(
      (s, k) =>
        `<g class="series" data-label="${esc(s.label)}">` +
        s.values
          .map((v, i) => (v === null || !Number.isFinite(v) ? '' : `<rect x="${left}" y="${num(top + i * rowH + 2.5 + k * barH)}" width="${num(Math.max(0.5, xs(v) - left))}" height="${barH - 1}" fill="${s.color}"><title>${esc(`${s.label}, ${o.categories[i]}: ${v.toFixed(3)}`)}</title></rect>`))
          .join('') +
        '</g>',
    )
    .join('')
  return (
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}" ${FONT}>` +
    `<rect width="${W}" height="${H}" fill="#fff"/>` +
    `<text x="14" y="22" font-size="15" font-weight="600" fill="#111">${esc(o.title)}</text>${lg.svg}${grid}${bars}${labels}` +
    `<rect x="${left}" y="${top}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>` +
    `<text x="${left + pw / 2}" y="${H - 8}" font-size="12" text-anchor="middle" fill="#222">${esc(o.xLabel)}</text></svg>`
  )
}
