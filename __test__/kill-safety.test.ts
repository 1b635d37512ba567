/**
 * Kill safety of training: `spikeir distill` killed with SIGKILL at random
 * moments (many of them inside a checkpoint write) always leaves a checkpoint
 * that loads and resumes, loses at most the steps since it, and keeps a log
 * with each step once; SIGINT and SIGTERM stop after the current step with a
 * checkpoint there.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { loadCheckpoint, loadModel, readCheckpointInfo, saveCheckpoint, SpikerIR } from '../index'
import { lcg } from './helpers'

// What this file tests (signals, checkpoint files, resume) does not depend on
// the device, and 40-odd training processes starting up a CPU Vulkan driver
// would only slow the lavapipe run down: every child runs on the native backend.
process.env['SPIKEIR_DEVICE'] = 'cpu'

const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')
const NAME = 'student'
const CHECKPOINT_EVERY = 3
const KILLS = 20

/** A tiny student on small built-in dead-leaves patches, no teacher, no validation: steps of a few tens of ms. */
function writeRecipe(dir: string): string {
  const file = path.join(dir, 'recipe.json')
  const recipe = {
    model: { kind: 'spikerir', options: { width: 4, timeSteps: 2 } },
    data: { kind: 'deadLeaves', count: 8, size: 32, seed: 1 },
    patch: 16,
    batch: 2,
    warmup: 2,
    lr: 2e-3,
    val: null,
    name: NAME,
  }
  fs.writeFileSync(file, JSON.stringify(recipe))
  return file
}

function distillArgs(recipe: string, out: string, steps: number, checkpointEvery: number, resume: boolean): string[] {
  const args = [main, 'distill', '--config', recipe, '--no-hints', '--out', out, '--steps', String(steps), '--checkpoint-every', String(checkpointEvery), '--seed', '3', '--no-report']
  return resume ? [...args, '--resume', path.join(out, `${NAME}.json`)] : args
}

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stderr: string
}

function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; exit: Promise<Exit> } {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const exit = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })))
  return { child, exit }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Steps of the JSONL log; throws on a line that does not parse (a torn line). */
function logSteps(out: string): number[] {
  const file = path.join(out, `${NAME}.log.jsonl`)
  if (!fs.existsSync(file)) return []
  const text = fs.readFileSync(file, 'utf8')
  if (text !== '' && !text.endsWith('\n')) throw new Error(`torn last line in ${file}: ${JSON.stringify(text.slice(text.lastIndexOf('\n') + 1))}`)
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { step: number }).step)
}

/** Whole lines in the log so far: what polling reads while the writer may be mid-append. */
function loggedLines(out: string): number {
  const file = path.join(out, `${NAME}.log.jsonl`)
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').length - 1 : 0
}

function logLosses(out: string): number[] {
  return fs
    .readFileSync(path.join(out, `${NAME}.log.jsonl`), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { loss: number }).loss)
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

