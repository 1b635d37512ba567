import * as path from 'node:path'

import test from 'ava'

import { DnCNN, Tensor, listImages, noGrad, psnr, readImage, restore, scope, ssim } from '../index'
import { sharedTest } from './helpers'

const { run: withShared, shared } = sharedTest()

test('psnr and ssim give hand-derived values', (t) => {
  // MSE of 0.01 on [0, 1] → PSNR = 10·log10(1/0.01) = 20 dB.
  t.true(Math.abs(psnr([0.1, 0.3], [0.2, 0.2]) - 20) < 1e-9)
  // Predictions are clipped: 1.5 counts as 1.
  t.true(Math.abs(psnr([1.5, 0.5], [1, 0.4]) - 10 * Math.log10(1 / 0.005)) < 1e-9)
  const img = Array.from({ length: 16 * 16 }, (_, i) => ((i * 37) % 256) / 255)
  t.true(Math.abs(ssim(img, img, 16, 16) - 1) < 1e-12)
  // A constant offset δ on constant images: luminance term (2μ(μ+δ)+C1)/(μ²+(μ+δ)²+C1).
  const a = new Array(256).fill(100 / 255)
  const b = new Array(256).fill(110 / 255)
  const c1 = (0.01 * 255) ** 2
  t.true(Math.abs(ssim(a, b, 16, 16) - (2 * 100 * 110 + c1) / (100 ** 2 + 110 ** 2 + c1)) < 1e-9)
})

withShared('published DnCNN-S σ=25 reproduces its Set12 PSNR (30.44 dB) within 0.05 dB', (t) => {
  const model = DnCNN.fromSafetensors(path.join(shared, 'models', 'dncnn_s_sigma25.safetensors'))
  const files = listImages(path.join(shared, 'data', 'set12'))
  t.is(files.length, 12)
  const scores = files.map((file, i) =>
    scope(() => {
      const clean = readImage(file, { channels: 1 })
      const [, , h, w] = clean.shape
      const noisy = clean.add(Tensor.randn(clean.shape, { seed: 1000 + i, std: 25 / 255 }))
      const out = noGrad(() => model.forward(noisy))
      const pred = out.toFloat32Array()
      const target = clean.toFloat32Array()
      return { psnr: psnr(pred, target), ssim: ssim(pred, target, h!, w!) }
    }),
  )
  const avg = scores.reduce((s, x) => s + x.psnr, 0) / scores.length
  const avgSsim = scores.reduce((s, x) => s + x.ssim, 0) / scores.length
  t.log(`Set12 σ=25: PSNR ${avg.toFixed(3)} dB, SSIM ${avgSsim.toFixed(4)}`)
  t.true(Math.abs(avg - 30.44) <= 0.05, `average PSNR ${avg.toFixed(3)} dB`)
  t.true(avgSsim > 0.85 && avgSsim < 0.9, `SSIM ${avgSsim}`)
})

test('a few conv layers learn to denoise 32×32 patches: the loss falls at least 3×', (t) => {
  // Seeded data: smooth random patches (sums of a few sinusoids) plus σ = 0.1 noise.
  const { Adam, DnCNN: Net, zeroGrad } = require('../index') as typeof import('../index')
  zeroGrad()
  const net = new Net({ depth: 4, channels: 16, seed: 3 })
  const opt = new Adam(net.namedParameters(), { lr: 2e-3 })
  const patch = (seed: number) => {
    const data = new Float32Array(4 * 32 * 32)
    for (let b = 0; b < 4; b++) {
      const fx = 1 + ((seed + b) % 3)
      const fy = 1 + ((seed * 7 + b) % 4)
      for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) {
        data[b * 1024 + y * 32 + x] = 0.5 + 0.25 * Math.sin((2 * Math.PI * fx * x) / 32 + b) * Math.cos((2 * Math.PI * fy * y) / 32)
      }
    }
    return Tensor.fromData(data, [4, 1, 32, 32])
  }
  const losses: number[] = []
  for (let step = 0; step < 60; step++) {
    const loss = scope(() => {
      const clean = patch(step)
      const noisy = clean.add(Tensor.randn(clean.shape, { seed: step, std: 0.1 }))
      const l = net.forward(noisy).mseLoss(clean)
      l.backward()
      opt.step()
      zeroGrad()
      return l.toFloat32Array()[0]!
    })
    losses.push(loss)
  }
  const first = (losses[0]! + losses[1]! + losses[2]!) / 3
  const last = (losses[57]! + losses[58]! + losses[59]!) / 3
  t.log(`loss ${first.toExponential(3)} → ${last.toExponential(3)}`)
  t.true(last < first / 3, `loss fell from ${first} to ${last}`)
})

test('restore pads only models that need it, crops back and clips to [0, 1]', (t) => {
  const seen: number[][] = []
  const identity = (sizeMultiple?: number) => ({
    ...(sizeMultiple ? { sizeMultiple } : {}),
    forward: (x: Tensor) => {
      seen.push(x.shape)
      return x.mul(2)
    },
  })
  const data = Float32Array.from({ length: 6 * 7 }, (_, i) => i / 50)
  const noisy = Tensor.fromData(data, [1, 1, 6, 7])
  const plain = restore(identity(), noisy).toFloat32Array()
  const padded = restore(identity(4), noisy).toFloat32Array()
  t.deepEqual(seen, [[1, 1, 6, 7], [1, 1, 8, 8]])
  const expected = Array.from(data, (v) => Math.min(1, 2 * v))
  t.deepEqual(Array.from(plain), expected)
  t.deepEqual(Array.from(padded), expected)
})
