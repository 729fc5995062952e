/**
 * Loads the native addon (`build/Release/onednn_backend.node`, built by node-gyp from
 * binding.gyp, or the file named by ONEDNN_ADDON_PATH) and describes its functions. Every kernel function is synchronous, reads and
 * writes the Float32Arrays it is given in place, checks their lengths against the geometry,
 * and keeps no reference to them after returning.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Where node-gyp puts the addon, relative to the repository root. */
export const DEFAULT_ADDON_PATH = fileURLToPath(new URL('../../../build/Release/onednn_backend.node', import.meta.url));

/** The addon file to load: ONEDNN_ADDON_PATH when set (a prebuilt copy), else the build output. */
export function addonPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.ONEDNN_ADDON_PATH || DEFAULT_ADDON_PATH;
}

/** Counters the addon keeps, for tests that check native memory stays bounded. */
export interface AddonStats {
  /** Cached oneDNN convolution plans (one per shape and direction). */
  convolutionPlans: number;
  /** Bytes held by the shared scratch buffers (scratchpads, reordered filters). */
  sharedBufferBytes: number;
}

/** The addon's exports. Geometry arrays are laid out as documented in native/*.h. */
export interface OnednnAddon {
  /** oneDNN version, e.g. "2.6.3". */
  version(): string;
  /** Sets the OpenMP thread count used by every later kernel call. */
  setThreads(threads: number): void;
  threads(): number;
  stats(): AddonStats;
  /** One line per cached convolution plan: direction, geometry and the oneDNN kernel chosen. */
  convolutionPlans(): string[];
  /** Drops cached primitives and scratch buffers (they are rebuilt on the next call). */
  releaseCaches(): void;

  conv2dForward(geometry: Int32Array, x: Float32Array, w: Float32Array, bias: Float32Array | null, relu: boolean, y: Float32Array): void;
  conv2dBackwardData(geometry: Int32Array, dy: Float32Array, w: Float32Array, dx: Float32Array): void;
  conv2dBackwardWeights(geometry: Int32Array, x: Float32Array, dy: Float32Array, dw: Float32Array): void;

  /** `geometry`: [rank, dims x6, aStrides x6, bStrides x6] (native/elementwise.h). */
  binary(op: number, geometry: Int32Array, a: Float32Array, b: Float32Array, out: Float32Array): void;
  unary(op: number, x: Float32Array, out: Float32Array, alpha: number): void;
  /** out = x + alpha * g (alpha rounded to float32; no fused multiply-add); out may be x. */
  scaledAdd(x: Float32Array, g: Float32Array, alpha: number, out: Float32Array): void;
  /** out[outer, inner] = scale * sum over the middle axis of x[outer, reduce, inner]. */
  reduceSum(x: Float32Array, out: Float32Array, outer: number, reduce: number, inner: number, scale: number): void;
  /** `geometry`: the 12 integers of native/max-pool.h's PoolGeometry. */
  maxPoolForward(geometry: Int32Array, x: Float32Array, y: Float32Array): void;
  maxPoolBackward(geometry: Int32Array, x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  batchNormApply(
    x: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    scale: Float32Array | null,
    offset: Float32Array | null,
    epsilon: number,
    channels: number,
    y: Float32Array,
  ): void;
  batchNormTrainingForward(
    x: Float32Array,
    scale: Float32Array | null,
    offset: Float32Array | null,
    epsilon: number,
    channels: number,
    relu: boolean,
    y: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
  ): void;
  batchNormTrainingBackward(
    x: Float32Array,
    dy: Float32Array,
    y: Float32Array | null,
    scale: Float32Array | null,
    mean: Float32Array,
    variance: Float32Array,
    dmean: Float32Array | null,
    dvariance: Float32Array | null,
    epsilon: number,
    channels: number,
    dx: Float32Array,
    dscale: Float32Array,
    doffset: Float32Array,
  ): void;
  /** `geometry`: [batch, m, n, k, aBatchStride, bBatchStride, transposeA, transposeB]. */
  batchMatMul(geometry: Int32Array, a: Float32Array, b: Float32Array, out: Float32Array): void;
}

let cached: OnednnAddon | null | undefined;
let loadError: unknown;

/**
 * The addon, loaded once; null when it was not built (or fails to load, e.g. libdnnl.so.2
 * missing). `threads`, when given on the first call, sets OMP_NUM_THREADS before libgomp is
 * loaded, which is when OpenMP reads it.
 */
export function loadAddon(threads?: number): OnednnAddon | null {
  if (cached !== undefined) return cached;
  if (threads !== undefined) process.env.OMP_NUM_THREADS = String(threads);
  const path = addonPath();
  if (!existsSync(path)) {
    cached = null;
    return cached;
  }
  try {
    cached = createRequire(import.meta.url)(path) as OnednnAddon;
  } catch (error) {
    loadError = error;
    cached = null;
  }
  return cached;
}

/** Why the last load failed, when the file existed but could not be loaded. */
export function addonLoadError(): unknown {
  return loadError;
}
