/**
 * LKD-Net (Luo et al., "LKD-Net: Large Kernel Convolution Network for Single
 * Image Dehazing", ICME 2023): a 3-level U-Net of large-kernel blocks.
 * Parameter names match the published PyTorch weights (`patch_embed.proj.*`,
 * `layer{1…5}.blocks.{j}.*`, `patch_merge{1,2}.proj.*`, `skip{1,2}.*`,
 * `patch_split{1,2}.proj.0.*`, `fusion{1,2}.mlp.*`, `patch_unembed.proj.0.*`),
 * so they load by name; LKD-Net-T has blocks 1/1/2/1/1 at widths 24/48/96/48/24.
 *
 * The network works on images scaled to [−1, 1] (its training data were);
 * {@link LKDNet.forward} takes and returns [0, 1]. Sides are reflect-padded
 * to a multiple of 4 at the bottom and right, and the output cropped back.
 *
 *   x = conv3×3(reflect)(x)                                3 → 24
 *   e1 = layer1(x);  e2 = layer2(conv2×2/2(e1));  e3 = layer3(conv2×2/2(e2))
 *   d2 = layer4(SK(shuffle(conv1×1(e3)), skip2(e2)) + shuffle(…))
 *   d1 = layer5(SK(shuffle(conv1×1(d2)), skip1(e1)) + shuffle(…))
 *   K, B = conv3×3(reflect)(d1)                            24 → 1 + 3
 *   output = clip(K·x − B + x, −1, 1)
 *
 * A block: x += Linear2(DWDConv7×7,d3(DWConv5×5(Linear1(BN(x))))) (reflect
 * padding), then x += CEFN(BN(x)) with CEFN(t) = LN(mlp(t)) · scaler ·
 * σ(ca(avgpool(t))), the layer norm over C, H and W together per image.
 * SK is selective-kernel fusion: a softmax over the two branches of a
 * channel attention computed from their pooled sum.
 *
 * @module
 */
import { Activation, BatchNorm2d, Conv2d, Sequential } from '../nn/layers'
import { readSafetensors } from '../io'
import { Module } from '../nn/module'
import { scope, Tensor } from '../tensor'

/** Options of {@link LKDNet}. */
export interface LKDNetOptions {
  /** Blocks per level, encoder to decoder (LKD-Net-T: 1, 1, 2, 1, 1). */
  depths?: readonly [number, number, number, number, number]
  seed?: number
}

/** Widths of the five levels (the published models all use these). */
const WIDTHS = [24, 48, 96, 48, 24] as const
/** Hint taps: the output of each level's blocks, in forward order. */
export const LKDNET_TAPS = ['encoder1', 'encoder2', 'encoder3', 'decoder2', 'decoder1'] as const
const TAP_CHANNELS: Record<string, number> = { encoder1: 24, encoder2: 48, encoder3: 96, decoder2: 48, decoder1: 24 }

/** Global average pooling as a module (the first entry of CEFN's `ca`). */
class GlobalAvgPool extends Module {
  forward(x: Tensor): Tensor {
    return x.adaptiveAvgPool1x1()
  }
}

/** A conv preceded by reflect padding (the source's `padding_mode='reflect'`). */
function reflectConv(conv: Conv2d, x: Tensor, padding: number): Tensor {
  return scope(() => conv.forward(x.padReflect(padding)))
}

/**
 * Layer norm over C, H and W together per image, with a per-channel affine
 * `[1, C, 1, 1]` (LKD-Net's own LayerNorm; the engine's normalises over C
 * at each pixel): (x − mean) / √(var + ε), var the biased one.
 */
class ImageLayerNorm extends Module {
  readonly weight: Tensor
  readonly bias: Tensor

  constructor(channels: number, readonly eps = 1e-5) {
    super()
    this.weight = this.registerParameter('weight', Tensor.ones([1, channels, 1, 1]))
    this.bias = this.registerParameter('bias', Tensor.zeros([1, channels, 1, 1]))
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      const centred = x.sub(x.mean([1, 2, 3], true))
      const std = centred.mul(centred).mean([1, 2, 3], true).add(this.eps).sqrt()
      return centred.div(std).mul(this.weight).add(this.bias)
    })
  }
}

