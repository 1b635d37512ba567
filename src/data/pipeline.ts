/**
 * Training and evaluation data (DESIGN §6): random patches with fresh
 * degradation per batch, made in Rust on a background thread, and whole-image
 * evaluation pairs with noise from a fixed seed.
 *
 * Batch `step` depends only on `(seed, step)`, so a run resumed at
 * `startStep` sees exactly the batches the uninterrupted run would have seen.
 *
 * @module
 */
import { Tensor, binding } from '../tensor'

/** Clean images of a folder, chosen by extension (a `MANIFEST.tsv` and other files are ignored). */
export interface FolderSource {
  kind: 'folder'
  dir: string
  /** 1 (grey; luma of colour files) or 3 (RGB). By default as stored; all images must then agree. */
  channels?: 1 | 3
  /**
   * File stems (names without extension, e.g. `'2092'`) to leave out, such as
   * test scenes hidden in a training set. An entry that names no image of the
   * folder is an error, so a typo cannot let a test image into training.
   */
  exclude?: string[]
}

/** Real input/target pairs: files of the same name in both folders (deraining, dehazing, …). */
export interface PairedSource {
  kind: 'paired'
  inputDir: string
  targetDir: string
  /** 1 or 3; by default as stored. */
  channels?: 1 | 3
}

/**
 * Synthetic grey dead-leaves images: overlapping disks and rectangles with
 * power-law sizes, random grey levels and faint texture, deterministic from `seed`.
 */
export interface DeadLeavesSource {
  kind: 'deadLeaves'
  count: number
  /** Side of each square image, in pixels. */
  size: number
  /** Default 0. */
  seed?: number
}

/** Where images come from. */
export type DataSource = FolderSource | PairedSource | DeadLeavesSource

/** A fixed value, or a range `[min, max]` drawn from uniformly per patch (per image in {@link evalPairs}). */
export type ValueRange = number | [number, number]

/**
 * Rain streaks rendered onto clean images, in the style of Rain100L (light
 * rain, one direction per image). Each streak is a Gaussian drop motion-blurred
 * along its fall line; the grey streak layer is added to every channel and
 * the result clipped to [0, 1]. Every option has a default fitted to
 * Rain100L's pairs (coverage and streak intensity).
 */
export interface RainDegradation {
  kind: 'rain'
  /** Streaks per 10 000 pixels (0–500). Default [14, 36]. */
  density?: ValueRange
  /** Mean streak length in pixels (1–200); each streak is 0.6–1.4 times it. Default [15, 60]. */
  length?: ValueRange
  /** Fall direction in degrees from vertical (−90–90), one per image; positive leans the lower end right. Default [−35, 35]. */
  angle?: ValueRange
  /** Each streak's angle differs from the image's by up to ± this many degrees (0–45). Default 2. */
  angleJitter?: number
  /** Streak width, full width at half maximum in pixels (0.5–10). Default [1.3, 2.5]. */
  width?: ValueRange
  /** Peak added intensity of a streak (0–1); each streak is 0.5–1.5 times it. Default [0.07, 0.2]. */
  brightness?: ValueRange
  /** `add`: min(B + R, 1) (Rain100L's, the default); `screen`: 1 − (1 − B)(1 − R). */
  blend?: 'add' | 'screen'
}

/**
 * Haze by the atmospheric scattering model I = J·t + A·(1 − t), t = e^(−β·d),
 * with a random smooth depth map d in [0.15, 1] (a linear trend plus value noise).
 * Defaults are fitted to SOTS-indoor.
 */
export interface HazeDegradation {
  kind: 'haze'
  /** Scattering coefficient β (0–10): the transmission at the farthest depth is e^(−β). Default [0.5, 1.6]. */
  beta?: ValueRange
  /** Airlight A (0–1), near white. Default [0.94, 1]. */
  airlight?: ValueRange
  /** Each colour channel's airlight differs from A by up to ± this (0–0.5). Default 0.005. */
  airlightJitter?: number
  /** Feature size of the depth map in pixels (4–100000), in absolute pixels so a patch sees a slice of a whole image's depth. Default 256. */
  depthScale?: number
}

/**
 * Linear motion blur: a line kernel of `length` pixels (1–255) at `angle`
 * degrees counter-clockwise from horizontal (uniform over [0, 180) per patch
 * when absent). Each pixel of the kernel weighs the length of the line inside it.
 */
export interface MotionBlurDegradation {
  kind: 'motionBlur'
  length: ValueRange
  angle?: ValueRange
}

/** Defocus blur: a uniform disk kernel of `radius` pixels (0–50; 0 leaves the image as is). */
export interface DefocusDegradation {
  kind: 'defocus'
  radius: ValueRange
}

