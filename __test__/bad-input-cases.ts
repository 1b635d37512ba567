/**
 * Bad input, case by case: each case builds its files in a fresh folder,
 * runs the CLI on them and states what must happen — an error whose message
 * names the file or option and the reason, or (for the conversions the
 * readers make by rule) success. `bad-input.test.ts` asserts every case;
 * `benchmarks/bad-input-table.ts` prints the README's table from the same list.
 *
 * The files are made here, byte by byte where the project's own writer
 * cannot make them (16-bit, palette and alpha PNGs, CMYK TIFFs, broken
 * safetensors), so the cases do not depend on fixtures or outside tools.
 */
import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import * as zlib from 'node:zlib'

import { readSafetensors, SpikerIR, Tensor, UNet, writeImage, writeSafetensors } from '../index'

const root = path.resolve(__dirname, '..', '..')
const main = path.join(__dirname, '..', 'src', 'cli', 'main.js')
/** The bundled student (the CLI's default model). */
export const bundled = path.join(root, 'weights', 'spikerir_tiny_sigma25.json')

// --- file makers ----------------------------------------------------------

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

function crc32(b: Buffer): number {
  let c = 0xffffffff
  for (const byte of b) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(4)
  head.writeUInt32BE(data.length)
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(body))
  return Buffer.concat([head, body, crc])
}

/**
 * A PNG from raw rows. `colorType`: 0 grey, 2 RGB, 3 palette, 4 grey+alpha,
 * 6 RGBA; `rows` holds each row's samples (big-endian for 16-bit).
 */
export function png(o: { width: number; height: number; colorType: 0 | 2 | 3 | 4 | 6; bitDepth: 8 | 16; rows: Buffer[]; palette?: Buffer; trns?: Buffer }): Buffer {
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(o.width, 0)
  ihdr.writeUInt32BE(o.height, 4)
  ihdr[8] = o.bitDepth
  ihdr[9] = o.colorType
  const raw = Buffer.concat(o.rows.map((r) => Buffer.concat([Buffer.from([0]), r])))
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...(o.palette ? [pngChunk('PLTE', o.palette)] : []),
    ...(o.trns ? [pngChunk('tRNS', o.trns)] : []),
    pngChunk('IDAT', zlib.deflateSync(raw)),
    pngChunk('IEND', Buffer.alloc(0)),
  ])
}

/** An 8-bit grey PNG of a ramp. */
export function greyPng(width: number, height: number): Buffer {
  return png({ width, height, colorType: 0, bitDepth: 8, rows: Array.from({ length: height }, (_, y) => Buffer.from(Array.from({ length: width }, (_, x) => (x * 7 + y * 13) % 256))) })
}

/** A little-endian, uncompressed, single-strip TIFF; `photometric` 1 grey, 2 RGB, 5 CMYK. */
export function tiff(width: number, height: number, photometric: 1 | 2 | 5, samples: Buffer): Buffer {
  const spp = photometric === 1 ? 1 : photometric === 2 ? 3 : 4
  const entries: [number, number, number, number][] = [] // tag, type (3 SHORT, 4 LONG), count, value
  const nEntries = 10
  const ifdSize = 2 + nEntries * 12 + 4
  const bitsAt = 8 + ifdSize
  const dataAt = bitsAt + spp * 2
  entries.push([256, 4, 1, width], [257, 4, 1, height], [258, 3, spp, spp === 1 ? 8 : bitsAt], [259, 3, 1, 1])
  entries.push([262, 3, 1, photometric], [273, 4, 1, dataAt], [277, 3, 1, spp], [278, 4, 1, height], [279, 4, 1, samples.length], [284, 3, 1, 1])
  const b = Buffer.alloc(dataAt + samples.length)
  b.write('II', 0, 'latin1')
  b.writeUInt16LE(42, 2)
  b.writeUInt32LE(8, 4)
  b.writeUInt16LE(nEntries, 8)
  entries.forEach(([tag, type, count, value], i) => {
    const at = 10 + i * 12
    b.writeUInt16LE(tag, at)
    b.writeUInt16LE(type, at + 2)
    b.writeUInt32LE(count, at + 4)
    if (type === 3 && count === 1) b.writeUInt16LE(value, at + 8)
    else b.writeUInt32LE(value, at + 8)
  })
  b.writeUInt32LE(0, 10 + nEntries * 12)
  for (let i = 0; i < spp; i++) b.writeUInt16LE(8, bitsAt + i * 2)
  samples.copy(b, dataAt)
  return b
}

/** A safetensors file from raw tensor bytes (any dtype name, any shape). */
export function safetensors(tensors: { name: string; dtype: string; shape: number[]; bytes: Buffer }[], metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = metadata ? { __metadata__: metadata } : {}
  let offset = 0
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] }
    offset += t.bytes.length
  }
  const json = Buffer.from(JSON.stringify(header))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(BigInt(json.length))
  return Buffer.concat([len, json, ...tensors.map((t) => t.bytes)])
}

