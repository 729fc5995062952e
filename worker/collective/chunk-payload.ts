/**
 * The payload of one chunk on the wire (collective.proto, `ExchangeChunk.payload`): float32
 * values, except that with `--grad-compression fp16` the values below the all-reduce's
 * `float16Values` travel as binary16. A chunk [offset, offset + length) then carries its first
 * h of those as binary16, 2 zero bytes when h is odd (so the float32 values that follow stay at
 * a multiple of 4 bytes and can be read in place), then the other length - h as float32.
 */
import { floatToHalf, HALF_BYTES } from './float16.ts';
import { payloadView } from './float32-chunks.ts';

/** Values of the chunk [offset, offset + length) that travel as binary16. */
export function halfValuesIn(offset: number, length: number, float16Values: number): number {
  return Math.min(Math.max(float16Values - offset, 0), length);
}

/** Bytes the binary16 part of a chunk with `halves` of them takes, padding included. */
export function halfPartBytes(halves: number): number {
  return Math.ceil(halves / 2) * 4;
}

/** Payload bytes of a chunk of `length` values whose first `halves` are binary16. */
export function payloadBytes(length: number, halves: number): number {
  return halfPartBytes(halves) + (length - halves) * 4;
}

/**
 * The payload of `data[offset .. offset + length)` with its first `halves` values as binary16.
 * Uncompressed it is a view of `data` (no copy: the ring leaves those values alone until the
 * neighbour has acknowledged them); compressed, a fresh buffer.
 */
export function chunkPayload(data: Float32Array, offset: number, length: number, halves: number): Buffer {
  if (halves === 0) return payloadView(data, offset, length);
  const bytes = new ArrayBuffer(payloadBytes(length, halves));
  floatToHalf(data.subarray(offset, offset + halves), new Uint16Array(bytes, 0, halves));
  new Float32Array(bytes, halfPartBytes(halves)).set(data.subarray(offset + halves, offset + length));
  return Buffer.from(bytes);
}

/** The binary16 part of a received payload (`halves` values), then the float32 rest. */
export function splitPayload(payload: Buffer, halves: number): { halves: Buffer; floats: Buffer } {
  return { halves: payload.subarray(0, halves * HALF_BYTES), floats: payload.subarray(halfPartBytes(halves)) };
}