/**
 * How inputs are made from clean images (for paired sources it is applied on
 * top of the real input; usually `none`).
 * - `awgn`: noisy = clean + N(0, (σ/255)²), not clipped; a fixed `sigma`, or σ
 *   drawn uniformly from [`sigmaMin`, `sigmaMax`] per patch (blind training).
 * - `blur`: Gaussian blur of standard deviation `sigma` pixels.
 * - `jpeg`: JPEG encode and decode at `quality` (1–100).
 * - `rain`, `haze`, `motionBlur`, `defocus`: synthetic degradations for tasks
 *   without published training pairs, random per patch and deterministic
 *   from the seed. Blurs reflect the image at its borders.
 *
 * An option that the kind does not take is an error, as is a value out of its range.
 */
export type Degradation =
  | { kind: 'none' }
  | { kind: 'awgn'; sigma: number }
  | { kind: 'awgn'; sigmaMin: number; sigmaMax: number }
  | { kind: 'blur'; sigma: number }
  | { kind: 'jpeg'; quality: number }
  | RainDegradation
  | HazeDegradation
  | MotionBlurDegradation
  | DefocusDegradation

/** Options of {@link DataLoader}. */
export interface DataLoaderOptions {
  source: DataSource
  /** Side of the square patches, in pixels (at most the smallest image side). */
  patch: number
  /** Patches per batch. */
  batch: number
  /** One of the 8 flips/rotations per patch, at random. Default true. */
  augment?: boolean
  /** Default `{ kind: 'none' }`. */
  degradation?: Degradation
  /** Seed of every random choice (image, position, flip, noise). Default 0. */
  seed?: number
  /** The step of the first batch, to resume a run. Default 0. */
  startStep?: number
  /** Batches made ahead on the background thread (1–16). Default 3. */
  prefetch?: number
}

/** A training batch: `[B, C, P, P]` tensors and the step it belongs to. */
export interface Batch {
  input: Tensor
  target: Tensor
  step: number
}

/**
 * Random training patches. Images are decoded once (in parallel) and kept in
 * memory; cropping, flips and noise run on a Rust thread ahead of training.
 * Call {@link DataLoader.dispose} to stop the thread and free the images.
 *
 * @example
 * ```ts
 * // A folder of photos is `{ kind: 'folder', dir: 'train400', channels: 1 }`.
 * const loader = new DataLoader({
 *   source: { kind: 'deadLeaves', count: 16, size: 64, seed: 1 },
 *   patch: 40, batch: 8, degradation: { kind: 'awgn', sigma: 25 }, seed: 1,
 * })
 * const { input, target, step } = loader.next() // [8, 1, 40, 40] each, step 0
 * loader.dispose()
 * ```
 */
export class DataLoader {
  private native: InstanceType<typeof binding.NativeDataLoader> | null

  /** Throws (naming the option or the file) on bad options, unreadable images or a patch larger than an image. */
  constructor(options: DataLoaderOptions) {
    this.native = binding.NativeDataLoader.create(options)
  }

  /** The next batch as device tensors `[B, C, P, P]`; the caller disposes them (or uses a scope). */
  next(): Batch {
    if (this.native === null) throw new Error('DataLoader.next: this loader was disposed')
    const b = this.native.next()
    return {
      input: Tensor.fromData(b.input, b.shape),
      target: Tensor.fromData(b.target, b.shape),
      step: b.step,
    }
  }

  /** Stops the background thread and frees the images. Idempotent. */
  dispose(): void {
    this.native?.dispose()
    this.native = null
  }
}

/** Options of {@link evalPairs}. */
export interface EvalPairsOptions {
  source: DataSource
  /** Default `{ kind: 'none' }`. */
  degradation?: Degradation
  /** Image i is degraded with a seed derived from (seed, i), the same on every run. Default 0. */
  seed?: number
}

/** One whole evaluation image: `[1, C, H, W]` tensors. */
export interface EvalPair {
  /** File name (or `deadleaves_00000`, … for synthetic images). */
  name: string
  input: Tensor
  target: Tensor
}

/**
 * Whole-image evaluation pairs, in file order (the Set12/BSD68 protocol: the
 * noise of each image comes from a fixed seed, so every run sees the same noisy set).
 */
export function evalPairs(options: EvalPairsOptions): EvalPair[] {
  return binding.evalPairs(options).map((p) => ({
    name: p.name,
    input: Tensor.fromData(p.input.data, [1, p.input.channels, p.input.height, p.input.width]),
    target: Tensor.fromData(p.target.data, [1, p.target.channels, p.target.height, p.target.width]),
  }))
}