/**
 * The feed-forward convs of CEFN: 1×1 up, depthwise 3×3 (zero padding),
 * ReLU, 1×1 down. The source nests its sequential one level down, hence
 * the names `cemlp.mlp.mlp.{0,1,3}`.
 */
class Mlp extends Module {
  readonly mlp: Sequential

  constructor(dim: number, hidden: number, seed: number) {
    super()
    this.mlp = this.registerModule(
      'mlp',
      new Sequential(
        new Conv2d(dim, hidden, 1, { seed }),
        new Conv2d(hidden, hidden, 3, { padding: 1, groups: hidden, seed }),
        new Activation('relu'),
        new Conv2d(hidden, dim, 1, { seed }),
      ),
    )
  }

  forward(x: Tensor): Tensor {
    return this.mlp.forward(x)
  }
}

/** The channel-enhanced feed-forward network (`cemlp`). */
class CEFN extends Module {
  readonly mlp: Mlp
  readonly norm: ImageLayerNorm
  readonly ca: Sequential
  readonly scaler: Tensor

  constructor(dim: number, hidden: number, seed: number) {
    super()
    this.mlp = this.registerModule('mlp', new Mlp(dim, hidden, seed))
    this.norm = this.registerModule('norm', new ImageLayerNorm(dim))
    const reduced = Math.floor(dim / 8)
    this.ca = this.registerModule(
      'ca',
      new Sequential(new GlobalAvgPool(), new Conv2d(dim, reduced, 1, { seed }), new Activation('relu'), new Conv2d(reduced, dim, 1, { seed }), new Activation('sigmoid')),
    )
    this.scaler = this.registerParameter('scaler', Tensor.ones([dim, 1, 1]))
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      const attn = this.ca.forward(x).mul(this.scaler)
      return this.norm.forward(this.mlp.forward(x)).mul(attn)
    })
  }
}

/** One LKD block: the dilated large-kernel conv block, then CEFN, each residual. */
class LKDBlock extends Module {
  readonly norm1: BatchNorm2d
  readonly Linear1: Conv2d
  readonly DWConv: Conv2d
  readonly DWDConv: Conv2d
  readonly Linear2: Conv2d
  readonly norm2: BatchNorm2d
  readonly cemlp: CEFN

  constructor(dim: number, mlpRatio: number, seed: number) {
    super()
    this.norm1 = this.registerModule('norm1', new BatchNorm2d(dim))
    this.Linear1 = this.registerModule('Linear1', new Conv2d(dim, dim, 1, { seed }))
    // Reflect padding is applied before these convs, so they pad nothing themselves.
    this.DWConv = this.registerModule('DWConv', new Conv2d(dim, dim, 5, { padding: 0, groups: dim, seed }))
    this.DWDConv = this.registerModule('DWDConv', new Conv2d(dim, dim, 7, { padding: 0, dilation: 3, groups: dim, seed }))
    this.Linear2 = this.registerModule('Linear2', new Conv2d(dim, dim, 1, { seed }))
    this.norm2 = this.registerModule('norm2', new BatchNorm2d(dim))
    this.cemlp = this.registerModule('cemlp', new CEFN(dim, mlpRatio * dim, seed))
  }

  forward(x: Tensor): Tensor {
    return scope(() => {
      let t = this.Linear1.forward(this.norm1.forward(x))
      t = reflectConv(this.DWConv, t, 2)
      t = reflectConv(this.DWDConv, t, 9)
      const y = this.Linear2.forward(t).add(x)
      return this.cemlp.forward(this.norm2.forward(y)).add(y)
    })
  }
}

/** A level's blocks (`layerK.blocks.j`). */
class LKDBlocks extends Module {
  readonly blocks: LKDBlock[]

  constructor(dim: number, depth: number, mlpRatio: number, seed: number) {
    super()
    const list = new Sequential(...Array.from({ length: depth }, () => new LKDBlock(dim, mlpRatio, seed)))
    this.registerModule('blocks', list)
    this.blocks = list.layers as LKDBlock[]
  }

  forward(x: Tensor): Tensor {
    let y = x
    for (const b of this.blocks) {
      const next = b.forward(y)
      if (y !== x) y.dispose()
      y = next
    }
    return y
  }
}

