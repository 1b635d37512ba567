/**
 * Progress of long commands on stderr: a bar redrawn in place (step,
 * steps/s, ETA, loss, latest validation PSNR) when stderr is a terminal, plain
 * periodic lines when it is a file or a pipe, nothing with `--quiet` (errors
 * still go out: the CLI prints them itself). Stdout stays for results, so
 * `--json` remains exactly one object.
 *
 * @module
 */

/** Where progress goes (stderr, or a stand-in in tests). */
export interface ProgressStream {
  write(text: string): unknown
  isTTY?: boolean
  columns?: number
}

/** `bar`: redrawn in place; `lines`: periodic lines; `quiet`: silent. */
export type ProgressMode = 'bar' | 'lines' | 'quiet'

/** The mode for a stream: quiet when asked, a bar on a terminal, else lines. */
export function progressMode(quiet: boolean, stream: ProgressStream = process.stderr): ProgressMode {
  if (quiet) return 'quiet'
  return stream.isTTY ? 'bar' : 'lines'
}

/** `42 s`, `3 min 05 s`, `2 h 07 min`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?'
  const s = Math.round(seconds)
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`
}

/** A rate with two significant digits (`0.43`, `2.3`, `18`). */
function formatRate(r: number): string {
  if (!Number.isFinite(r) || r <= 0) return '?'
  return r >= 10 ? r.toFixed(0) : r >= 1 ? r.toFixed(1) : r.toPrecision(2)
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Shown first (`teacher`, `student (H-KD)`). */
  label: string
  /** Units of work in all (steps, images). */
  total: number
  mode: ProgressMode
  stream?: ProgressStream
  /** Name of a unit, plural (`steps`, `images`). */
  unit?: string
  /** Units already done before this process started (a resumed run); the rate counts only new ones. */
  start?: number
  /** In `lines` mode, print every N units (default: about 20 lines a run). */
  every?: number
  /** What the PSNR field is called (`val PSNR` for training, `PSNR` for a running mean). */
  psnrLabel?: string
  /** Clock in seconds (tests use a fake one). */
  now?: () => number
}

/** The latest values a line shows. */
export interface ProgressFields {
  loss?: number
  /** Latest validation (or running mean) PSNR in dB. */
  psnr?: number
}

/** One task's progress: call {@link update} after each unit, {@link finish} at the end. */
export class Progress {
  readonly mode: ProgressMode
  private readonly o: Required<Omit<ProgressOptions, 'start' | 'every'>> & { start: number | null; every: number }
  private readonly t0: number
  private done = 0
  private fields: ProgressFields = {}
  private lastDraw = -Infinity
  private drawn = false
  private finished = false

  constructor(options: ProgressOptions) {
    this.mode = options.mode
    this.o = {
      label: options.label,
      total: Math.max(1, options.total),
      mode: options.mode,
      stream: options.stream ?? process.stderr,
      unit: options.unit ?? 'steps',
      psnrLabel: options.psnrLabel ?? 'PSNR',
      start: options.start ?? null,
      every: options.every ?? Math.max(1, Math.round(options.total / 20)),
      now: options.now ?? (() => performance.now() / 1000),
    }
    this.t0 = this.o.now()
  }

  /** `done` units are complete; `fields` update the values shown. */
  update(done: number, fields: ProgressFields = {}): void {
    // A resumed run's first update tells where it started.
    if (this.o.start === null) this.o.start = Math.max(0, done - 1)
    this.done = done
    this.fields = { ...this.fields, ...fields }
    if (this.mode === 'lines') {
      if (done === this.o.start + 1 || done % this.o.every === 0 || done === this.o.total) this.o.stream.write(this.line() + '\n')
    } else if (this.mode === 'bar') {
      const now = this.o.now()
      if (now - this.lastDraw >= 0.1 || done === this.o.total) {
        this.lastDraw = now
        this.draw()
      }
    }
  }

  /** Records a validation result: shown on the bar, and as its own line. */
  validation(step: number, metrics: Record<string, number>): void {
    const p = metrics['psnr']
    if (p !== undefined) this.fields.psnr = p
    const parts = Object.entries(metrics).map(([k, v]) => `${k === 'psnr' ? 'PSNR' : k === 'ssim' ? 'SSIM' : k} ${k === 'psnr' ? `${v.toFixed(2)} dB` : v.toFixed(4)}`)
    this.log(`${this.o.label}: validation at step ${step}: ${parts.join(', ')}`)
  }

