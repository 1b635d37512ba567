/**
 * A minimal PNG encoder (8-bit grey or RGB, no interlace) so the report can
 * embed images as `data:` URIs without writing temporary files. Compression
 * is Node's zlib; the rest is the few chunks the format requires.
 *
 * @module
 */
import { deflateSync } from 'node:zlib'

const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

/** CRC-32 (ISO 3309, as PNG chunks use it). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length)
  out.writeUInt32BE(data.length, 0)
  out.write(type, 4, 'ascii')
  out.set(data, 8)
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length)
  return out
}

/**
 * Encodes planar float data in [0, 1] (`[C, H, W]`, C = 1 or 3, values
 * clipped and rounded to 8 bits) as a PNG file.
 */
export function encodePng(data: ArrayLike<number>, channels: 1 | 3, height: number, width: number): Buffer {
  if (data.length !== channels * height * width) {
    throw new Error(`encodePng: ${data.length} values for a ${channels}×${height}×${width} image`)
  }
  // Each row starts with filter type 0 (none); samples are interleaved per pixel.
  const rows = Buffer.alloc(height * (1 + width * channels))
  const plane = height * width
  for (let y = 0; y < height; y++) {
    const row = y * (1 + width * channels)
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) {
        const v = data[c * plane + y * width + x]!
        rows[row + 1 + x * channels + c] = Math.round(255 * (v < 0 ? 0 : v > 1 ? 1 : v))
      }
    }
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header[8] = 8 // bit depth
  header[9] = channels === 1 ? 0 : 2 // colour type: grey or RGB
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', deflateSync(rows)), chunk('IEND', new Uint8Array())])
}

/** The PNG as a `data:` URI for an `<img src>`. */
export function pngDataUri(data: ArrayLike<number>, channels: 1 | 3, height: number, width: number): string {
  return `data:image/png;base64,${encodePng(data, channels, height, width).toString('base64')}`
}
