/**
 * Multi-dimensional attention for spike tensors `[T, B, C, H, W]`
 * (DESIGN §3): a temporal, a channel and a spatial gate, each multiplying
 * the running result, then ReLU.
 *
 * @module
 */
import { Tensor } from '../tensor'
import { Conv2d } from './layers'
import { Module, recordOp } from './module'

/** A bias-free linear layer `y = x·Wᵀ` on `[B, in]`, PyTorch's default init. */
export class Linear extends Module {
  readonly weight: Tensor

  constructor(readonly inFeatures: number, readonly outFeatures: number, seed = 0) {
    super()
    const bound = 1 / Math.sqrt(inFeatures)
    this.weight = this.registerRandomParameter('weight', seed, (s) => Tensor.rand([outFeatures, inFeatures], { seed: s, low: -bound, high: bound }))
  }

  forward(x: Tensor): Tensor {
    recordOp({ module: this, kind: 'linear', input: x, macs: (x.size / this.inFeatures) * this.inFeatures * this.outFeatures, realInput: true })
    const wt = this.weight.permute([1, 0])
    const y = x.matmul(wt)
    wt.dispose()
    return y
  }
}

/** The shared two-layer MLP of a gate: Linear(n → n/r) → ReLU → Linear(n/r → n). */
export class GateMlp extends Module {
  readonly fc1: Linear
  readonly fc2: Linear

  constructor(n: number, hidden: number, seed: number) {
    super()
    this.fc1 = this.registerModule('fc1', new Linear(n, hidden, seed))
    this.fc2 = this.registerModule('fc2', new Linear(hidden, n, seed))
    this.initParameters(seed)
  }

  forward(x: Tensor): Tensor {
    const h = this.fc1.forward(x)
    const r = h.relu()
    const y = this.fc2.forward(r)
    h.dispose()
    r.dispose()
    return y
  }
}

/** Options of {@link MultiDimensionalAttention}. */
export interface AttentionOptions {
  /** Temporal reduction ratio r_t (default 4). */
  temporalReduction?: number
  /** Channel reduction ratio r_c (default 16, capped so the hidden width is ≥ 1). */
  channelReduction?: number
  /** Spatial kernel size k (default 3). */
  kernelSize?: number
  seed?: number
}

/** sigmoid(mlp(avg) + mlp(max)) of `[B, n]` summaries. */
function gate(mlp: GateMlp, avg: Tensor, max: Tensor): Tensor {
  const a = mlp.forward(avg)
  const m = mlp.forward(max)
  const s = a.add(m)
  const g = s.sigmoid()
  for (const t of [a, m, s]) t.dispose()
  return g
}

/**
 * Temporal gate `[B, T, 1, 1, 1]`, channel gate `[B, 1, C, 1, 1]` and spatial
 * gate `[B, 1, 1, H, W]`, applied in that order, then ReLU.
 */
export class MultiDimensionalAttention extends Module {
  readonly temporal: GateMlp
  readonly channel: GateMlp
  readonly spatial: Conv2d

  constructor(readonly timeSteps: number, readonly channels: number, options: AttentionOptions = {}) {
    super()
    const seed = options.seed ?? 0
    const rt = options.temporalReduction ?? 4
    const rc = options.channelReduction ?? 16
    const k = options.kernelSize ?? 3
    this.temporal = this.registerModule('temporal', new GateMlp(timeSteps, Math.max(1, Math.floor(timeSteps / rt)), seed))
    this.channel = this.registerModule('channel', new GateMlp(channels, Math.max(1, Math.floor(channels / rc)), seed))
    this.spatial = this.registerModule('spatial', new Conv2d(2, 1, k, { bias: false, seed }))
    this.initParameters(seed)
  }

  forward(x: Tensor): Tensor {
    const [t, b, c, h, w] = x.shape as [number, number, number, number, number]
    const temp: Tensor[] = []
    const keep = <T extends Tensor>(v: T): T => (temp.push(v), v)
    // The temporal and channel summaries both come from per-(t, b, c) means and maxima over H, W,
    // so x is reduced twice, not four times, and x1 = x·tGate never materialises: the channel
    // summaries of x1 are mean_t(tGate·mean) and max_t(tGate·max) (a sigmoid gate is positive, so
    // it commutes with the maximum), and x2 = x·(tGate·cGate) in one product.
    const mean = keep(x.mean([3, 4]))
    const max = keep(x.max([3, 4]))
    // Temporal: summaries over C, H, W of each (t, b), as [B, T].
    const tAvg = keep(keep(mean.mean([2])).permute([1, 0]))
    const tMax = keep(keep(max.max([2])).permute([1, 0]))
    const tGate = keep(keep(keep(gate(this.temporal, tAvg, tMax)).permute([1, 0])).reshape([t, b, 1]))
    // Channel: summaries over T, H, W of each (b, c) of x1 = x·tGate, as [B, C].
    const cAvg = keep(keep(mean.mul(tGate)).mean([0]))
    const cMax = keep(keep(max.mul(tGate)).max([0]))
    const cGate = keep(keep(gate(this.channel, cAvg, cMax)).reshape([1, b, c]))
    const x2 = keep(x.mul(keep(keep(tGate.mul(cGate)).reshape([t, b, c, 1, 1]))))
    // Spatial: mean and max over T and C at each pixel (reduced in place: a [B, T·C, H, W]
    // copy of x2 cost a full copy forward and another backward), a k×k conv, sigmoid.
    const sAvg = keep(keep(x2.mean([0, 2])).reshape([b, 1, h, w]))
    const sMax = keep(keep(x2.max([0, 2])).reshape([b, 1, h, w]))
    const sIn = keep(Tensor.concat([sAvg, sMax], 1))
    const sGate = keep(keep(this.spatial.forward(sIn)).sigmoid())
    const x3 = keep(x2.mul(keep(sGate.reshape([1, b, 1, h, w]))))
    const y = x3.relu()
    // The architecture's three gate products over every element: the energy model counts what the
    // network defines, as the paper does, although x·tGate·cGate above runs as one product.
    recordOp({ module: this, kind: 'gate', input: x, macs: 3 * x.size, timeSteps: t, realInput: true })
    for (const v of temp) v.dispose()
    return y
  }
}