const f32 = (values: number[]) => Buffer.from(new Float32Array(values).buffer)

/** A JPEG (or any format the project writes) of a ramp, through the project's own writer. */
function written(file: string, channels: 1 | 3, h: number, w: number): Buffer {
  const t = Tensor.fromData(Float32Array.from({ length: channels * h * w }, (_, i) => (i % 97) / 96), [1, channels, h, w])
  writeImage(file, t)
  t.dispose()
  return fs.readFileSync(file)
}

/** The first `fraction` of a file's bytes. */
const cut = (b: Buffer, fraction: number) => b.subarray(0, Math.floor(b.length * fraction))

/** A copy of the bundled student as `NAME.json` + `NAME.safetensors` in `dir`, with its tensors passed through `edit`. */
function studentCopy(dir: string, name: string, edit: (t: ReturnType<typeof readSafetensors>['tensors']) => ReturnType<typeof readSafetensors>['tensors'], sidecarEdit: (s: Record<string, unknown>) => void = () => {}): string {
  const info = JSON.parse(fs.readFileSync(bundled, 'utf8')) as Record<string, unknown>
  const { tensors } = readSafetensors(path.join(path.dirname(bundled), info['model'] as string))
  writeSafetensors(path.join(dir, `${name}.safetensors`), edit(tensors))
  // The hashes would (rightly) refuse an edited file before its contents are read.
  delete info['sha256']
  info['model'] = `${name}.safetensors`
  sidecarEdit(info)
  const file = path.join(dir, `${name}.json`)
  fs.writeFileSync(file, JSON.stringify(info))
  return file
}

/** A checkpoint of an untrained model (a U-Net, say), as the trainer would write it. */
function checkpointOf(dir: string, name: string, kind: 'unet' | 'spikerir', options: Record<string, unknown>): string {
  const model = kind === 'unet' ? new UNet(options) : new SpikerIR(options)
  model.saveSafetensors(path.join(dir, `${name}.safetensors`))
  model.dispose()
  const info = { format: 'spikeir-checkpoint', version: 1, step: 10, seed: 0, config: { model: { kind, options } }, metrics: {}, model: `${name}.safetensors`, trainingState: null }
  const file = path.join(dir, `${name}.json`)
  fs.writeFileSync(file, JSON.stringify(info))
  return file
}

function write(dir: string, name: string, bytes: Buffer | string): string {
  const file = path.join(dir, name)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, bytes)
  return file
}

