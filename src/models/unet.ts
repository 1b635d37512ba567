/**
 * A trainable ANN U-Net teacher whose levels match the SpikerIR student's
 * resolutions (full, 1/2, 1/4), so hints can pair level with level: conv
 * blocks (3×3 conv → ReLU ×2) at c, 2c, 4c channels, stride-2 conv down,
 * bilinear ×2 + conv up, concatenated skips, residual output (+ input).
 *
 * @module
 */
import { Conv2d, Sequential, Activation } from '../nn/layers'
import { Module } from '../nn/module'
import { zeroInit } from './spikerir'
import { Tensor } from '../tensor'

/** Options of {@link UNet}. */
export interface UNetOptions {
  /** Width c: levels at c, 2c, 4c channels. */
  width?: number
  imageChannels?: number
  seed?: number
}

/** Names of the U-Net's hint taps, in forward order (the student's names). */
export const UNET_TAPS = ['encoder1', 'encoder2', 'encoder3', 'decoder2', 'decoder1'] as const

/** Conv → ReLU ×2 (its weights are drawn again by the model, by name). */
function block(inC: number, outC: number, seed: number): Sequential {
  return new Sequential(new Conv2d(inC, outC, 3, { seed }), new Activation('relu'), new Conv2d(outC, outC, 3, { seed }), new Activation('relu'))
}

/** The U-Net teacher. */
export class UNet extends Module {
  readonly width: number
  /** Two stride-2 down-samplings: image sides must be multiples of 4. */
  readonly sizeMultiple = 4
  readonly imageChannels: number
  readonly encoder1: Sequential
  readonly down1: Conv2d
  readonly encoder2: Sequential
  readonly down2: Conv2d
  readonly encoder3: Sequential
  readonly up2: Conv2d
  readonly decoder2: Sequential
  readonly up1: Conv2d
  readonly decoder1: Sequential
  readonly output: Conv2d

  constructor(options: UNetOptions = {}) {
    super()
    const c = (this.width = options.width ?? 32)
    const io = (this.imageChannels = options.imageChannels ?? 1)
    const s = options.seed ?? 0
    this.encoder1 = this.registerModule('encoder1', block(io, c, s))
    this.down1 = this.registerModule('down1', new Conv2d(c, 2 * c, 3, { stride: 2, seed: s }))
    this.encoder2 = this.registerModule('encoder2', block(2 * c, 2 * c, s))
    this.down2 = this.registerModule('down2', new Conv2d(2 * c, 4 * c, 3, { stride: 2, seed: s }))
    this.encoder3 = this.registerModule('encoder3', block(4 * c, 4 * c, s))
    this.up2 = this.registerModule('up2', new Conv2d(4 * c, 2 * c, 3, { seed: s }))
    this.decoder2 = this.registerModule('decoder2', block(4 * c, 2 * c, s))
    this.up1 = this.registerModule('up1', new Conv2d(2 * c, c, 3, { seed: s }))
    this.decoder1 = this.registerModule('decoder1', block(2 * c, c, s))
    this.output = this.registerModule('output', new Conv2d(c, io, 3, { seed: s }))
    // Each parameter from (seed, its name); then the residual output starts at zero.
    this.initParameters(s)
    zeroInit(this.output)
  }

  forward(x: Tensor): Tensor {
    return this.forwardHints(x, []).output
  }

  /** Channels of a hint tap. */
  tapChannels(tap: string): number {
    const c = this.width
    const channels: Record<string, number> = { encoder1: c, encoder2: 2 * c, encoder3: 4 * c, decoder2: 2 * c, decoder1: c }
    const n = channels[tap]
    if (n === undefined) throw new Error(`UNet: unknown hint tap '${tap}' (${UNET_TAPS.join(', ')})`)
    return n
  }

  /** The restored image and the features at hint taps named in {@link UNET_TAPS}. */
  forwardHints(x: Tensor, taps: readonly string[]): { output: Tensor; features: Map<string, Tensor> } {
    for (const t of taps) this.tapChannels(t)
    const [, , h, w] = x.shape
    if (h! % 4 !== 0 || w! % 4 !== 0) throw new Error(`UNet: height and width must be multiples of 4, got ${h}×${w}`)
    const tmp: Tensor[] = []
    const k = (t: Tensor) => (tmp.push(t), t)
    const features = new Map<string, Tensor>()
    const tap = (name: string, t: Tensor) => {
      if (taps.includes(name)) features.set(name, t.reshape(t.shape))
    }
    const e1 = k(this.encoder1.forward(x))
    tap('encoder1', e1)
    const e2 = k(this.encoder2.forward(k(k(this.down1.forward(e1)).relu())))
    tap('encoder2', e2)
    const e3 = k(this.encoder3.forward(k(k(this.down2.forward(e2)).relu())))
    tap('encoder3', e3)
    const u2 = k(k(this.up2.forward(k(e3.upsample2x('bilinear')))).relu())
    const d2 = k(this.decoder2.forward(k(Tensor.concat([u2, e2], 1))))
    tap('decoder2', d2)
    const u1 = k(k(this.up1.forward(k(d2.upsample2x('bilinear')))).relu())
    const d1 = k(this.decoder1.forward(k(Tensor.concat([u1, e1], 1))))
    tap('decoder1', d1)
    const output = x.add(k(this.output.forward(d1)))
    for (const t of tmp) t.dispose()
    return { output, features }
  }
}
