/**
 * Files: images and safetensors, read into and written from tensors.
 *
 * @module
 */
import { Tensor, binding, nativeOf } from './tensor'

/** Reads an image (PNG, JPEG, BMP, TIFF) as a `[1, C, H, W]` tensor in [0, 1]. */
export function readImage(path: string, options: { channels?: 1 | 3 } = {}): Tensor {
  const img = binding.readImage(path, options.channels)
  return Tensor.fromData(img.data, [1, img.channels, img.height, img.width])
}

/** Writes a `[1, C, H, W]` or `[C, H, W]` tensor (C = 1 or 3) as an 8-bit PNG, clipped to [0, 1]. */
export function writeImage(path: string, image: Tensor): void {
  const s = image.shape
  const [c, h, w] = s.length === 4 && s[0] === 1 ? s.slice(1) : s
  if (s.length < 3 || s.length > 4 || (s.length === 4 && s[0] !== 1) || (c !== 1 && c !== 3)) {
    throw new Error(`writeImage: expected [1, C, H, W] or [C, H, W] with C = 1 or 3, got [${s.join(', ')}]`)
  }
  binding.writePng(path, { channels: c!, height: h!, width: w!, data: image.toFloat32Array() })
}

/** Image files of a folder, sorted by name; other files (such as a MANIFEST.tsv) are ignored. */
export function listImages(dir: string): string[] {
  return binding.listImages(dir)
}

/** A named host-side array, as stored in a safetensors file. */
export interface NamedArray {
  name: string
  shape: number[]
  data: Float32Array
}

/** Reads every tensor of a safetensors file (F32), with its string metadata. */
export function readSafetensors(path: string): { tensors: NamedArray[]; metadata: Record<string, string> } {
  return binding.readSafetensors(path)
}

/**
 * Writes tensors to a safetensors file. The write goes to a temporary file
 * that is renamed over `path`, so an interrupted write never corrupts the
 * previous file; NaN or infinite values are refused.
 */
export function writeSafetensors(path: string, tensors: Map<string, Tensor> | NamedArray[], metadata: Record<string, string> = {}): void {
  const arrays: NamedArray[] = Array.isArray(tensors)
    ? tensors
    : [...tensors].map(([name, t]) => ({ name, shape: t.shape, data: t.toFloat32Array() }))
  binding.writeSafetensors(path, arrays, metadata)
}

/** @internal */
export { nativeOf }
