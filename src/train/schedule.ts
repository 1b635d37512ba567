/**
 * Learning-rate schedules with linear warm-up. Each is a pure function of
 * the step (counted from 0), so resuming at step k gives the same rate.
 *
 * @module
 */

/** A schedule: learning rate at `step`. */
export type Schedule = (step: number) => number

/** Linear warm-up from 0 over `warmup` steps, then `after(step − warmup)`. */
function withWarmup(baseLr: number, warmup: number, after: (t: number) => number): Schedule {
  return (step) => (step < warmup ? (baseLr * (step + 1)) / warmup : after(step - warmup))
}

/**
 * Cosine decay from `baseLr` to `minLr` over `totalSteps` (warm-up included).
 *
 * @example
 * ```ts
 * const lr = cosineSchedule(1e-3, 1000, { warmup: 50, minLr: 1e-5 })
 * ;[lr(0), lr(50), lr(999)] // [2e-5, 1e-3, ≈1e-5]
 * ```
 */
export function cosineSchedule(baseLr: number, totalSteps: number, options: { warmup?: number; minLr?: number } = {}): Schedule {
  const warmup = options.warmup ?? 0
  const minLr = options.minLr ?? 0
  const span = Math.max(1, totalSteps - warmup)
  return withWarmup(baseLr, warmup, (t) => minLr + 0.5 * (baseLr - minLr) * (1 + Math.cos((Math.PI * Math.min(t, span)) / span)))
}

/** Multiplies the rate by `gamma` every `stepSize` steps after warm-up. */
export function stepSchedule(baseLr: number, stepSize: number, options: { gamma?: number; warmup?: number } = {}): Schedule {
  const gamma = options.gamma ?? 0.1
  return withWarmup(baseLr, options.warmup ?? 0, (t) => baseLr * gamma ** Math.floor(t / stepSize))
}

/** A constant rate (with optional warm-up). */
export function constantSchedule(baseLr: number, options: { warmup?: number } = {}): Schedule {
  return withWarmup(baseLr, options.warmup ?? 0, () => baseLr)
}
