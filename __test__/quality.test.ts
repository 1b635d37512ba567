import test from 'ava'

import { psnr, rgbToY, ssim } from '../index'

const near = (a: number, b: number, tol = 1e-9) => Math.abs(a - b) <= tol

/** A planar RGB image of `n` pixels, every pixel (r, g, b); f64, so the hand-derived values hold to 1e-9. */
const solid = (n: number, r: number, g: number, b: number) => Float64Array.from({ length: 3 * n }, (_, i) => (i < n ? r : i < 2 * n ? g : b))

const C1 = (0.01 * 255) ** 2

test('rgbToY gives the BT.601 luma of MATLAB rgb2ycbcr on 0–255 for hand-picked colours', (t) => {
  // Pixels: black, white, red, green, blue, mid grey (planar: all R, then all G, then all B).
  const r = [0, 1, 1, 0, 0, 0.5]
  const g = [0, 1, 0, 1, 0, 0.5]
  const b = [0, 1, 0, 0, 1, 0.5]
  const y = rgbToY([...r, ...g, ...b], 2, 3)
  // 16 + 65.481 R + 128.553 G + 24.966 B: 16, 235, 81.481, 144.553, 40.966, 16 + 219/2.
  const want = [16, 235, 81.481, 144.553, 40.966, 125.5]
  t.is(y.length, 6)
  want.forEach((v, i) => t.true(near(y[i]!, v, 1e-9), `pixel ${i}: ${y[i]} vs ${v}`))
})

test('rgbToY refuses a size that does not match the data', (t) => {
  t.throws(() => rgbToY([0, 0, 0, 0], 1, 2), { message: /4 values are not 3 planes of 1×2/ })
  t.throws(() => rgbToY([], 0, 0), { message: /not positive/ })
})

test('psnr on Y: a red error of 0.1 moves Y by 6.5481 grey levels', (t) => {
  const target = solid(16, 0.5, 0.5, 0.5)
  const pred = solid(16, 0.6, 0.5, 0.5)
  // ΔY = 65.481 · 0.1 = 6.5481 → 20·log10(255 / 6.5481) = 31.80856 dB.
  t.true(near(psnr(pred, target, { space: 'y' }), 31.80856, 1e-4), `${psnr(pred, target, { space: 'y' })}`)
  // On RGB only a third of the values err by 25.5: MSE = 25.5²/3 → 10·log10(3·255²/25.5²) = 24.77121 dB.
  t.true(near(psnr(pred, target, { space: 'rgb' }), 24.77121, 1e-4))
  // The default (every value as stored) is the RGB figure.
  t.true(near(psnr(pred, target), psnr(pred, target, { space: 'rgb' }), 1e-9))
})

test('psnr on Y ignores an error that leaves the luma unchanged, unlike RGB', (t) => {
  // R up by 24.966e-3 and B down by 65.481e-3: ΔY = 65.481·24.966e-3 − 24.966·65.481e-3 = 0.
  const target = solid(9, 0.5, 0.5, 0.5)
  const pred = solid(9, 0.5 + 24.966e-3, 0.5, 0.5 - 65.481e-3)
  t.true(psnr(pred, target, { space: 'y' }) > 100)
  const rgb = psnr(pred, target, { space: 'rgb' })
  // MSE on 0–255: ((24.966e-3·255)² + (65.481e-3·255)²) / 3.
  const mse = ((24.966e-3 * 255) ** 2 + (65.481e-3 * 255) ** 2) / 3
  t.true(near(rgb, 10 * Math.log10((255 * 255) / mse), 1e-3), `${rgb}`)
})

test('psnr clips the prediction before taking Y', (t) => {
  // R = 1.4 counts as 1: ΔY = 65.481 · 0.5 = 32.7405 → 20·log10(255 / 32.7405) = 17.82900 dB.
  const v = psnr(solid(4, 1.4, 0.5, 0.5), solid(4, 0.5, 0.5, 0.5), { space: 'y' })
  t.true(near(v, 17.829, 1e-3), `${v}`)
})

test('psnr quantises the prediction to 8 bits when asked (round or truncate)', (t) => {
  // Target 128/255; prediction 0.5055 is 128.9025 grey levels: rounded 129 (error 1), truncated 128 (error 0).
  const target = new Array(4).fill(128 / 255)
  const pred = new Array(4).fill(0.5055)
  t.true(near(psnr(pred, target, { space: 'grey', quantize: 'round' }), 20 * Math.log10(255), 1e-9))
  t.true(psnr(pred, target, { space: 'grey', quantize: 'truncate' }) > 200)
  // Unquantised: error 0.9025 grey levels.
  t.true(near(psnr(pred, target, { space: 'grey' }), 20 * Math.log10(255 / 0.9025), 1e-6))
})

test('ssim on Y and on RGB of constant images is the luminance term of the planes they compare', (t) => {
  const h = 12
  const w = 12
  const target = solid(h * w, 0.5, 0.5, 0.5)
  const pred = solid(h * w, 0.6, 0.5, 0.5)
  // Y: 125.5 against 125.5 + 6.5481; contrast and structure terms are C2/C2 = 1 on constant images.
  const ya = 125.5 + 6.5481
  const yb = 125.5
  const wantY = (2 * ya * yb + C1) / (ya * ya + yb * yb + C1)
  t.true(near(ssim(pred, target, h, w, { space: 'y' }), wantY, 1e-9))
  // RGB: the mean of R (153 vs 127.5) and two identical planes (1 each).
  const wantR = (2 * 153 * 127.5 + C1) / (153 * 153 + 127.5 * 127.5 + C1)
  t.true(near(ssim(pred, target, h, w, { space: 'rgb' }), (wantR + 2) / 3, 1e-9))
  // Grey on one plane is the existing single-plane SSIM.
  const plane = pred.subarray(0, h * w)
  t.true(near(ssim(plane, target.subarray(0, h * w), h, w, { space: 'grey' }), wantR, 1e-9))
  t.true(near(ssim(plane, target.subarray(0, h * w), h, w), wantR, 1e-9))
})

test('psnr and ssim refuse a colour space the data cannot hold', (t) => {
  t.throws(() => psnr([0.1, 0.2], [0.1, 0.2], { space: 'y' }), { message: /psnr: 2 values are not 3 plane\(s\).*'y'/ })
  t.throws(() => ssim(new Array(144).fill(0), new Array(144).fill(0), 12, 12, { space: 'rgb' }), { message: /ssim: 144 values are not 3 plane\(s\) of 144 pixels/ })
  t.throws(() => ssim(new Array(432).fill(0), new Array(432).fill(0), 12, 12, { space: 'grey' }), { message: /ssim: 432 values are not 1 plane/ })
  t.throws(() => psnr([0.1], [0.1], { space: 'lab' as never }), { message: /unknown colour space 'lab'/ })
})
