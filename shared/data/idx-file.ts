/**
 * Reader for IDX files (the MNIST container format: a 4-byte big-endian magic `0x0000TTNN`
 * with element type TT = 0x08 for unsigned bytes and NN dimensions, then NN big-endian uint32
 * sizes, then the elements). Gzip'd files are recognised by their first two bytes, whatever
 * their name. Every check that fails throws a {@link DatasetError} naming the file.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { DatasetError } from '../errors.ts';

const gunzipAsync = promisify(gunzip);

/** Element type byte for unsigned 8-bit data, the only type Fashion-MNIST uses. */
const UBYTE_TYPE = 0x08;

/** What a file must contain; every field is checked. */
export interface IdxExpectation {
  /**
   * Dimension sizes, outermost first, e.g. `[60000, 28, 28]`. Their count fixes the magic:
   * `0x00000800 | dims.length` (0x00000803 for images, 0x00000801 for labels).
   */
  dims: readonly number[];
  /** Lowercase hex SHA-256 of the decompressed file (header included). */
  sha256: string;
  /** Largest allowed element value, e.g. 9 for ten class labels. @default 255 (no check) */
  maxValue?: number;
}

/** The validated contents of an IDX file. */
export interface IdxArray {
  /** Elements in row-major order; a view into the decompressed file, not a copy. */
  data: Uint8Array;
  /** Dimension sizes from the header, outermost first. */
  dims: number[];
  /** Lowercase hex SHA-256 of the decompressed file. */
  sha256: string;
}

/** Reads, decompresses if gzip'd, and validates an IDX file against `expect`. */
export async function readIdxFile(path: string, expect: IdxExpectation): Promise<IdxArray> {
  const raw = await readFileBytes(path);
  const bytes = isGzip(raw) ? await gunzipFile(path, raw) : raw;
  return parseIdx(bytes, path, expect);
}

/**
 * Validates decompressed IDX bytes, in this order: magic, header length, dimensions, payload
 * length, element range, checksum. The range check comes before the checksum so that a label
 * out of range is reported as such rather than as a checksum mismatch.
 *
 * @param file the name used in error messages.
 */
export function parseIdx(bytes: Uint8Array, file: string, expect: IdxExpectation): IdxArray {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  checkMagic(view, file, expect.dims.length);
  const dims = readDims(view, file, expect.dims.length);
  checkDims(dims, file, expect.dims);
  const headerLength = 4 + 4 * dims.length;
  const data = payload(bytes, file, headerLength, product(dims));
  if (expect.maxValue !== undefined) checkMaxValue(data, file, expect.maxValue);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (sha256 !== expect.sha256) {
    throw new DatasetError(
      'DATASET_CHECKSUM',
      file,
      `SHA-256 of the decompressed data is ${sha256}, expected ${expect.sha256}; the file is corrupt or a different dataset`,
    );
  }
  return { data, dims, sha256 };
}

async function readFileBytes(path: string): Promise<Uint8Array> {
  try {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DatasetError('DATASET_MISSING', path, 'file not found', { cause: error });
    throw new DatasetError('DATASET_UNREADABLE', path, `cannot read file (${code ?? String(error)})`, { cause: error });
  }
}

function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

async function gunzipFile(path: string, bytes: Uint8Array): Promise<Uint8Array> {
  try {
    const buffer = await gunzipAsync(bytes);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    // zlib reports a stream that ends early as Z_BUF_ERROR ("unexpected end of file").
    if ((error as NodeJS.ErrnoException).code === 'Z_BUF_ERROR') {
      throw new DatasetError('DATASET_TRUNCATED', path, 'gzip stream ends early (file truncated)', { cause: error });
    }
    throw new DatasetError('DATASET_CORRUPT', path, `gzip data is corrupt (${(error as Error).message})`, { cause: error });
  }
}

function checkMagic(view: DataView, file: string, dimCount: number): void {
  const expected = (UBYTE_TYPE << 8) | dimCount;
  if (view.byteLength < 4) {
    throw new DatasetError('DATASET_TRUNCATED', file, `${view.byteLength} bytes, too short for an IDX header`);
  }
  const magic = view.getUint32(0, false);
  if (magic !== expected) {
    throw new DatasetError(
      'DATASET_BAD_MAGIC',
      file,
      `magic number is ${hex32(magic)}, expected ${hex32(expected)} (unsigned bytes, ${dimCount} dimension(s))`,
    );
  }
}

function readDims(view: DataView, file: string, dimCount: number): number[] {
  const headerLength = 4 + 4 * dimCount;
  if (view.byteLength < headerLength) {
    throw new DatasetError('DATASET_TRUNCATED', file, `${view.byteLength} bytes, too short for a ${headerLength}-byte IDX header`);
  }
  return Array.from({ length: dimCount }, (_, i) => view.getUint32(4 + 4 * i, false));
}

function checkDims(dims: readonly number[], file: string, expected: readonly number[]): void {
  if (dims.some((size, i) => size !== expected[i])) {
    throw new DatasetError('DATASET_BAD_SHAPE', file, `header says shape [${dims.join(', ')}], expected [${expected.join(', ')}]`);
  }
}

function payload(bytes: Uint8Array, file: string, headerLength: number, expectedLength: number): Uint8Array {
  const actual = bytes.length - headerLength;
  if (actual < expectedLength) {
    throw new DatasetError('DATASET_TRUNCATED', file, `payload is ${actual} bytes, header promises ${expectedLength} (file truncated)`);
  }
  if (actual > expectedLength) {
    throw new DatasetError('DATASET_BAD_SHAPE', file, `payload is ${actual} bytes, header promises ${expectedLength} (trailing data)`);
  }
  return bytes.subarray(headerLength);
}

function checkMaxValue(data: Uint8Array, file: string, maxValue: number): void {
  for (let i = 0; i < data.length; i += 1) {
    if (data[i] > maxValue) {
      throw new DatasetError('DATASET_LABEL_RANGE', file, `element ${i} is ${data[i]}, above the largest allowed value ${maxValue}`);
    }
  }
}

function product(dims: readonly number[]): number {
  return dims.reduce((acc, size) => acc * size, 1);
}

function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}