/** A conv under the name `proj` (the source's PatchEmbed). */
class Proj extends Module {
  readonly proj: Conv2d
  constructor(conv: Conv2d) {
    super()
    this.proj = this.registerModule('proj', conv)
  }
  forward(x: Tensor): Tensor {
    return this.proj.forward(x)
  }
}

/** A conv under the name `proj.0`, then pixel shuffle (the source's PatchUnEmbed). */
class ProjShuffle extends Module {
  readonly proj: Sequential
  constructor(conv: Conv2d, readonly factor: number, readonly reflect: number) {
    super()
    this.proj = this.registerModule('proj', new Sequential(conv))
  }
  forward(x: Tensor): Tensor {
    const conv = this.proj.layers[0] as Conv2d
    const y = this.reflect > 0 ? reflectConv(conv, x, this.reflect) : conv.forward(x)
    if (this.factor === 1) return y
    const out = y.pixelShuffle(this.factor)
    y.dispose()
    return out
  }
}

/**
 * Selective-kernel fusion of two branches: attention over the channels of
 * their pooled sum, a softmax across the two branches per channel, and the
 * weighted sum.
 */
class SKFusion extends Module {
  readonly mlp: Sequential

  constructor(readonly dim: number, seed: number) {
    super()
    const d = Math.max(Math.floor(dim / 8), 4)
    this.mlp = this.registerModule('mlp', new Sequential(new Conv2d(dim, d, 1, { bias: false, seed }), new Activation('relu'), new Conv2d(d, 2 * dim, 1, { bias: false, seed })))
  }

  forward(): Tensor {
    throw new Error('SKFusion: call fuse(a, b)')
  }

  fuse(a: Tensor, b: Tensor): Tensor {
    return scope(() => {
      const [n] = a.shape
      const attn = this.mlp.forward(a.add(b).adaptiveAvgPool1x1()).reshape([n!, 2, this.dim, 1]).softmax(1)
      const [wa, wb] = attn.split(1, [1, 1])
      return a.mul(wa!.reshape([n!, this.dim, 1, 1])).add(b.mul(wb!.reshape([n!, this.dim, 1, 1])))
    })
  }
}

/**
 * The LKD-Net dehazing network; usable as an H-KD teacher. Hint taps (the
 * output of each level's blocks, in [−1, 1]-input units): `encoder1`
 * (24 channels, full resolution), `encoder2` (48, ½), `encoder3` (96, ¼),
 * `decoder2` (48, ½) and `decoder1` (24, full) — the names of the student's
 * levels. Taps need sides that are multiples of 4; the output does not.
 *
 * @example
 * ```ts
 * // The published weights: LKDNet.fromSafetensors('lkdnet_t_its_dehaze.safetensors').
 * const net = new LKDNet({ seed: 1 }).eval()
 * const { output, features } = net.forwardHints(Tensor.rand([1, 3, 40, 40]), ['decoder2'])
 * output.shape // [1, 3, 40, 40]
 * features.get('decoder2')!.shape // [1, 48, 20, 20]
 * ```
 */
export class LKDNet extends Module {
  /** RGB in, RGB out. */
  readonly imageChannels = 3
  /** Two stride-2 merges: sides are padded to multiples of 4. */
  readonly sizeMultiple = 4
  /** Blocks per level, encoder to decoder. */
  readonly depths: readonly number[]
  /** @internal A submodule, named as in the source's state dict. */
  readonly patch_embed: Proj
  /** @internal A submodule, named as in the source's state dict. */
  readonly layer1: LKDBlocks
  /** @internal A submodule, named as in the source's state dict. */
  readonly patch_merge1: Proj
  /** @internal A submodule, named as in the source's state dict. */
  readonly skip1: Conv2d
  /** @internal A submodule, named as in the source's state dict. */
  readonly layer2: LKDBlocks
  /** @internal A submodule, named as in the source's state dict. */
  readonly patch_merge2: Proj
  /** @internal A submodule, named as in the source's state dict. */
  readonly skip2: Conv2d
  /** @internal A submodule, named as in the source's state dict. */
  readonly layer3: LKDBlocks
  /** @internal A submodule, named as in the source's state dict. */
  readonly patch_split1: ProjShuffle
  /** @internal A submodule, named as in the source's state dict. */
  readonly fusion1: SKFusion
  /** @internal A submodule, named as in the source's state dict. */
  readonly layer4: LKDBlocks
  /** @internal A submodule, named as in the source's state dict. */
  readonly patch_split2: ProjShuffle
  /** @internal A submodule, named as in the source's state dict. */
  readonly fusion2: SKFusion
  /** @internal A submodule, named as in the source's state dict. */
  readonly layer5: LKDBlocks
  /** @internal A submodule, named as in the source's state dict. */
  readonly patch_unembed: ProjShuffle

