#!/usr/bin/env node
/**
 * The `spikeir` command line. One file per command; this file only dispatches.
 *
 * @module
 */
import { describeFlags, parseArgs, UsageError, type FlagSpec, type Parsed } from './args'
import * as demo from './demo'
import * as distill from './distill'
import * as energy from './energy'
import * as evaluate from './eval'
import * as exportCommand from './export'
import * as info from './info'
import * as report from './report'
import * as restoreCommand from './restore'
import * as trainTeacher from './train-teacher'

interface Command {
  summary: string
  flags: Record<string, FlagSpec>
  run(args: Parsed): void | Promise<void>
}

// `denoise` is the earlier name of `restore`, kept as an alias.
const denoise: Command = { ...restoreCommand, summary: 'alias of restore (restores one image: spikeir denoise [--model CKPT] IN OUT)' }
const commands: Record<string, Command> = { demo, distill, 'train-teacher': trainTeacher, eval: evaluate, restore: restoreCommand, denoise, energy, export: exportCommand, report, info }

function usage(): string {
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(14)}${c.summary}`)
  return `usage: spikeir <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nspikeir <command> --help for a command's options`
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage())
    return 0
  }
  const command = commands[name]
  if (!command) {
    console.error(`spikeir: unknown command '${name}'\n\n${usage()}`)
    return 2
  }
  if (rest.includes('--help')) {
    console.log(`spikeir ${name}: ${command.summary}\n\noptions:\n${describeFlags(command.flags)}`)
    return 0
  }
  try {
    await command.run(parseArgs(rest, command.flags))
    return 0
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e)
    console.error(`spikeir ${name}: ${message}`)
    return e instanceof UsageError ? 2 : 1
  }
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code
})