  /** Prints a message on its own line, keeping the bar below it. */
  log(message: string): void {
    if (this.mode === 'quiet') return
    if (this.mode === 'bar' && this.drawn) {
      this.o.stream.write(`\r\x1b[2K${message}\n`)
      if (!this.finished) this.draw()
    } else this.o.stream.write(message + '\n')
  }

  /** Ends the bar's line (a bar stays on screen with its final values). */
  finish(): void {
    if (this.finished) return
    this.finished = true
    if (this.mode === 'bar' && this.drawn) this.o.stream.write('\n')
  }

  /** Units per second since this process started on the task. */
  rate(): number {
    const elapsed = this.o.now() - this.t0
    return elapsed > 0 ? (this.done - (this.o.start ?? 0)) / elapsed : NaN
  }

  /** The status text (without the bar): `3/30  2.3 steps/s  ETA 12 s  loss 0.0412  PSNR 27.12 dB`. */
  status(): string {
    const r = this.rate()
    const left = this.o.total - this.done
    const parts = [`${this.done}/${this.o.total}`, `${formatRate(r)} ${this.o.unit}/s`, left > 0 ? `ETA ${formatDuration(left / r)}` : `took ${formatDuration(this.o.now() - this.t0)}`]
    if (this.fields.loss !== undefined) parts.push(`loss ${this.fields.loss.toFixed(4)}`)
    if (this.fields.psnr !== undefined) parts.push(`${this.o.psnrLabel} ${this.fields.psnr.toFixed(2)} dB`)
    return parts.join('  ')
  }

  /** One plain line (the `lines` mode). */
  line(): string {
    return `${this.o.label}: ${this.o.unit === 'steps' ? 'step ' : ''}${this.status()}`
  }

  private draw(): void {
    const text = this.status()
    const cols = this.o.stream.columns || 80
    const width = Math.max(10, Math.min(30, cols - this.o.label.length - text.length - 10))
    const filled = Math.round((this.done / this.o.total) * width)
    const pct = `${Math.floor((100 * this.done) / this.o.total)}`.padStart(3)
    const line = `${this.o.label} ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${pct}%  ${text}`
    this.o.stream.write(`\r\x1b[2K${line.slice(0, Math.max(20, cols - 1))}`)
    this.drawn = true
  }
}

/** What a command prints besides its result: notes and progress, all governed by `--quiet`. */
export class Output {
  readonly mode: ProgressMode
  private current: Progress | null = null

  constructor(
    readonly quiet: boolean,
    private readonly stream: ProgressStream = process.stderr,
  ) {
    this.mode = progressMode(quiet, stream)
  }

  /** Reads `--quiet` from a command's flags. */
  static from(flags: Record<string, unknown>, stream: ProgressStream = process.stderr): Output {
    return new Output(flags['quiet'] === true, stream)
  }

  /** A note on stderr (not shown with `--quiet`), below any bar in progress. */
  note(message: string): void {
    if (this.mode === 'quiet') return
    if (this.current) this.current.log(message)
    else this.stream.write(message + '\n')
  }

  /** Starts a task's progress (ending the one before). */
  progress(label: string, total: number, options: { unit?: string; every?: number; psnrLabel?: string } = {}): Progress {
    this.current?.finish()
    this.current = new Progress({ label, total, mode: this.mode, stream: this.stream, ...options })
    return this.current
  }

  /** Ends the task in progress. */
  end(): void {
    this.current?.finish()
    this.current = null
  }
}

/** `onStep`/`onValidation` callbacks of a training run that drive one progress task. */
export function trainingProgress(
  out: Output,
  label: string,
  steps: number,
): { onStep: (r: { step: number; loss: number }) => void; onValidation: (step: number, metrics: Record<string, number>) => void } {
  const p = out.progress(label, steps, { psnrLabel: 'val PSNR' })
  return { onStep: (r) => p.update(r.step + 1, { loss: r.loss }), onValidation: (step, m) => p.validation(step, m) }
}
