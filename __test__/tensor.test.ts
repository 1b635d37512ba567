import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import test from 'ava'

import { Tensor, info, memory, scope } from '../index'

/** Row-major reference matmul in f64, independent of the engine. */
function matmulRef(a: Float32Array, b: Float32Array, m: number, k: number, n: number): number[] {
  const c: number[] = []
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0
      for (let p = 0; p < k; p++) s += a[i * k + p]! * b[p * n + j]!
      c.push(s)
    }
  }
  return c
}

function closeTo(t: { true(v: boolean, m?: string): void }, got: Float32Array, want: number[], tol: number): void {
  t.true(got.length === want.length, `length ${got.length} vs ${want.length}`)
  want.forEach((w, i) => t.true(Math.abs(got[i]! - w) <= tol * (1 + Math.abs(w)), `element ${i}: ${got[i]} vs ${w}`))
}

test('info names the adapter and its limits', (t) => {
  const d = info()
  t.true(d.adapterName.length > 0)
  t.true(['vulkan', 'metal', 'dx12', 'gl', 'native'].includes(d.backend), d.backend)
  t.true(d.maxStorageBindingBytes > 0)
  t.is(d.maxWorkgroupSize.length, 3)
})

test('values survive a round trip and keep their shape', (t) => {
  const data = Float32Array.from({ length: 2 * 3 * 5 }, (_, i) => Math.sin(i) * 100)
  const x = Tensor.fromData(data, [2, 3, 5])
  t.deepEqual(x.shape, [2, 3, 5])
  t.is(x.size, 30)
  t.deepEqual(x.toFloat32Array(), data)
  t.deepEqual(Tensor.fromData([1, 2, 3], [3]).toFloat32Array(), new Float32Array([1, 2, 3]))
})

test('zeros, ones and full fill on the device', (t) => {
  t.deepEqual(Tensor.zeros([2, 2]).toFloat32Array(), new Float32Array(4))
  t.deepEqual(Tensor.ones([3]).toFloat32Array(), new Float32Array([1, 1, 1]))
  t.deepEqual(Tensor.full([2], -2.5).toFloat32Array(), new Float32Array([-2.5, -2.5]))
})

test('seeded rand and randn repeat exactly and differ across seeds', (t) => {
  const a = Tensor.randn([64], { seed: 7 }).toFloat32Array()
  t.deepEqual(Tensor.randn([64], { seed: 7 }).toFloat32Array(), a)
  t.notDeepEqual(Tensor.randn([64], { seed: 8 }).toFloat32Array(), a)
  const u = Tensor.rand([500], { seed: 1, low: -2, high: -1 }).toFloat32Array()
  t.true(u.every((v) => v >= -2 && v < -1))
})

test('elementwise ops broadcast like NumPy', (t) => {
  // [2, 3] + [3]: each row gets the vector added.
  const a = Tensor.fromData([1, 2, 3, 4, 5, 6], [2, 3])
  const b = Tensor.fromData([10, 20, 30], [3])
  t.deepEqual(a.add(b).toFloat32Array(), new Float32Array([11, 22, 33, 14, 25, 36]))
  // [2, 1] · [1, 3] → [2, 3] outer product.
  const col = Tensor.fromData([2, 3], [2, 1])
  const row = Tensor.fromData([1, 10, 100], [1, 3])
  const outer = col.mul(row)
  t.deepEqual(outer.shape, [2, 3])
  t.deepEqual(outer.toFloat32Array(), new Float32Array([2, 20, 200, 3, 30, 300]))
  t.deepEqual(a.sub(b).toFloat32Array(), new Float32Array([-9, -18, -27, -6, -15, -24]))
  t.deepEqual(b.div(Tensor.fromData([10], [1])).toFloat32Array(), new Float32Array([1, 2, 3]))
})

test('scalar ops', (t) => {
  const x = Tensor.fromData([1, 4, 9], [3])
  t.deepEqual(x.add(1).toFloat32Array(), new Float32Array([2, 5, 10]))
  t.deepEqual(x.mul(-2).toFloat32Array(), new Float32Array([-2, -8, -18]))
  t.deepEqual(x.sub(1).toFloat32Array(), new Float32Array([0, 3, 8]))
  t.deepEqual(x.rsub(1).toFloat32Array(), new Float32Array([0, -3, -8]))
  t.deepEqual(x.div(2).toFloat32Array(), new Float32Array([0.5, 2, 4.5]))
  closeTo(t, x.sqrt().toFloat32Array(), [1, 2, 3], 1e-6)
  closeTo(t, x.pow(2).toFloat32Array(), [1, 16, 81], 1e-6)
  closeTo(t, Tensor.fromData([-2], [1]).pow(3).toFloat32Array(), [-8], 1e-6)
  closeTo(t, x.log().exp().toFloat32Array(), [1, 4, 9], 1e-5)
  t.deepEqual(x.neg().abs().toFloat32Array(), new Float32Array([1, 4, 9]))
})

