/**
 * Files: images and safetensors, read into and written from tensors.
 *
 * @module
 */
import { Tensor, binding, nativeOf } from './tensor'

/**
 * Reads an image (PNG, JPEG, BMP, TIFF; the content decides, not the
 * extension) as a `[1, C, H, W]` tensor in [0, 1]. By rule: 16-bit samples
 * keep their precision, palettes are expanded, CMYK becomes RGB, a fully
 * opaque alpha channel is dropped; transparent pixels, truncated or corrupt
 * files and images over 64 megapixels are errors that name the file.
 *
 * @example
 * ```ts
 * writeImage('ramp.png', Tensor.rand([1, 3, 16, 24], { seed: 1 }))
 * const grey = readImage('ramp.png', { channels: 1 })
 * grey.shape // [1, 1, 16, 24]: colour read as luma
 * ```
 */
export function readImage(path: string, options: { channels?: 1 | 3 } = {}): Tensor {
  const img = binding.readImage(path, options.channels)
  return Tensor.fromData(img.data, [1, img.channels, img.height, img.width])
}

/**
 * Writes a `[1, C, H, W]` or `[C, H, W]` tensor (C = 1 or 3) as an 8-bit
 * image clipped to [0, 1], atomically, in the format of the extension: `.png`,
 * `.jpg`/`.jpeg` (quality 95), `.bmp`, `.tif`/`.tiff`.
 */
export function writeImage(path: string, image: Tensor): void {
  const s = image.shape
  const [c, h, w] = s.length === 4 && s[0] === 1 ? s.slice(1) : s
  if (s.length < 3 || s.length > 4 || (s.length === 4 && s[0] !== 1) || (c !== 1 && c !== 3)) {
    throw new Error(`writeImage: expected [1, C, H, W] or [C, H, W] with C = 1 or 3, got [${s.join(', ')}]`)
  }
  binding.writeImage(path, { channels: c!, height: h!, width: w!, data: image.toFloat32Array() })
}

/**
 * Image files of a folder (by extension, hidden files skipped), sorted by
 * name; other files (such as a MANIFEST.tsv) are ignored. A folder without
 * images is an error that says what it holds.
 */
export function listImages(dir: string): string[] {
  return binding.listImages(dir)
}

/** A named host-side array, as stored in a safetensors file. */
export interface NamedArray {
  name: string
  shape: number[]
  data: Float32Array
}

/**
 * Reads every tensor of a safetensors file as f32 (F16, BF16 and F64 are
 * converted; integer dtypes, NaN and infinities are refused), with its
 * string metadata.
 */
export function readSafetensors(path: string): { tensors: NamedArray[]; metadata: Record<string, string> } {
  return binding.readSafetensors(path)
}

/**
 * Writes tensors to a safetensors file. The write goes to a temporary file
 * that is renamed over `path`, so an interrupted write never corrupts the
 * previous file; NaN or infinite values are refused.
 *
 * @example
 * ```ts
 * writeSafetensors('w.safetensors', new Map([['conv.weight', Tensor.ones([4, 1, 3, 3])]]), { note: 'demo' })
 * const { tensors, metadata } = readSafetensors('w.safetensors')
 * tensors[0]!.name // 'conv.weight'
 * metadata['note'] // 'demo'
 * ```
 */
export function writeSafetensors(path: string, tensors: Map<string, Tensor> | NamedArray[], metadata: Record<string, string> = {}): void {
  const arrays: NamedArray[] = Array.isArray(tensors)
    ? tensors
    : [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.toFloat32Array() }))
  binding.writeSafetensors(path, arrays, metadata)
}

/** @internal */
export { nativeOf }