async function waitFor(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/**
 * What a kill interrupted, from the files it left: a temporary file of the
 * killed process, step files newer than the sidecar that it wrote (the
 * sidecar not yet moved on), or older step files beside a sidecar it wrote
 * (not yet cleaned up); else whether it had trained a step at all.
 */
function whereKilled(out: string, pid: number, since: number, sidecarStep: number | null, logged: number): { where: string; inCheckpointWrite: boolean } {
  const files = fs.readdirSync(out)
  const tmp = files.find((f) => f.startsWith(NAME) && f.endsWith(`.tmp-${pid}`))
  if (tmp?.includes('.log.')) return { where: 'inside the log rewrite of a resume', inCheckpointWrite: false }
  if (tmp) return { where: `inside the write of ${tmp.replace(/\.tmp-\d+$/, '').replace(/step\d+/, 'stepN')}`, inCheckpointWrite: true }
  const stepOf = (f: string) => Number(/-step(\d+)\./.exec(f)?.[1] ?? NaN)
  const fresh = (f: string) => fs.statSync(path.join(out, f)).mtimeMs >= since
  const stepFiles = files.filter((f) => f.startsWith(`${NAME}-step`) && f.endsWith('.safetensors'))
  if (stepFiles.some((f) => fresh(f) && (sidecarStep === null || stepOf(f) > sidecarStep))) return { where: 'between the files, before the sidecar', inCheckpointWrite: true }
  if (sidecarStep !== null && fresh(`${NAME}.json`) && stepFiles.some((f) => stepOf(f) < sidecarStep)) {
    return { where: 'after the sidecar, before removing the previous files', inCheckpointWrite: true }
  }
  const log = `${NAME}.log.jsonl`
  const trained = files.includes(log) && fresh(log) && logged > (sidecarStep ?? 0)
  return { where: trained ? 'between checkpoint writes' : 'before its first step', inCheckpointWrite: false }
}

test.serial(`SIGKILL at ${KILLS} random moments never costs more than the steps since the last checkpoint`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-kill-'))
  const recipe = writeRecipe(dir)
  const steps = 300
  // The reference: the same run, never interrupted.
  const reference = spawnSync(process.execPath, distillArgs(recipe, path.join(dir, 'reference'), steps, CHECKPOINT_EVERY, false), { encoding: 'utf8' })
  t.is(reference.status, 0, reference.stderr)

  const out = path.join(dir, 'killed')
  const log = path.join(out, `${NAME}.log.jsonl`)
  const random = lcg(2024, 3 * KILLS).map((u) => (u + 1) / 2) // seeded, in [0, 1)
  // Each stage of a checkpoint write (model, training state, sidecar) is held
  // open this long, so that a good share of the kills land inside one.
  const env = { SPIKEIR_TEST_CHECKPOINT_PAUSE_MS: '15' }
  const figures = { kills: 0, duringWrite: 0, resumes: 0, resumesThatAdvanced: 0, maxLost: 0, where: new Map<string, number>() }
  let lastCheckpoint: number | null = null
  for (let i = 0; i < KILLS; i++) {
    const [u1, u2, u3] = [random[3 * i]!, random[3 * i + 1]!, random[3 * i + 2]!]
    const resume = lastCheckpoint !== null
    const since = Date.now()
    const { child, exit } = start(distillArgs(recipe, out, steps, CHECKPOINT_EVERY, resume), env)
    if (u1 < 0.15) {
      // Some kills land in start-up: loading the checkpoint, rewriting the log.
      await sleep(u2 * 800)
    } else {
      // The rest once this run has logged a random step up to two checkpoints
      // on, plus a random part of a step and a checkpoint write.
      const target = (lastCheckpoint ?? 0) + 1 + Math.floor(u2 * 2 * CHECKPOINT_EVERY)
      const trained = () => fs.existsSync(log) && fs.statSync(log).mtimeMs >= since && loggedLines(out) >= target
      await waitFor(() => trained() || child.exitCode !== null, `step ${target}`)
      await sleep(u3 * 150)
    }
    child.kill('SIGKILL')
    const e = await exit
    if (e.signal !== 'SIGKILL') {
      t.fail(`run ${i} ended before its kill (exit ${e.code}): ${e.stderr}`)
      break
    }
    figures.kills++
    if (resume) figures.resumes++
    const sidecar = path.join(out, `${NAME}.json`)
    const checkpoint = fs.existsSync(sidecar) ? readCheckpointInfo(sidecar).info.step : null
    // The log: every line parses, each step once, in order, from 0.
    const logged = logSteps(out)
    t.deepEqual(logged, range(logged.length), `kill ${i}: the log holds steps 0…${logged.length - 1} once each`)
    const { where, inCheckpointWrite } = whereKilled(out, child.pid!, since, checkpoint, logged.length)
    if (inCheckpointWrite) figures.duringWrite++
    figures.where.set(where, (figures.where.get(where) ?? 0) + 1)
    if (checkpoint === null) {
      // Killed before the first checkpoint: nothing to resume, the next run starts over.
      t.is(lastCheckpoint, null, `kill ${i}: the checkpoint disappeared`)
      continue
    }
    // The checkpoint never moves back, loads (weights and training state match
    // their hashes), and at most the steps since it were lost.
    t.true(lastCheckpoint === null || checkpoint >= lastCheckpoint, `kill ${i}: checkpoint ${checkpoint} after ${lastCheckpoint}`)
    if (lastCheckpoint !== null && checkpoint > lastCheckpoint) figures.resumesThatAdvanced++
    const loaded = loadModel(sidecar)
    t.is(loaded.step, checkpoint)
    loaded.model.dispose()
    const lost = logged.length - checkpoint
    t.true(lost >= 0 && lost <= CHECKPOINT_EVERY, `kill ${i}: ${lost} steps lost (log at ${logged.length}, checkpoint at ${checkpoint}, ${where})`)
    figures.maxLost = Math.max(figures.maxLost, lost)
    lastCheckpoint = checkpoint
  }
  t.is(figures.kills, KILLS)

  // The last resume runs to the end: every step once, the same losses as the
  // uninterrupted run, and no temporary files left behind.
  const e = await start(distillArgs(recipe, out, steps, CHECKPOINT_EVERY, true)).exit
  t.is(e.code, 0, e.stderr)
  t.is(readCheckpointInfo(path.join(out, `${NAME}.json`)).info.step, steps)
  t.deepEqual(logSteps(out), range(steps))
  t.deepEqual(logLosses(out), logLosses(path.join(dir, 'reference')))
  t.deepEqual(
    fs.readdirSync(out).filter((f) => f.includes('.tmp-')),
    [],
  )
  t.log(
    `kills: ${figures.kills}, during a checkpoint write: ${figures.duringWrite}; resumes: ${figures.resumes + 1} ` +
      `(${figures.resumes} killed again, ${figures.resumesThatAdvanced} of them after writing a later checkpoint; the last ran to step ${steps}); ` +
      `most steps lost: ${figures.maxLost} (checkpoint every ${CHECKPOINT_EVERY}); losses equal to the uninterrupted run's at all ${steps} steps`,
  )
  t.log(`where the kills landed: ${[...figures.where].map(([k, v]) => `${v} ${k}`).join('; ')}`)
  fs.rmSync(dir, { recursive: true })
})

