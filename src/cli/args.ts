/**
 * A small, strict flag parser for the CLI: every command declares its flags,
 * and anything undeclared is an error that names it.
 *
 * @module
 */

/** How a command's flag is read. */
export interface FlagSpec {
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
    if (s.type === 'boolean') {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`)
      flags[name] = true
      continue
    }
    const raw = eq !== -1 ? arg.slice(eq + 1) : argv[++i]
    if (raw === undefined) throw new UsageError(`--${name} needs a value`)
    if (s.type === 'number') {
      const v = Number(raw)
      if (raw.trim() === '' || !Number.isFinite(v)) {
        throw new UsageError(`--${name} must be a number, got '${raw}'`)
      }
      flags[name] = v
    } else {
      flags[name] = raw
    }
  }
  return { flags, positional }
}

/** Formats a command's flags for `--help`. */
export function describeFlags(spec: Record<string, FlagSpec>): string {
  return Object.entries(spec)
    .map(([k, s]) => `  --${k}${s.type === 'boolean' ? '' : ` <${s.type}>`}`.padEnd(28) + s.description)
    .join('\n')
}
