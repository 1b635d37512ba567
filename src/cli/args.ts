/**
 * A small, strict flag parser for the CLI: every command declares its flags,
 * and anything undeclared is an error that names it. Number flags carry
 * their range in the spec, so every command checks them the same way, here,
 * before any work starts.
 *
 * @module
 */
import * as fs from 'node:fs'
import * as path from 'node:path'

/** The allowed values of a number: bounds (inclusive unless marked) and integrality. */
export interface NumberRule {
  min?: number
  /** `min` itself is not allowed (for `lr > 0`). */
  exclusiveMin?: boolean
  max?: number
  integer?: boolean
}

/** How a command's flag is read. */
export interface FlagSpec extends NumberRule {
  /** `boolean` flags take no value; `string` and `number` flags take one. */
  type: 'boolean' | 'string' | 'number'
  description: string
}

/** Parsed flags and positional arguments. */
export interface Parsed {
  flags: Record<string, string | number | boolean>
  positional: string[]
}

/** Thrown for bad command lines; the CLI prints its message and exits with 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

/** The rule in words: "an integer ≥ 1", "a number > 0 and ≤ 1". */
export function describeRule(rule: NumberRule): string {
  const parts: string[] = []
  if (rule.min !== undefined) parts.push(`${rule.exclusiveMin ? '>' : '≥'} ${rule.min}`)
  if (rule.max !== undefined) parts.push(`≤ ${rule.max}`)
  return `${rule.integer ? 'an integer' : 'a number'}${parts.length ? ' ' + parts.join(' and ') : ''}`
}

/**
 * Checks `value` against `rule`; `label` names it in the error (`--batch`,
 * or `--config FILE: batch`). Returns the value as a number.
 */
export function checkNumber(label: string, value: unknown, rule: NumberRule): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!rule.integer || Number.isSafeInteger(value)) &&
    (rule.min === undefined || (rule.exclusiveMin ? value > rule.min : value >= rule.min)) &&
    (rule.max === undefined || value <= rule.max)
  if (!ok) throw new UsageError(`${label} must be ${describeRule(rule)}, got ${typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? String(value)}`)
  return value as number
}

/** Parses `argv` against `spec` (`--name value`, `--name=value`, `--flag`). */
export function parseArgs(argv: readonly string[], spec: Record<string, FlagSpec>): Parsed {
  const flags: Record<string, string | number | boolean> = {}
  const positional: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (!arg.startsWith('--')) {
      positional.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const name = arg.slice(2, eq === -1 ? undefined : eq)
    const s = spec[name]
    if (!s) {
      const known = Object.keys(spec).map((k) => `--${k}`).join(', ') || 'none'
      throw new UsageError(`unknown option --${name} (known: ${known})`)
    }
    if (name in flags) throw new UsageError(`--${name} is given twice`)
    if (s.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`)
      flags[name] = true
      continue
    }
    const raw = eq !== -1 ? arg.slice(eq + 1) : argv[++i]
    // `--out --steps 3` would otherwise take "--steps" as the folder.
    if (raw === undefined || (eq === -1 && raw.startsWith('--'))) throw new UsageError(`--${name} needs a value`)
    if (s.type === 'number') {
      const v = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(v)) {
        throw new UsageError(`--${name} must be ${describeRule(s)}, got '${raw}'`)
      }
      flags[name] = checkNumber(`--${name}`, v, s)
    } else {
      if (raw === '') throw new UsageError(`--${name} needs a value, got an empty string`)
      flags[name] = raw
    }
  }
  return { flags, positional }
}

/** Formats a command's flags for `--help`. */
export function describeFlags(spec: Record<string, FlagSpec>): string {
  return Object.entries(spec)
    .map(([k, s]) => {
      const range = s.type === 'number' && (s.min !== undefined || s.max !== undefined || s.integer) ? ` (${describeRule(s)})` : ''
      return `  --${k}${s.type === 'boolean' ? '' : ` <${s.type}>`}`.padEnd(27) + ' ' + s.description + range
    })
    .join('\n')
}

/** The nearest existing folder at or above `p` (or the file that blocks it). */
function nearestExisting(p: string): string {
  let q = path.resolve(p)
  while (!fs.existsSync(q) && path.dirname(q) !== q) q = path.dirname(q)
  return q
}

/**
 * Checks, before any work, that `dir` is or can become a writable folder,
 * without creating it — a run that then fails on bad input leaves nothing
 * behind. `label` names the option in the error.
 */
export function checkWritableFolder(dir: string, label: string): void {
  const at = nearestExisting(dir)
  if (!fs.statSync(at).isDirectory()) {
    throw new UsageError(`${label} '${dir}' cannot be created: '${at}' is a file, not a folder`)
  }
  try {
    fs.accessSync(at, fs.constants.W_OK)
  } catch {
    throw new UsageError(`${label} '${dir}' is not writable: no write permission on '${at}'`)
  }
}

/** Checks that a file can be written at `file` (its folder, and not a folder itself). */
export function checkWritableFile(file: string, label: string): void {
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw new UsageError(`${label} '${file}' is a folder, not a file`)
  checkWritableFolder(path.dirname(path.resolve(file)), `${label} '${file}': folder`)
}