test.serial('SIGINT and SIGTERM finish the step, write a checkpoint there and exit 0; the run resumes from it', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-sigint-'))
  const recipe = writeRecipe(dir)
  const out = path.join(dir, 'out')
  const steps = 400
  const stopAfter = async (signal: NodeJS.Signals, resume: boolean, atLeast: number) => {
    const { child, exit } = start(distillArgs(recipe, out, steps, 0, resume))
    await waitFor(() => loggedLines(out) >= atLeast || child.exitCode !== null, `step ${atLeast}`)
    child.kill(signal)
    const e = await exit
    t.is(e.code, 0, `${signal}: ${e.stderr}`)
    const m = /interrupted: stopped after step (\d+) of 400; checkpoint (\S+);/.exec(e.stderr)
    t.truthy(m, e.stderr)
    const stopped = Number(m![1])
    t.is(m![2], path.join(out, `${NAME}.json`))
    // The checkpoint is at the step it stopped on, and the log ends there.
    t.is(readCheckpointInfo(m![2]!).info.step, stopped)
    t.deepEqual(logSteps(out), range(stopped))
    t.true(stopped >= atLeast && stopped < steps)
    return stopped
  }
  const first = await stopAfter('SIGINT', false, 3)
  const second = await stopAfter('SIGTERM', true, first + 3)
  t.true(second > first)
  t.log(`SIGINT stopped at step ${first} (exit 0, checkpoint at ${first}); resumed, SIGTERM stopped at step ${second}`)
  fs.rmSync(dir, { recursive: true })
})

test.serial('a second SIGINT ends the process at once, inside the checkpoint write, and the previous checkpoint still loads', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-sigint2-'))
  const recipe = writeRecipe(dir)
  const out = path.join(dir, 'out')
  // A good checkpoint at step 2 first.
  t.is(spawnSync(process.execPath, distillArgs(recipe, out, 2, 0, false)).status, 0)
  // Each stage of the stop's checkpoint write takes a second, so the second SIGINT lands inside it.
  const { child, exit } = start(distillArgs(recipe, out, 400, 0, true), { SPIKEIR_TEST_CHECKPOINT_PAUSE_MS: '1000' })
  await waitFor(() => loggedLines(out) >= 4 || child.exitCode !== null, 'step 4')
  child.kill('SIGINT')
  await sleep(300)
  child.kill('SIGINT')
  const e = await exit
  t.is(e.signal, 'SIGINT', e.stderr)
  t.is(readCheckpointInfo(path.join(out, `${NAME}.json`)).info.step, 2)
  const m = loadModel(path.join(out, `${NAME}.json`))
  t.is(m.step, 2)
  m.model.dispose()
  fs.rmSync(dir, { recursive: true })
})

test('weights and training state of different writes are refused as a pair, naming the file', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-pair-'))
  const model = new SpikerIR({ width: 4, timeSteps: 2, seed: 1 })
  const state = (v: number) => [{ name: 'optim.m', shape: [2], data: new Float32Array([v, v]) }]
  const info = (step: number) => ({ step, seed: 1, config: { model: { kind: 'spikerir', options: { width: 4, timeSteps: 2, seed: 1 } } }, metrics: {} })
  const sidecar = saveCheckpoint(dir, 'a', model, info(4), state(1))
  // Another write's training state under this checkpoint's name.
  const other = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-pair-other-'))
  saveCheckpoint(other, 'a', model, info(4), state(2))
  fs.copyFileSync(path.join(other, 'a-step4.train.safetensors'), path.join(dir, 'a-step4.train.safetensors'))
  const err = t.throws(() => loadCheckpoint(sidecar, model))
  t.regex(err!.message, /a-step4\.train\.safetensors' is not the one written with it/)
  // A truncated model file is refused the same way, before its contents are read.
  saveCheckpoint(dir, 'b', model, info(6), state(1))
  const weights = path.join(dir, 'b-step6.safetensors')
  fs.truncateSync(weights, fs.statSync(weights).size - 4)
  t.regex(t.throws(() => loadCheckpoint(path.join(dir, 'b.json'), model))!.message, /b-step6\.safetensors' is not the one written with it/)
  model.dispose()
  fs.rmSync(dir, { recursive: true })
  fs.rmSync(other, { recursive: true })
})