/** A folder of `n` grey PNGs of `size`×`size` (sizes may differ per image). */
function folder(dir: string, name: string, sizes: number[]): string {
  const d = path.join(dir, name)
  sizes.forEach((s, i) => write(d, `img${i}.png`, greyPng(s, s)))
  return d
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

// --- the cases --------------------------------------------------------------

/** One bad input (or one accepted by a stated rule). */
export interface Case {
  /** What the input is, for the table. */
  name: string
  /** `error`: non-zero exit with `message`; `accepted`: exit 0 (a conversion the readers make by rule). */
  expect: 'error' | 'accepted'
  /** Builds the files in `dir` and returns the CLI's arguments. */
  setup(dir: string): string[]
  /** What stderr must match (naming the file or option and the reason), given `dir`. */
  message(dir: string): RegExp
  /** Paths, relative to `dir`, that must not exist afterwards (error) or must (accepted). */
  outputs: string[]
}

/** `denoise IN out.png` on an image file written by `make`. */
function imageCase(name: string, file: string, make: (dir: string, file: string) => Buffer, reason: RegExp | null): Case {
  return {
    name,
    expect: reason ? 'error' : 'accepted',
    setup: (dir) => {
      const f = path.join(dir, file)
      fs.writeFileSync(f, make(dir, f))
      return ['denoise', f, path.join(dir, 'out.png')]
    },
    message: (dir) => (reason ? new RegExp(`image '${esc(path.join(dir, file))}'.*${reason.source}`) : /wrote/),
    outputs: ['out.png'],
  }
}

const rgbRows = (w: number, h: number, px: (x: number, y: number) => number[]) => Array.from({ length: h }, (_, y) => Buffer.from(Array.from({ length: w }, (_, x) => px(x, y)).flat()))

/** Every case; the order is the table's. */
export const cases: Case[] = [
  // Image files: empty, cut off, mislabelled, corrupt, absurd.
  imageCase('zero-byte PNG', 'empty.png', () => Buffer.alloc(0), /is empty \(0 bytes\)/),
  imageCase('zero-byte JPEG', 'empty.jpg', () => Buffer.alloc(0), /is empty \(0 bytes\)/),
  imageCase('zero-byte TIFF', 'empty.tif', () => Buffer.alloc(0), /is empty \(0 bytes\)/),
  imageCase('truncated PNG (60 % of the file)', 'cut.png', () => cut(greyPng(40, 40), 0.6), /PNG data is truncated/),
  imageCase('truncated JPEG (90 % of the file)', 'cut.jpg', (dir) => cut(written(path.join(dir, 'whole.jpg'), 3, 48, 64), 0.9), /JPEG data is truncated/),
  imageCase('truncated TIFF (60 % of the file)', 'cut.tif', () => cut(tiff(16, 16, 1, Buffer.alloc(256, 100)), 0.6), /TIFF data is truncated/),
  imageCase('text saved as .png (an HTML error page)', 'page.png', () => Buffer.from('<!DOCTYPE html><html>404</html>'), /not a PNG, JPEG, BMP or TIFF file \(it begins '<!DOCTYPE ht'\)/),
  imageCase('GIF data named .jpg', 'anim.jpg', () => Buffer.concat([Buffer.from('GIF89a'), Buffer.alloc(20)]), /holds GIF data; spikeir reads PNG, JPEG, BMP and TIFF/),
  imageCase('JPEG header, then garbage, named .tif', 'junk.tif', () => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(64, 0x41)]), /the JPEG data is truncated/),
  imageCase('PNG whose header declares 0 × 16 pixels', 'zero.png', () => png({ width: 0, height: 16, colorType: 0, bitDepth: 8, rows: [] }), /corrupt PNG data: .*Invalid image dimensions/),
  imageCase('PNG with a corrupt header checksum', 'crc.png', () => {
    const b = Buffer.from(greyPng(16, 16))
    b[16] = 0x7f // the IHDR width's top byte; its CRC no longer matches
    return b
  }, /corrupt PNG data: .*CRC error/),
  imageCase('PNG whose header declares 100000 × 100000 pixels', 'huge.png', () => png({ width: 100000, height: 100000, colorType: 0, bitDepth: 8, rows: [Buffer.alloc(10)] }), /too large|more than the/),
  imageCase('PNG whose palette is not whole RGB entries', 'plte.png', () => png({ width: 4, height: 4, colorType: 3, bitDepth: 8, palette: Buffer.from([0, 0, 0, 255]), rows: rgbRows(4, 4, () => [0]) }), /the PNG palette \(PLTE\) has 4 bytes; it must hold 1 to 256 RGB entries/),
  imageCase('PNG with transparent pixels', 'alpha.png', () => png({ width: 8, height: 8, colorType: 6, bitDepth: 8, rows: rgbRows(8, 8, (x) => [200, 100, 50, x < 4 ? 0 : 255]) }), /32 of 64 pixels are transparent/),
  imageCase('PNG with a fully opaque alpha channel (alpha dropped)', 'opaque.png', () => png({ width: 8, height: 8, colorType: 6, bitDepth: 8, rows: rgbRows(8, 8, (x, y) => [x * 30, y * 30, 90, 255]) }), null),
  imageCase('16-bit grey PNG (precision kept)', 'deep.png', () => png({ width: 12, height: 12, colorType: 0, bitDepth: 16, rows: rgbRows(12, 12, (x, y) => [(x * 20) & 0xff, y * 20]) }), null),
  imageCase('palette PNG (expanded)', 'palette.png', () => png({ width: 8, height: 8, colorType: 3, bitDepth: 8, palette: Buffer.from([0, 0, 0, 255, 255, 255, 120, 30, 200]), rows: rgbRows(8, 8, (x, y) => [(x + y) % 3]) }), null),
  imageCase('CMYK TIFF (converted to RGB)', 'cmyk.tif', () => tiff(8, 8, 5, Buffer.from(Array.from({ length: 256 }, (_, i) => (i * 37) % 256))), null),
  imageCase('PNG data named .tif (the content decides)', 'really-png.tif', () => greyPng(12, 12), null),
  imageCase('a 1 × 1 image (padded for the model)', 'dot.png', () => greyPng(1, 1), null),
  {
    name: 'image of 2 × 2 pixels for energy (needs 4 × 4)',
    expect: 'error',
    setup: (dir) => ['energy', '--image', write(dir, 'tiny.png', greyPng(2, 2))],
    message: (dir) => new RegExp(`--image '${esc(path.join(dir, 'tiny.png'))}' is 2×2 pixels; the estimate needs at least 4×4`),
    outputs: [],
  },
  {
    name: 'image file that does not exist',
    expect: 'error',
    setup: (dir) => ['denoise', path.join(dir, 'nope.png'), path.join(dir, 'out.png')],
    message: (dir) => new RegExp(`image '${esc(path.join(dir, 'nope.png'))}'.*No such file`),
    outputs: ['out.png'],
  },
  // Folders.
  {
    name: 'empty folder',
    expect: 'error',
    setup: (dir) => (fs.mkdirSync(path.join(dir, 'empty')), ['eval', '--data', path.join(dir, 'empty')]),
    message: (dir) => new RegExp(`no images \\(png, jpg, bmp, tif\\) in '${esc(path.join(dir, 'empty'))}': it is empty`),
    outputs: [],
  },
  {
    name: 'folder of non-images',
    expect: 'error',
    setup: (dir) => {
      write(dir, 'notes/a.txt', 'hello')
      write(dir, 'notes/b.csv', '1,2')
      write(dir, 'notes/._c.png', 'resource fork')
      return ['eval', '--data', path.join(dir, 'notes')]
    },
    message: (dir) => new RegExp(`no images .* in '${esc(path.join(dir, 'notes'))}': it holds 3 other entries \\(\\._c\\.png, a\\.txt, b\\.csv\\)`),
    outputs: [],
  },
  {
    name: 'folder that does not exist',
    expect: 'error',
    setup: (dir) => ['eval', '--data', path.join(dir, 'missing')],
    message: (dir) => new RegExp(`image folder '${esc(path.join(dir, 'missing'))}' does not exist`),
    outputs: [],
  },
  {
    name: 'folder with one corrupt image among good ones',
    expect: 'error',
    setup: (dir) => {
      const d = folder(dir, 'mixed', [32, 32])
      write(d, 'img9.png', cut(greyPng(32, 32), 0.5))
      return ['eval', '--data', d]
    },
    message: (dir) => new RegExp(`image '${esc(path.join(dir, 'mixed', 'img9.png'))}': the PNG data is truncated`),
    outputs: [],
  },
  {
    name: 'training images smaller than the patch (one of three)',
    expect: 'error',
    setup: (dir) => ['distill', '--no-hints', '--steps', '1', '--data', folder(dir, 'train', [64, 24, 64]), '--patch', '32', '--out', path.join(dir, 'run')],
    message: (dir) => new RegExp(`patch 32 is larger than image '${esc(path.join(dir, 'train', 'img1.png'))}' \\(24×24\\) and 0 other\\(s\\) of 3`),
    outputs: ['run'],
  },
  {
    name: '--patch larger than every image',
    expect: 'error',
    setup: (dir) => ['distill', '--no-hints', '--steps', '1', '--data', folder(dir, 'train', [20, 24]), '--patch', '48', '--out', path.join(dir, 'run')],
    message: () => /patch 48 is larger than every image \(2 of 2; .*\); use a patch of at most 20/,
    outputs: ['run'],
  },
  {
    name: 'paired folders with a missing partner',
    expect: 'error',
    setup: (dir) => {
      const a = folder(dir, 'in', [32, 32, 32])
      const b = folder(dir, 'gt', [32, 32])
      write(dir, 'recipe.json', JSON.stringify({ data: { kind: 'paired', inputDir: a, targetDir: b }, steps: 1, patch: 16, teacher: null }))
      return ['distill', '--config', path.join(dir, 'recipe.json'), '--out', path.join(dir, 'run')]
    },
    message: (dir) => new RegExp(`paired folders '${esc(path.join(dir, 'in'))}' \\(inputs\\) and '${esc(path.join(dir, 'gt'))}' \\(targets\\) do not match: without target 1 \\(img2\\.png\\), without input none`),
    outputs: ['run'],
  },
  {
    name: 'paired folders with mismatched sizes',
    expect: 'error',
    setup: (dir) => {
      const a = folder(dir, 'in', [32, 40])
      const b = folder(dir, 'gt', [32, 32])
      write(dir, 'recipe.json', JSON.stringify({ data: { kind: 'paired', inputDir: a, targetDir: b }, steps: 1, patch: 16, teacher: null }))
      return ['distill', '--config', path.join(dir, 'recipe.json'), '--out', path.join(dir, 'run')]
    },
    message: (dir) => new RegExp(`paired images differ in size: input '${esc(path.join(dir, 'in', 'img1.png'))}' is 1×40×40 .* but target '${esc(path.join(dir, 'gt', 'img1.png'))}' is 1×32×32`),
    outputs: ['run'],
  },
  // Tasks and their options (refused by name before any model or data is read).
  ...(
    [
      ['--task that does not exist', (dir: string) => ['eval', '--task', 'sharpen', '--data', folder(dir, 'val', [16])], /unknown --task 'sharpen' \(denoise, jpeg, derain, dehaze, deblur\)/],
      ['--quality with --task denoise', (dir: string) => ['eval', '--quality', '10', '--data', folder(dir, 'val', [16])], /--quality does not apply to --task denoise \(its options: --sigma\)/],
      ['--sigma with --task jpeg', (dir: string) => ['eval', '--task', 'jpeg', '--sigma', '25', '--data', folder(dir, 'val', [16])], /--sigma does not apply to --task jpeg \(its options: --quality\)/],
      ['--quality 0', (dir: string) => ['eval', '--task', 'jpeg', '--quality', '0', '--data', folder(dir, 'val', [16])], /--quality must be an integer ≥ 1 and ≤ 100, got 0/],
      ['--blur 0', (dir: string) => ['eval', '--task', 'deblur', '--blur', '0', '--data', folder(dir, 'val', [16])], /--blur must be a number > 0 and ≤ 32, got 0/],
      ['a grey model for an RGB task (--task derain)', (dir: string) => ['eval', '--task', 'derain', '--model', bundled, '--data', folder(dir, 'val', [16])], /--task derain restores RGB images \(3 channels\), but the model has 1/],
      ['options without a bundled model (eval --task jpeg --quality 20, no --model)', (dir: string) => ['eval', '--task', 'jpeg', '--quality', '20', '--data', folder(dir, 'val', [16])], /--task jpeg has no bundled model for --quality 20; pass --model CKPT/],
    ] as [string, (dir: string) => string[], RegExp][]
  ).map(([name, setup, message]): Case => ({ name, expect: 'error', setup, message: () => message, outputs: [] })),
  {
    name: 'eval --task deblur --blur-kernel motion without --model',
    expect: 'error',
    setup: (dir) => ['eval', '--task', 'deblur', '--blur-kernel', 'motion', '--data', folder(dir, 'val', [16]), '--json'],
    message: () => /spikeir eval: --task deblur has no bundled model for --blur-kernel motion --blur 15; pass --model CKPT/,
    outputs: [],
  },
  {
    name: '--blur with --task dehaze (which takes no options)',
    expect: 'error',
    setup: (dir) => ['distill', '--task', 'dehaze', '--blur', '2', '--no-hints', '--steps', '1', '--data', folder(dir, 'train', [32]), '--out', path.join(dir, 'run')],
    message: () => /--blur does not apply to --task dehaze \(it takes no options\)/,
    outputs: ['run'],
  },
  {
    name: 'distill --channels 2',
    expect: 'error',
    setup: (dir) => ['distill', '--channels', '2', '--no-hints', '--steps', '1', '--data', folder(dir, 'train', [32]), '--out', path.join(dir, 'run')],
    message: () => /--channels must be 1 \(grey\) or 3 \(RGB\), got 2/,
    outputs: ['run'],
  },
  {
    name: 'recipe naming an unknown task',
    expect: 'error',
    setup: (dir) => ['distill', '--config', write(dir, 'recipe.json', JSON.stringify({ task: 'sharpen' })), '--out', path.join(dir, 'run')],
    message: (dir) => new RegExp(`--config ${esc(path.join(dir, 'recipe.json'))}: task must be one of denoise, jpeg, derain, dehaze, deblur, got "sharpen"`),
    outputs: ['run'],
  },
  // Safetensors (a bare file is read as DnCNN weights of the depth it holds; a checkpoint names its own).
  ...(
    [
      ['safetensors with a header length beyond the file', () => Buffer.concat([Buffer.from([0, 0x10, 0, 0, 0, 0, 0, 0]), Buffer.from('{}')]), /the header claims 4096 bytes but only 2 follow the length field/],
      ['safetensors whose header is not JSON', () => Buffer.concat([Buffer.from([5, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{oops')]), /the JSON header is malformed/],
      ['safetensors that is not one at all (a PNG)', () => greyPng(8, 8), /the header claims \d+ bytes but only \d+ follow|not a safetensors file/],
      ['safetensors with an I64 tensor', () => safetensors([{ name: 'layers.0.weight', dtype: 'I64', shape: [2], bytes: Buffer.alloc(16) }]), /tensor 'layers\.0\.weight' has dtype I64; only floating-point tensors/],
      ['safetensors cut short (data missing)', () => cut(safetensors([{ name: 'w', dtype: 'F32', shape: [64], bytes: f32(Array(64).fill(1)) }]), 0.8), /do not cover the data section exactly|run past the data/],
      ['safetensors holding NaN', () => safetensors([{ name: 'w', dtype: 'F32', shape: [2], bytes: f32([1, NaN]) }]), /tensor 'w' holds NaN or infinite values/],
      ['safetensors of another model, read as DnCNN weights', () => safetensors([{ name: 'encoder.weight', dtype: 'F32', shape: [2], bytes: f32([1, 2]) }]), /has no sidecar, so it is read as DnCNN weights, but it has 0 tensors named layers\.\{i\}\.weight \(a DnCNN has at least 2; the file holds encoder\.weight\)/],
      ['DnCNN weights with one wrong shape', () => dncnnWithWrongShape(), /has no sidecar, so it is read as DnCNN weights, but layers\.0\.weight is \[64, 1, 3, 2\], not a 3×3 conv \[out, in, 3, 3\]/],
    ] as [string, () => Buffer, RegExp][]
  ).map(
    ([name, make, reason]): Case => ({
      name,
      expect: 'error',
      setup: (dir) => ['eval', '--model', write(dir, 'w.safetensors', make()), '--data', folder(dir, 'val', [16])],
      message: (dir) => new RegExp(`'${esc(path.join(dir, 'w.safetensors'))}'.*${reason.source}`),
      outputs: [],
    }),
  ),
  {
    name: 'checkpoint with a tensor missing',
    expect: 'error',
    setup: (dir) => ['eval', '--model', studentCopy(dir, 'ck', (ts) => ts.filter((t) => t.name !== 'output.weight')), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'ck.json'))}': its model file .* does not fit this SpikerIR: .*missing names: output\\.weight`),
    outputs: [],
  },
  {
    name: 'checkpoint with an extra tensor',
    expect: 'error',
    setup: (dir) => ['eval', '--model', studentCopy(dir, 'ck', (ts) => [...ts, { name: 'extra.weight', shape: [1], data: new Float32Array([1]) }]), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'ck.json'))}': .*unknown names: extra\\.weight`),
    outputs: [],
  },
  {
    name: 'checkpoint with a wrongly shaped tensor',
    expect: 'error',
    setup: (dir) => ['eval', '--model', studentCopy(dir, 'ck', (ts) => ts.map((t) => (t.name === 'output.weight' ? { ...t, shape: [t.data.length] } : t))), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'ck.json'))}': .*wrong shapes: output\\.weight: file \\[\\d+\\] vs model \\[`),
    outputs: [],
  },
  // Sidecars.
  {
    name: 'sidecar that is not JSON',
    expect: 'error',
    setup: (dir) => ['eval', '--model', write(dir, 'ck.json', '{"format": "spikeir-checkpoint", '), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint: '${esc(path.join(dir, 'ck.json'))}' is not valid JSON`),
    outputs: [],
  },
  {
    name: 'sidecar with wrong types (step "ten", model 5)',
    expect: 'error',
    setup: (dir) => ['eval', '--model', studentCopy(dir, 'ck', (ts) => ts, (s) => Object.assign(s, { step: 'ten', model: 5 })), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'ck.json'))}': "step" must be an integer ≥ 0, got "ten"; "model" must be a file name beside the sidecar, got 5`),
    outputs: [],
  },
  {
    name: 'sidecar of something else (a package.json)',
    expect: 'error',
    setup: (dir) => ['eval', '--model', write(dir, 'package.json', JSON.stringify({ name: 'x', version: '1.0.0' })), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'package.json'))}' is not a spikeir checkpoint \\(its "format" is missing`),
    outputs: [],
  },
  {
    name: 'sidecar with an unknown model kind',
    expect: 'error',
    setup: (dir) => ['eval', '--model', studentCopy(dir, 'ck', (ts) => ts, (s) => ((s['config'] as Record<string, unknown>)['model'] = { kind: 'vgg', options: {} })), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'ck.json'))}': config\\.model\\.kind must be one of spikerir, unet, dncnn, prenet, lkdnet, gcanet, got "vgg"`),
    outputs: [],
  },
  {
    name: 'sidecar with T = 0 in its model options',
    expect: 'error',
    setup: (dir) => ['eval', '--model', studentCopy(dir, 'ck', (ts) => ts, (s) => ((s['config'] as Record<string, unknown>)['model'] = { kind: 'spikerir', options: { width: 8, timeSteps: 0 } })), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'ck.json'))}': config\\.model\\.options\\.timeSteps must be an integer ≥ 1 and ≤ 64, got 0`),
    outputs: [],
  },
  {
    name: 'sidecar naming a model file that does not exist',
    expect: 'error',
    setup: (dir) => ['eval', '--model', studentCopy(dir, 'ck', (ts) => ts, (s) => (s['model'] = 'gone.safetensors')), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'ck.json'))}': its model file '${esc(path.join(dir, 'gone.safetensors'))}' does not exist`),
    outputs: [],
  },
  {
    name: 'checkpoint of another model kind (--resume a U-Net into distill)',
    expect: 'error',
    setup: (dir) => ['distill', '--no-hints', '--steps', '2', '--resume', checkpointOf(dir, 'teacher', 'unet', { width: 4 }), '--out', path.join(dir, 'run')],
    message: (dir) => new RegExp(`--resume '${esc(path.join(dir, 'teacher.json'))}' is a checkpoint of a unet model, but this run trains a spikerir`),
    outputs: ['run'],
  },
  {
    name: '--init with a U-Net checkpoint into distill',
    expect: 'error',
    setup: (dir) => ['distill', '--no-hints', '--steps', '2', '--init', checkpointOf(dir, 'teacher', 'unet', { width: 4 }), '--out', path.join(dir, 'run')],
    message: (dir) => new RegExp(`--init '${esc(path.join(dir, 'teacher.json'))}' holds a unet model, but this run trains a spikerir`),
    outputs: ['run'],
  },
  {
    name: '--init with a student of another width',
    expect: 'error',
    setup: (dir) => ['distill', '--no-hints', '--steps', '2', '--init', checkpointOf(dir, 'wide', 'spikerir', { width: 16, timeSteps: 4 }), '--out', path.join(dir, 'run')],
    message: (dir) => new RegExp(`init: checkpoint '${esc(path.join(dir, 'wide.json'))}': its model file .* does not fit this SpikerIR`),
    outputs: ['run'],
  },
  {
    name: '--init with a student of more blocks than --blocks',
    expect: 'error',
    setup: (dir) => ['distill', '--no-hints', '--steps', '2', '--blocks', '1,1,1,1,1,1', '--init', checkpointOf(dir, 'deep', 'spikerir', { width: 8, timeSteps: 4, blocks: [1, 1, 2, 2, 1, 1] }), '--out', path.join(dir, 'run')],
    message: () => /init: .*a student with blocks \[1, 1, 2, 2, 1, 1\] does not grow into one with blocks \[1, 1, 1, 1, 1, 1\] \(each level may only gain blocks\)/,
    outputs: ['run'],
  },
  {
    name: 'sidecar that says SpikerIR over U-Net weights',
    expect: 'error',
    setup: (dir) => {
      const file = checkpointOf(dir, 'ck', 'unet', { width: 4 })
      const s = JSON.parse(fs.readFileSync(file, 'utf8'))
      s.config.model = { kind: 'spikerir', options: { width: 8 } }
      fs.writeFileSync(file, JSON.stringify(s))
      return ['eval', '--model', file, '--data', folder(dir, 'val', [16])]
    },
    message: (dir) => new RegExp(`checkpoint '${esc(path.join(dir, 'ck.json'))}': its model file .* does not fit this SpikerIR: loadStateDict: `),
    outputs: [],
  },
  {
    name: '--model that is neither a sidecar nor safetensors',
    expect: 'error',
    setup: (dir) => ['eval', '--model', write(dir, 'model.pt', 'pickle'), '--data', folder(dir, 'val', [16])],
    message: (dir) => new RegExp(`model '${esc(path.join(dir, 'model.pt'))}' is neither a checkpoint sidecar \\(\\.json\\) nor a safetensors file`),
    outputs: [],
  },
  // Numeric options, checked by the flag parser before any work.
  ...(
    [
      [['distill', '--sigma', '-1'], /--sigma must be a number ≥ 0 and ≤ 255, got -1/],
      [['distill', '--time-steps', '0'], /--time-steps must be an integer ≥ 1 and ≤ 64, got 0/],
      [['distill', '--width', '0'], /--width must be an integer ≥ 1 and ≤ 256, got 0/],
      [['distill', '--blocks', '1,1,0,1,1,1'], /--blocks must be six block counts E1,E2,E3,D3,D2,D1, each 1–64 \(e\.g\. 1,1,3,3,1,1\), got '1,1,0,1,1,1'/],
      [['distill', '--blocks', '1,1,2'], /--blocks must be six block counts .*got '1,1,2'/],
      [['distill', '--neuron', 'alif'], /--neuron must be lif, plif or if, got 'alif'/],
      [['distill', '--reset', 'zero'], /--reset must be hard or soft, got 'zero'/],
      [['distill', '--batch', '0'], /--batch must be an integer ≥ 1 and ≤ 4096, got 0/],
      [['distill', '--lr', '0'], /--lr must be a number > 0 and ≤ 1, got 0/],
      [['distill', '--lr', '-1e-3'], /--lr must be a number > 0 and ≤ 1, got -0\.001/],
      [['distill', '--steps', '1.5'], /--steps must be an integer ≥ 1, got 1\.5/],
      [['distill', '--patch', '30'], /--patch must be a multiple of 4/],
      [['distill', '--patch', '100000'], /--patch must be an integer ≥ 4 and ≤ 4096, got 100000/],
      [['distill', '--seed', '-3'], /--seed must be an integer ≥ 0, got -3/],
      [['distill', '--gamma', '-0.1'], /--gamma must be a number ≥ 0, got -0\.1/],
      [['train-teacher', '--arch', 'dncnn', '--depth', '1'], /--depth must be an integer ≥ 2 and ≤ 256, got 1/],
      [['eval', '--sigma', 'abc'], /--sigma must be a number ≥ 0 and ≤ 255, got 'abc'/],
      [['eval', '--data', '.', '--limit', '0'], /--limit must be an integer ≥ 1, got 0/],
      [['demo', '--steps', '0'], /--steps must be an integer ≥ 1, got 0/],
      [['distill', '--out', '--steps', '3'], /--out needs a value/],
    ] as [string[], RegExp][]
  ).map(
    ([args, message]): Case => ({
      name: `\`${args.join(' ')}\``,
      expect: 'error',
      // Training commands get an output folder, which must not appear.
      setup: (dir) => (args[0] === 'eval' || args.includes('--out') ? args : [...args, '--out', path.join(dir, 'run')]),
      message: () => message,
      outputs: ['run'],
    }),
  ),
  ...(
    [
      ['recipe (--config) that is not JSON', 'batch: 8', /--config .*recipe\.json: Unexpected token/],
      ['recipe with batch 0', JSON.stringify({ batch: 0 }), /--config .*recipe\.json: batch must be an integer ≥ 1 and ≤ 4096, got 0/],
      ['recipe with a string learning rate', JSON.stringify({ lr: 'fast' }), /--config .*recipe\.json: lr must be a number > 0 and ≤ 1, got 'fast'/],
      ['recipe with T = 0', JSON.stringify({ model: { kind: 'spikerir', options: { timeSteps: 0 } } }), /--config .*recipe\.json: model\.options\.timeSteps must be an integer ≥ 1 and ≤ 64, got 0/],
      ['recipe with an unknown key', JSON.stringify({ epochs: 3 }), /--config .*recipe\.json: unknown keys epochs/],
    ] as [string, string, RegExp][]
  ).map(
    ([name, text, message]): Case => ({
      name,
      expect: 'error',
      setup: (dir) => ['distill', '--config', write(dir, 'recipe.json', text), '--out', path.join(dir, 'run')],
      message: () => message,
      outputs: ['run'],
    }),
  ),
  // Outputs that cannot be written, found before any work.
  {
    name: 'denoise OUT inside a path that is a file',
    expect: 'error',
    setup: (dir) => ['denoise', write(dir, 'in.png', greyPng(16, 16)), path.join(write(dir, 'blocker', 'x'), 'out.png')],
    message: (dir) => new RegExp(`OUT '${esc(path.join(dir, 'blocker', 'out.png'))}': folder '.*' cannot be created: '${esc(path.join(dir, 'blocker'))}' is a file, not a folder`),
    outputs: ['blocker/out.png'],
  },
  {
    name: 'denoise OUT with an unknown image extension',
    expect: 'error',
    setup: (dir) => ['denoise', write(dir, 'in.png', greyPng(16, 16)), path.join(dir, 'out.gif')],
    message: () => /OUT '.*out\.gif' must end in \.png, \.jpg, \.bmp or \.tif/,
    outputs: ['out.gif'],
  },
  {
    name: 'distill --out under a file',
    expect: 'error',
    setup: (dir) => ['distill', '--no-hints', '--steps', '1', '--out', path.join(write(dir, 'blocker', 'x'), 'run')],
    message: (dir) => new RegExp(`--out '${esc(path.join(dir, 'blocker', 'run'))}' cannot be created: '${esc(path.join(dir, 'blocker'))}' is a file, not a folder`),
    outputs: ['blocker/run'],
  },
  {
    name: 'export OUT under a file',
    expect: 'error',
    setup: (dir) => ['export', bundled, path.join(write(dir, 'blocker', 'x'), 'ship.json')],
    message: (dir) => new RegExp(`OUT '${esc(path.join(dir, 'blocker', 'ship.json'))}': folder .* cannot be created: '${esc(path.join(dir, 'blocker'))}' is a file`),
    outputs: ['blocker/ship.json', 'blocker/ship.safetensors'],
  },
]

