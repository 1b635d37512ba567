/**
 * The `@example` blocks of the API docs are programs: each one is taken from
 * its doc comment, given imports of the package's exports it names,
 * type-checked under the project's strict options against the built
 * declarations, and run in an empty folder.
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'
import ts from 'typescript'

const repo = path.join(__dirname, '..', '..')
const entry = path.join(repo, 'dist', 'index')

interface DocExample {
  where: string
  code: string
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? sources(p) : e.name.endsWith('.ts') ? [p] : []
  })
}

/** Every ```ts fence after an `@example` tag in a doc comment of index.ts or src/. */
function docExamples(): DocExample[] {
  const out: DocExample[] = []
  for (const file of [path.join(repo, 'index.ts'), ...sources(path.join(repo, 'src'))]) {
    const text = fs.readFileSync(file, 'utf8')
    for (const c of text.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
      const body = c[0].split('\n').map((l) => l.replace(/^\s*\/?\*+\/? ?/, '')).join('\n')
      const tag = body.indexOf('@example')
      if (tag < 0) continue
      const line = text.slice(0, c.index).split('\n').length
      for (const f of body.slice(tag).matchAll(/```ts\n([\s\S]*?)```/g)) {
        out.push({ where: `${path.relative(repo, file)}:${line}`, code: f[1]! })
      }
    }
  }
  return out
}

/** The names index.ts exports (values and types). */
function exportedNames(): string[] {
  const text = fs.readFileSync(path.join(repo, 'index.ts'), 'utf8')
  return [...text.matchAll(/export (?:type )?\{([^}]*)\}/g)].flatMap((m) =>
    m[1]!
      .split(',')
      .map((s) => s.trim().split(/\s+as\s+/).pop()!)
      .filter((s) => s !== ''),
  )
}

const examples = docExamples()

test('the API docs have examples to check', (t) => {
  t.true(examples.length >= 20, `${examples.length} examples found`)
})

test('every example type-checks under the strict options and runs', (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-docex-'))
  try {
    const names = exportedNames()
    const files = examples.map((ex, i) => {
      const used = names.filter((n) => new RegExp(`\\b${n}\\b`).test(ex.code))
      const file = path.join(tmp, `example${i}.ts`)
      const header = `// ${ex.where}\nimport { ${used.join(', ')} } from ${JSON.stringify(entry)}\n`
      fs.writeFileSync(file, (used.length ? header : `// ${ex.where}\n`) + ex.code + '\nexport {}\n')
      return file
    })
    const config = ts.parseJsonConfigFileContent(JSON.parse(fs.readFileSync(path.join(repo, 'tsconfig.json'), 'utf8')), ts.sys, repo)
    // An example may compute a value only to show it; everything else is as strict as the project.
    const options = { ...config.options, rootDir: tmp, outDir: path.join(tmp, 'out'), noUnusedLocals: false, declaration: false, sourceMap: false }
    const program = ts.createProgram(files, options)
    const diagnostics = ts.getPreEmitDiagnostics(program).concat(program.emit().diagnostics)
    t.deepEqual(
      diagnostics.map((d) => `${d.file ? `${fs.readFileSync(d.file.fileName, 'utf8').split('\n')[0]!.slice(3)}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`),
      [],
    )
    examples.forEach((ex, i) => {
      const cwd = fs.mkdtempSync(path.join(tmp, 'run-'))
      const r = spawnSync(process.execPath, [path.join(tmp, 'out', `example${i}.js`)], { cwd, encoding: 'utf8', timeout: 120_000 })
      t.is(r.status, 0, `${ex.where}:\n${ex.code}\n${r.stderr}`)
    })
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
})