  constructor(options: LKDNetOptions = {}) {
    super()
    const depths = (this.depths = [...(options.depths ?? [1, 1, 2, 1, 1])])
    if (depths.length !== 5 || depths.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`LKDNet: depths must be 5 integers ≥ 1 (blocks per level), got ${JSON.stringify(options.depths)}`)
    }
    const s = options.seed ?? 0
    const [w1, w2, w3, w4, w5] = WIDTHS
    const ratio = 4
    this.patch_embed = this.registerModule('patch_embed', new Proj(new Conv2d(3, w1, 3, { padding: 0, seed: s })))
    this.layer1 = this.registerModule('layer1', new LKDBlocks(w1, depths[0]!, ratio, s))
    this.patch_merge1 = this.registerModule('patch_merge1', new Proj(new Conv2d(w1, w2, 2, { stride: 2, padding: 0, seed: s })))
    this.skip1 = this.registerModule('skip1', new Conv2d(w1, w1, 1, { seed: s }))
    this.layer2 = this.registerModule('layer2', new LKDBlocks(w2, depths[1]!, ratio, s))
    this.patch_merge2 = this.registerModule('patch_merge2', new Proj(new Conv2d(w2, w3, 2, { stride: 2, padding: 0, seed: s })))
    this.skip2 = this.registerModule('skip2', new Conv2d(w2, w2, 1, { seed: s }))
    this.layer3 = this.registerModule('layer3', new LKDBlocks(w3, depths[2]!, ratio, s))
    this.patch_split1 = this.registerModule('patch_split1', new ProjShuffle(new Conv2d(w3, w4 * 4, 1, { seed: s }), 2, 0))
    this.fusion1 = this.registerModule('fusion1', new SKFusion(w4, s))
    this.layer4 = this.registerModule('layer4', new LKDBlocks(w4, depths[3]!, ratio, s))
    this.patch_split2 = this.registerModule('patch_split2', new ProjShuffle(new Conv2d(w4, w5 * 4, 1, { seed: s }), 2, 0))
    this.fusion2 = this.registerModule('fusion2', new SKFusion(w5, s))
    this.layer5 = this.registerModule('layer5', new LKDBlocks(w5, depths[4]!, ratio, s))
    this.patch_unembed = this.registerModule('patch_unembed', new ProjShuffle(new Conv2d(w5, 4, 3, { padding: 0, seed: s }), 1, 1))
    this.initParameters(s)
  }

  /**
   * An LKD-Net with the published weights of a safetensors file (LKD-Net-T
   * by default). A file of another model is refused with a short list of
   * what does not match.
   */
  static fromSafetensors(path: string, options: LKDNetOptions = {}): LKDNet {
    const { tensors } = readSafetensors(path)
    const model = new LKDNet(options)
    const expected = model.stateDict()
    const given = new Set(tensors.map((a) => a.name))
    const missing = [...expected.keys()].filter((n) => !given.has(n))
    const extra = tensors.filter((a) => !expected.has(a.name)).map((a) => a.name)
    const wrong = tensors
      .filter((a) => expected.has(a.name) && expected.get(a.name)!.shape.join(',') !== a.shape.join(','))
      .map((a) => `${a.name} is [${a.shape.join(', ')}], the model has [${expected.get(a.name)!.shape.join(', ')}]`)
    const few = (v: string[]) => `${v.length} (${v.slice(0, 3).join(', ')}${v.length > 3 ? ', …' : ''})`
    const problems = [
      ...(missing.length ? [`missing tensors ${few(missing)}`] : []),
      ...(extra.length ? [`unexpected tensors ${few(extra)}`] : []),
      ...(wrong.length ? [`wrong shapes ${few(wrong)}`] : []),
    ]
    if (problems.length) {
      model.dispose()
      throw new Error(`LKD-Net weights '${path}' do not match LKD-Net (blocks ${model.depths.join('/')}): ${problems.join('; ')}`)
    }
    model.loadStateDict(tensors)
    return model.eval()
  }

  /** The dehazed image, in [0, 1], of a hazy `[B, 3, H, W]` one in [0, 1]. */
  forward(x: Tensor): Tensor {
    return this.forwardHints(x, []).output
  }

  /** Channels of a hint tap. */
  tapChannels(tap: string): number {
    const c = Object.hasOwn(TAP_CHANNELS, tap) ? TAP_CHANNELS[tap] : undefined
    if (c === undefined) throw new Error(`LKDNet: unknown hint tap '${tap}' (${LKDNET_TAPS.join(', ')})`)
    return c
  }

  /** The dehazed image and the features at `taps` (names of {@link LKDNET_TAPS}). */
  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> } {
    const { output, features } = this.#run(x, taps, true)
    return { output: output!, features }
  }

  /** The features at `taps` only: levels past the deepest tap are not run. */
  forwardFeatures(x: Tensor, taps: readonly string[]): Map<string, Tensor> {
    return this.#run(x, taps, false).features
  }

  #run(x: Tensor, taps: readonly string[], output: boolean): { output: Tensor | null; features: Map<string, Tensor> } {
    for (const t of taps) this.tapChannels(t)
    const s = x.shape
    if (s.length !== 4 || s[1] !== 3) throw new Error(`LKDNet: expected an RGB image [B, 3, H, W], got [${s.join(', ')}]`)
    const [, , h, w] = s as [number, number, number, number]
    const padH = (4 - (h % 4)) % 4
    const padW = (4 - (w % 4)) % 4
    if (taps.length > 0 && (padH > 0 || padW > 0)) throw new Error(`LKDNet: hint taps need a height and width that are multiples of 4, got ${h}×${w}`)
    // The deepest level a caller needs: 5 for the output.
    const depth = output ? 5 : Math.max(0, ...taps.map((t) => LKDNET_TAPS.indexOf(t as (typeof LKDNET_TAPS)[number]) + 1))
    return scope(() => {
      const features = new Map<string, Tensor>()
      const tap = (name: string, t: Tensor) => {
        if (taps.includes(name)) features.set(name, t)
      }
      const result = { output: null as Tensor | null, features }
      if (depth === 0) return result
      const unit = x.mul(2).sub(1)
      // The source pads the bottom and right by reflection to a multiple of 4.
      const xin = padH > 0 || padW > 0 ? unit.padReflect([0, padH, 0, padW]) : unit
      const e1 = this.layer1.forward(reflectConv(this.patch_embed.proj, xin, 1))
      tap('encoder1', e1)
      if (depth === 1) return result
      const e2 = this.layer2.forward(this.patch_merge1.forward(e1))
      tap('encoder2', e2)
      if (depth === 2) return result
      const e3 = this.layer3.forward(this.patch_merge2.forward(e2))
      tap('encoder3', e3)
      if (depth === 3) return result
      const u2 = this.patch_split1.forward(e3)
      const d2 = this.layer4.forward(this.fusion1.fuse(u2, this.skip2.forward(e2)).add(u2))
      tap('decoder2', d2)
      if (depth === 4) return result
      const u1 = this.patch_split2.forward(d2)
      const d1 = this.layer5.forward(this.fusion2.fuse(u1, this.skip1.forward(e1)).add(u1))
      tap('decoder1', d1)
      if (!output) return result
      const [k, b] = this.patch_unembed.forward(d1).split(1, [1, 3])
      let y = k!.mul(xin).sub(b!).add(xin)
      if (padH > 0) y = y.split(2, [h, padH])[0]!
      if (padW > 0) y = y.split(3, [w, padW])[0]!
      result.output = y.maximum(-1).minimum(1).mul(0.5).add(0.5)
      return result
    })
  }
}
