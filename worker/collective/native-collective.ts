/**
 * The collective's native helpers (`build/Release/collective_native.node`, built by
 * scripts/build-native.mjs from native/collective/ with only g++ and node-addon-api). Optional:
 * without it the collective uses its JavaScript fallbacks, which give the same bits, slower.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** Where node-gyp puts the addon. */
export const COLLECTIVE_ADDON_PATH = fileURLToPath(new URL('../../build/Release/collective_native.node', import.meta.url));

/** The addon's exports. */
export interface CollectiveAddon {
  /** `target[offset + i] += values[i]` for every i, float32 (RangeError when it does not fit). */
  addInto(target: Float32Array, offset: number, values: Float32Array): void;
  /** `dst[i]` = the IEEE binary16 bits of `src[i]`, round to nearest even (float16.ts says how). Same lengths (RangeError). */
  floatToHalf(src: Float32Array, dst: Uint16Array): void;
  /** `dst[i]` = the value of the binary16 bits `src[i]`, exactly. Same lengths (RangeError). */
  halfToFloat(src: Uint16Array, dst: Float32Array): void;
  /** Rounds every value of `target` to binary16, in place. */
  roundToHalf(target: Float32Array): void;
  /** `target[i]` = binary16 rounding of the float32 sum `target[i] + values[i]`. Same lengths (RangeError). */
  addHalfInto(target: Float32Array, values: Uint16Array): void;
  /**
   * Maps the POSIX shared-memory segment `name` ("/..."), creating it with `bytes` bytes when
   * `create` (an Error when it exists); opening one that does not exist or is not sized yet gives
   * null. Unmapped when the ArrayBuffer is collected.
   */
  shmMap(name: string, bytes: number, create: boolean): ArrayBuffer | null;
  /** Removes the segment's name (mappings stay valid); false when there was none. */
  shmUnlink(name: string): boolean;
  /** Adds `delta` to the int32 at `byteOffset` of a mapped segment, wakes its waiters; the new value. */
  counterAdd(segment: ArrayBuffer, byteOffset: number, delta: number): number;
  counterLoad(segment: ArrayBuffer, byteOffset: number): number;
  /** Blocks (futex) until the int32 at `byteOffset` is at least `target`, at most `timeoutMs`; whether it got there. */
  counterWait(segment: ArrayBuffer, byteOffset: number, target: number, timeoutMs: number): boolean;
}

let loaded: CollectiveAddon | null | undefined;

/** The addon, or null when it was not built (loaded once per process). */
export function collectiveAddon(): CollectiveAddon | null {
  if (loaded === undefined) loaded = existsSync(COLLECTIVE_ADDON_PATH) ? (createRequire(import.meta.url)(COLLECTIVE_ADDON_PATH) as CollectiveAddon) : null;
  return loaded;
}