test('matmul matches a reference, including shapes off the tile grid', (t) => {
  for (const [m, k, n] of [
    [1, 1, 1],
    [3, 5, 7],
    [65, 17, 130],
  ] as const) {
    const a = Tensor.randn([m, k], { seed: m })
    const b = Tensor.randn([k, n], { seed: n })
    const want = matmulRef(a.toFloat32Array(), b.toFloat32Array(), m, k, n)
    const c = a.matmul(b)
    t.deepEqual(c.shape, [m, n])
    closeTo(t, c.toFloat32Array(), want, 1e-4)
  }
  // Hand-checked: [[1, 2], [3, 4]]² = [[7, 10], [15, 22]].
  const s = Tensor.fromData([1, 2, 3, 4], [2, 2])
  t.deepEqual(s.matmul(s).toFloat32Array(), new Float32Array([7, 10, 15, 22]))
})

test('use after dispose throws a catchable error naming the op', (t) => {
  const x = Tensor.ones([4])
  x.dispose()
  t.true(x.isDisposed)
  t.throws(() => x.toFloat32Array(), { message: /disposed/ })
  t.throws(() => x.add(1), { message: /add.*disposed|disposed/ })
  t.throws(() => Tensor.ones([4]).add(x), { message: /disposed/ })
  t.notThrows(() => x.dispose())
})

test('shape mismatches throw errors naming both shapes', (t) => {
  const a = Tensor.zeros([2, 3])
  const b = Tensor.zeros([4])
  t.throws(() => a.add(b), { message: /add.*\[2, 3\].*\[4\]/ })
  t.throws(() => a.matmul(Tensor.zeros([4, 2])), { message: /matmul.*\[2, 3\].*\[4, 2\]/ })
  t.throws(() => Tensor.fromData([1, 2, 3], [2, 2]), { message: /\[2, 2\].*4.*3/ })
  t.throws(() => a.reshape([5]), { message: /reshape/ })
})

test('bad arguments from JS are rejected with clear messages', (t) => {
  t.throws(() => Tensor.zeros([2, -1]), { instanceOf: TypeError, message: /non-negative integers/ })
  t.throws(() => Tensor.zeros([1.5]), { instanceOf: TypeError })
  t.throws(() => Tensor.full([2], Number.NaN), { message: /finite/ })
  t.throws(() => Tensor.rand([2], { low: 1, high: 0 }), { message: /low < high/ })
  t.throws(() => Tensor.zeros([1, 1, 1, 1, 1, 1]), { message: /at most 5/ })
  // @ts-expect-error: a string is not a tensor
  t.throws(() => Tensor.ones([2]).add('x'), { instanceOf: TypeError })
})

test('a tensor over the binding limit is refused with the limit in the message', (t) => {
  const limit = Math.min(info().maxStorageBindingBytes, info().maxBufferBytes)
  // Two dimensions, so each stays a valid u32 even when the limit is the host's memory.
  const err = t.throws(() => Tensor.zeros([2, Math.floor(limit / 8) + 1]))
  t.regex(err!.message, new RegExp(String(limit)))
})

test('scope frees what it created except what it returns', (t) => {
  const before = memory().buffers
  const kept = scope(() => {
    const a = Tensor.ones([256])
    const b = a.add(1)
    return { result: b.mul(2) }
  })
  t.is(memory().buffers, before + 1)
  t.deepEqual(Array.from(kept.result.toFloat32Array().slice(0, 2)), [4, 4])
  kept.result.dispose()
  t.is(memory().buffers, before)
  // A throwing scope frees everything it created, then rethrows.
  t.throws(() =>
    scope(() => {
      Tensor.ones([8])
      throw new Error('boom')
    }),
  )
  t.is(memory().buffers, before)
})

// A process that ends with kernels still queued used to race the driver: lavapipe compiles a
// kernel with LLVM as it runs a submission, and the process's static destructors pulled LLVM away
// underneath (free(): invalid pointer, or a segfault, in about one exit in 15). The children here
// queue a student's forward pass and exit without reading anything back; every one must exit 0.
const gpu = info().backend !== 'native'
;(gpu ? test : test.skip)(
  `a process that exits with kernels still queued exits cleanly, 60 times${gpu ? '' : ' (skipped: the device is the native CPU backend)'}`,
  (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spikeir-exit-'))
    try {
      const child = path.join(dir, 'child.js')
      fs.writeFileSync(
        child,
        `const { SpikerIR, Tensor, noGrad } = require(${JSON.stringify(path.join(__dirname, '..', 'index.js'))})\n` +
          `const student = new SpikerIR({ width: 8, timeSteps: 2 })\n` +
          `noGrad(() => student.forward(Tensor.rand([1, 1, 32, 32], { seed: 1 })))\n`,
      )
      const failures: string[] = []
      for (let i = 0; i < 60; i++) {
        const r = spawnSync(process.execPath, [child], { encoding: 'utf8', timeout: 60_000 })
        if (r.status !== 0) failures.push(`run ${i}: status ${r.status}, signal ${r.signal}: ${r.stderr.trim().split('\n')[0]}`)
      }
      t.deepEqual(failures, [])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  },
)
