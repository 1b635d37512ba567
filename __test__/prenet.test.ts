import * as path from 'node:path'

import test from 'ava'

import { HKD, PReNet, SpikerIR, Tensor, listImages, loadModel, noGrad, profile, psnr, readImage, scope, zeroGrad } from '../index'
import { checkModelSpec } from '../src/models/load'
import { sharedTest } from './helpers'
import { crop, prenetReference, protocolPsnr, readPlanes, readWeights, type Planes } from './prenet-reference'

const { run: withShared, shared } = sharedTest()
const weightsFile = () => path.join(shared, 'models', 'prenet_rain100l.safetensors')
const rain100l = (part: 'input' | 'target') => listImages(path.join(shared, 'data', 'derain', 'rain100l', part))

/**
 * Full-image figures of the first Rain100L pairs, measured with the float64
 * reference of prenet-reference.ts (`node dist/__test__/prenet-reference.js 2`,
 * about 9 CPU-minutes a pair) under the source's protocol (clipped, truncated
 * to 8 bits, MATLAB Y). Pairs not yet measured are listed as todo.
 */
const REFERENCE_FULL: { y: number; rgb: number }[] = [{ y: 38.006914, rgb: 36.676732 }]
const FULL_PAIRS = 2

/** Largest |a − b| over two equally long arrays. */
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`)
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

const toTensor = (x: Planes) => Tensor.fromData(Float32Array.from(x.data), [1, x.c, x.h, x.w])

test('PReNet: tap names, channels and unknown taps', (t) => {
  const net = new PReNet({ stages: 2, channels: 4, seed: 1 })
  t.deepEqual(net.tapNames().slice(0, 7), ['stage1.conv0', 'stage1.h', 'stage1.res1', 'stage1.res2', 'stage1.res3', 'stage1.res4', 'stage1.res5'])
  t.is(net.tapNames().length, 14)
  t.is(net.tapChannels('stage2.res5'), 4)
  t.throws(() => net.tapChannels('stage3.h'), { message: /unknown hint tap 'stage3\.h'.*k = 1 … 2/ })
  t.throws(() => net.forwardHints(Tensor.rand([1, 3, 8, 8]), ['stage1.res6']), { message: /unknown hint tap 'stage1\.res6'/ })
  t.throws(() => net.forward(Tensor.rand([1, 1, 8, 8])), { message: /expected an RGB batch \[B, 3, H, W\], got \[1, 1, 8, 8\]/ })
  net.dispose()
})

test('PReNet: forwardFeatures runs no conv past the deepest tap and gives what forwardHints gives', (t) => {
  const net = new PReNet({ stages: 3, channels: 4, seed: 2 }).eval()
  const x = Tensor.rand([1, 3, 12, 10], { seed: 3 })
  const convs = (fn: () => void) => {
    let n = 0
    profile((r) => (n += r.kind === 'conv' ? 1 : 0), fn)
    return n
  }
  // A stage: conv0, four gates, ten residual convs, the output conv = 16.
  let full: Map<string, Tensor> = new Map()
  t.is(
    convs(() => {
      const r = noGrad(() => net.forwardHints(x, ['stage2.res3', 'stage1.h']))
      r.output.dispose()
      full = r.features
    }),
    48,
  )
  let part: Map<string, Tensor> = new Map()
  // Stage 1 whole (16), then stage 2's conv0, gates and three residual blocks (1 + 4 + 6).
  t.is(convs(() => (part = noGrad(() => net.forwardFeatures(x, ['stage2.res3', 'stage1.h'])))), 27)
  t.deepEqual([...part.keys()], ['stage2.res3', 'stage1.h'])
  for (const tap of ['stage2.res3', 'stage1.h']) {
    t.deepEqual(part.get(tap)!.shape, [1, 4, 12, 10])
    t.is(maxAbsDiff(part.get(tap)!.toFloat32Array(), full.get(tap)!.toFloat32Array()), 0, tap)
  }
  t.is(convs(() => noGrad(() => net.forwardFeatures(x, ['stage1.conv0'])).forEach((f) => f.dispose())), 1)
  for (const f of [...full.values(), ...part.values()]) f.dispose()
  x.dispose()
  net.dispose()
})

test('PReNet as an H-KD teacher: the hint term is the MSE of the adapted student feature to stage{k}.h, and the teacher stays frozen', (t) => {
  zeroGrad()
  const student = new SpikerIR({ width: 4, timeSteps: 2, imageChannels: 3, seed: 1 })
  const teacher = new PReNet({ stages: 2, channels: 6, seed: 2 }).eval()
  const pairs = [{ student: 'decoder1', teacher: 'stage2.h', studentChannels: student.tapChannels('decoder1'), teacherChannels: teacher.tapChannels('stage2.h') }]
  const hkd = new HKD({ forwardHints: (x, taps) => student.forwardHints(x, taps) }, teacher, pairs, { lambdaFft: 0, gamma: 0.5 })
  const clean = Tensor.rand([1, 3, 16, 16], { seed: 3 })
  const rainy = clean.add(Tensor.rand(clean.shape, { seed: 4, low: 0, high: 0.2 }))
  const { parts } = hkd.loss(rainy, clean, 0)
  const ref = noGrad(() => {
    const s = student.forwardHints(rainy, ['decoder1'])
    const ft = teacher.forwardFeatures(rainy, ['stage2.h']).get('stage2.h')!
    const fs = hkd.adapters.items[0]!.adapt(s.features.get('decoder1')!, ft.shape).toFloat32Array()
    const z = ft.toFloat32Array()
    let mse = 0
    for (let i = 0; i < z.length; i++) mse += (fs[i]! - z[i]!) ** 2 / z.length
    return mse
  })
  t.true(ref > 0)
  t.true(Math.abs(parts.hint - ref) < 1e-4 * ref, `hint ${parts.hint} vs ${ref}`)
  parts.loss.backward()
  t.true(teacher.parameters().every((p) => p.grad === null), 'the teacher is frozen')
  t.true(hkd.adapters.items[0]!.conv.weight.grad !== null, 'the adapter learns')
  zeroGrad()
})

test('PReNet specs: checkModelSpec accepts stages and channels and refuses other options', (t) => {
  t.deepEqual(checkModelSpec({ kind: 'prenet', options: { stages: 4 } }, 'spec'), { kind: 'prenet', options: { stages: 4 } })
  t.throws(() => checkModelSpec({ kind: 'prenet', options: { imageChannels: 1 } }, 'spec'), { message: /spec\.options\.imageChannels: unknown option for prenet/ })
  t.throws(() => checkModelSpec({ kind: 'prenet', options: { stages: 0 } }, 'spec'), { message: /spec\.options\.stages must be an integer ≥ 1/ })
})

withShared('published PReNet: 168,963 parameters under the PyTorch names; loadModel reads the bare file as PReNet', (t) => {
  const { model, spec, imageChannels, step } = loadModel(weightsFile())
  t.deepEqual(spec, { kind: 'prenet', options: {} })
  t.is(imageChannels, 3)
  t.is(step, null)
  t.true(model instanceof PReNet)
  t.is(model.numParameters(), 168963)
  const names = (prefix: string) => [`${prefix}.weight`, `${prefix}.bias`]
  const expected = [
    ...names('conv0.0'),
    ...[1, 2, 3, 4, 5].flatMap((k) => [...names(`res_conv${k}.0`), ...names(`res_conv${k}.2`)]),
    ...['i', 'f', 'g', 'o'].flatMap((g) => names(`conv_${g}.0`)),
    ...names('conv.0'),
  ]
  t.deepEqual(
    model.namedParameters().map(([n]) => n),
    expected,
  )
  t.deepEqual(model.namedParameters().find(([n]) => n === 'conv_g.0.weight')![1].shape, [32, 64, 3, 3])
  model.dispose()
})

withShared('published PReNet on 48×48 crops of two Rain100L images matches a float64 reference (output, h and residual taps)', (t) => {
  const weights = readWeights(weightsFile())
  const net = PReNet.fromSafetensors(weightsFile())
  const taps = ['stage1.h', 'stage3.res2', 'stage6.conv0', 'stage6.h', 'stage6.res5']
  rain100l('input')
    .slice(0, 2)
    .forEach((file) => {
      const input = crop(readPlanes(file), 48, 48)
      const ref = prenetReference(input, weights)
      scope(() => {
        const { output, features } = noGrad(() => net.forwardHints(toTensor(input), taps))
        const outErr = maxAbsDiff(output.toFloat32Array(), ref.output.data)
        t.log(`${path.basename(file)}: output max |spikeir − reference| ${outErr.toExponential(2)}`)
        t.true(outErr < 1e-5, `${path.basename(file)} output differs by ${outErr}`)
        const refTap: Record<string, Planes> = {
          'stage1.h': ref.stages[0]!.h,
          'stage3.res2': ref.stages[2]!.res[1]!,
          'stage6.conv0': ref.stages[5]!.conv0,
          'stage6.h': ref.stages[5]!.h,
          'stage6.res5': ref.stages[5]!.res[4]!,
        }
        for (const tap of taps) {
          const f = features.get(tap)!
          t.deepEqual(f.shape, [1, 32, 48, 48], tap)
          const err = maxAbsDiff(f.toFloat32Array(), refTap[tap]!.data)
          t.true(err < 1e-5, `${path.basename(file)} ${tap} differs by ${err}`)
        }
        for (const f of features.values()) f.dispose()
      })
    })
  net.dispose()
})

if (REFERENCE_FULL.length < FULL_PAIRS) test.todo(`published PReNet: full-image Y and RGB PSNR of Rain100L pairs ${REFERENCE_FULL.length + 1} … ${FULL_PAIRS} against the float64 reference (figures not measured yet)`)

const fullTitle = `published PReNet: full-image Y and RGB PSNR of the first ${REFERENCE_FULL.length} Rain100L pair(s) match the float64 reference's figures`
if (REFERENCE_FULL.length > 0) withShared(fullTitle, (t) => {
  const net = PReNet.fromSafetensors(weightsFile())
  const inputs = rain100l('input')
  const targets = rain100l('target')
  REFERENCE_FULL.forEach((want, i) => {
    scope(() => {
      const input = readImage(inputs[i]!, { channels: 3 })
      const target = readImage(targets[i]!, { channels: 3 }).toFloat32Array()
      const out = noGrad(() => net.forward(input)).toFloat32Array()
      // The source's protocol saves 8-bit PNGs by truncation (np.uint8(255·out)) before scoring.
      const y = psnr(out, target, { space: 'y', quantize: 'truncate' })
      const rgb = psnr(out, target, { space: 'rgb', quantize: 'truncate' })
      // Cross-check of the protocol itself: the reference's scoring of spikeir's output.
      const [, , h, w] = input.shape as [number, number, number, number]
      const own = protocolPsnr({ c: 3, h, w, data: Float64Array.from(out) }, { c: 3, h, w, data: Float64Array.from(target, (v) => Math.round(v * 255) / 255) })
      t.log(`${path.basename(inputs[i]!)}: Y ${y.toFixed(4)} dB (reference ${want.y}), RGB ${rgb.toFixed(4)} dB (reference ${want.rgb})`)
      t.true(Math.abs(own.y - y) < 1e-6, `protocol Y ${own.y} vs psnr ${y}`)
      t.true(Math.abs(y - want.y) < 0.002, `Y PSNR ${y} vs reference ${want.y}`)
      t.true(Math.abs(rgb - want.rgb) < 0.002, `RGB PSNR ${rgb} vs reference ${want.rgb}`)
    })
  })
  net.dispose()
})
