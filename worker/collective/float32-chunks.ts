/**
 * Moving float32 values between a Float32Array and wire payloads (float32 little-endian bytes)
 * without copies where the platform allows: the payload sent is a Buffer view over the caller's
 * array, and a received payload is read in place when it is 4-byte aligned.
 */
import { collectiveAddon } from './native-collective.ts';

const native = collectiveAddon();

/** A Buffer sharing memory with `data[offset .. offset+length)` (no copy). */
export function payloadView(data: Float32Array, offset: number, length: number): Buffer {
  return Buffer.from(data.buffer, data.byteOffset + offset * 4, length * 4);
}

/**
 * Reads received payloads as float32. A Float32Array view needs a 4-byte aligned start, which a
 * protobuf `bytes` field inside a gRPC frame rarely has; unaligned payloads are first copied
 * (one memcpy) into a scratch array kept between calls.
 */
export class PayloadReader {
  private scratch = new Float32Array(0);
  private halfScratch = new Uint16Array(0);

  /** `payload` as binary16 bits (compressed chunks); valid until the next call. `payload.length` must be even. */
  readHalves(payload: Uint8Array): Uint16Array {
    const count = payload.byteLength >>> 1;
    if ((payload.byteOffset & 1) === 0) return new Uint16Array(payload.buffer, payload.byteOffset, count);
    if (this.halfScratch.length < count) this.halfScratch = new Uint16Array(count);
    new Uint8Array(this.halfScratch.buffer, 0, payload.byteLength).set(payload);
    return this.halfScratch.subarray(0, count);
  }

  /** `payload` as float32 values; valid until the next call. `payload.length` must be a multiple of 4. */
  read(payload: Uint8Array): Float32Array {
    const count = payload.byteLength >>> 2;
    if ((payload.byteOffset & 3) === 0) return new Float32Array(payload.buffer, payload.byteOffset, count);
    if (this.scratch.length < count) this.scratch = new Float32Array(count);
    new Uint8Array(this.scratch.buffer, 0, payload.byteLength).set(payload);
    return this.scratch.subarray(0, count);
  }
}

/**
 * `target[offset + i] += values[i]` for every i: the reduce-scatter step. Native (vectorised)
 * when the collective addon is built; the JavaScript loop gives the same bits (each sum is one
 * float32 rounding either way).
 */
export function addInto(target: Float32Array, offset: number, values: Float32Array): void {
  if (native !== null) native.addInto(target, offset, values);
  else addIntoScalar(target, offset, values);
}

/** {@link addInto} in JavaScript. */
export function addIntoScalar(target: Float32Array, offset: number, values: Float32Array): void {
  const n = values.length;
  const dst = target.subarray(offset, offset + n);
  for (let i = 0; i < n; i += 1) dst[i] += values[i];
}

/** Overwrites `target[offset ..]` with the payload's bytes: the all-gather step (any alignment). */
export function copyInto(target: Float32Array, offset: number, payload: Uint8Array): void {
  new Uint8Array(target.buffer, target.byteOffset + offset * 4, payload.byteLength).set(payload);
}