/** DnCNN-S weights (zeros) with the first conv's kernel cut to 3 × 2. */
function dncnnWithWrongShape(): Buffer {
  const tensors: { name: string; dtype: string; shape: number[]; bytes: Buffer }[] = []
  for (let i = 0; i < 17; i++) {
    const inC = i === 0 ? 1 : 64
    const outC = i === 16 ? 1 : 64
    const shape = [outC, inC, 3, i === 0 ? 2 : 3]
    tensors.push({ name: `layers.${i}.weight`, dtype: 'F32', shape, bytes: Buffer.alloc(4 * shape.reduce((a, b) => a * b)) })
    tensors.push({ name: `layers.${i}.bias`, dtype: 'F32', shape: [outC], bytes: Buffer.alloc(4 * outC) })
  }
  return safetensors(tensors)
}

/** What a run of the CLI gave. */
export interface Outcome {
  status: number | null
  stdout: string
  stderr: string
  /** Set when the process did not finish in time (a hang). */
  timedOut: boolean
}

/** Runs the CLI with `args` (at most `timeoutMs`). */
export function runCli(args: string[], timeoutMs = 120_000): Outcome {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: timeoutMs })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', timedOut: r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT' }
}

/** Files whose names mark an interrupted atomic write, anywhere under `dir`. */
export function temporaries(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[]).filter((f) => /\.tmp-\d+$/.test(f))
}

/** The message a case printed: its stderr, trimmed, with the case folder shown as `$DIR`. */
export function shownMessage(o: Outcome, dir: string): string {
  const text = (o.status === 0 ? o.stdout : o.stderr).trim().split('\n').filter((l) => l.trim() !== '').pop() ?? ''
  return text.split(dir).join('$DIR').split(root).join('.')
}
