import test from 'ava'

import { Tensor, noGrad, tapeLength, zeroGrad } from '../index'

function values(t: Tensor | null): number[] {
  if (!t) throw new Error('no gradient')
  return Array.from(t.toFloat32Array())
}

function close(t: { true(v: boolean, m?: string): void }, got: number[], want: number[], tol = 1e-5): void {
  t.true(got.length === want.length, `length ${got.length} vs ${want.length}`)
  want.forEach((w, i) => t.true(Math.abs(got[i]! - w) <= tol * (1 + Math.abs(w)), `element ${i}: ${got[i]} vs ${w}`))
}

test('gradients of a small expression match the hand derivation', (t) => {
  zeroGrad()
  // y = Σ (x² + 3x) · w, x = [1, 2], w = [4, 5]:
  // ∂y/∂x = (2x + 3)·w = [20, 35]; ∂y/∂w = x² + 3x = [4, 10].
  const x = Tensor.fromData([1, 2], [2]).toParam()
  const w = Tensor.fromData([4, 5], [2]).toParam()
  const y = x.mul(x).add(x.mul(3)).mul(w).sum(0)
  t.deepEqual(y.shape, [])
  y.backward()
  close(t, values(x.grad), [20, 35])
  close(t, values(w.grad), [4, 10])
  t.is(tapeLength(), 0, 'backward frees the graph')
})

test('gradients accumulate across backward passes until zeroGrad', (t) => {
  zeroGrad()
  const p = Tensor.fromData([1, -2, 3], [3]).toParam()
  p.mul(2).sum(0).backward()
  p.mul(2).sum(0).backward()
  close(t, values(p.grad), [4, 4, 4])
  zeroGrad()
  t.is(p.grad, null)
})

test('broadcasting is undone in the gradient', (t) => {
  zeroGrad()
  // z = a[2,3] + b[3]; ∂Σz/∂b = column sums of ones = [2, 2, 2].
  const a = Tensor.zeros([2, 3]).toParam()
  const b = Tensor.fromData([1, 2, 3], [3]).toParam()
  a.add(b).sum([0, 1]).backward()
  close(t, values(b.grad), [2, 2, 2])
  close(t, values(a.grad), [1, 1, 1, 1, 1, 1])
})

test('matmul gradients match the hand derivation', (t) => {
  zeroGrad()
  // L = Σ A·B with A [2×2], B [2×1]: ∂L/∂A[i,k] = B[k], ∂L/∂B[k] = Σ_i A[i,k].
  const A = Tensor.fromData([1, 2, 3, 4], [2, 2]).toParam()
  const B = Tensor.fromData([5, 6], [2, 1]).toParam()
  A.matmul(B).sum([0, 1]).backward()
  close(t, values(A.grad), [5, 6, 5, 6])
  close(t, values(B.grad), [4, 6])
})

test('nothing is recorded under noGrad or for constants', (t) => {
  zeroGrad()
  const p = Tensor.ones([4]).toParam()
  const y = noGrad(() => p.mul(3).add(1))
  t.false(y.requiresGrad)
  t.is(tapeLength(), 0)
  const c = Tensor.ones([4]).mul(2)
  t.false(c.requiresGrad)
  t.is(tapeLength(), 0)
  t.throws(() => y.sum(0).backward(), { message: /does not depend on any parameter/ })
})
