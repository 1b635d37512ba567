import test from 'ava'

import { soak } from '../benchmarks/soak'

// The short form of `npm run bench -- soak`: after warm-up, a training loop
// with hints holds the same device bytes, buffers and live tensors at every
// step (a leak of one tensor per step shows as a difference of 150).
test('200 H-KD training steps keep device memory and live tensors flat', (t) => {
  const samples = soak(200, [50, 200])
  const [warm, end] = samples as [(typeof samples)[0], (typeof samples)[0]]
  t.log(`step 50: ${warm.deviceBytes} bytes, ${warm.deviceBuffers} buffers, ${warm.handles} tensors, RSS ${warm.rssMiB.toFixed(1)} MiB`)
  t.log(`step 200: ${end.deviceBytes} bytes, ${end.deviceBuffers} buffers, ${end.handles} tensors, RSS ${end.rssMiB.toFixed(1)} MiB`)
  t.true(warm.deviceBuffers > 0)
  t.is(end.deviceBytes, warm.deviceBytes)
  t.is(end.deviceBuffers, warm.deviceBuffers)
  t.is(end.handles, warm.handles)
})
