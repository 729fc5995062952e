/**
 * A minimal PNG decoder for screenshots: 8-bit RGB or RGBA, not interlaced (what Chromium
 * writes). Inflates the IDAT chunks with node:zlib and undoes the per-row filters.
 */
import { inflateSync } from 'node:zlib';

export interface PngImage {
  width: number;
  height: number;
  /** RGBA bytes, row by row (an RGB image gets alpha 255). */
  rgba: Uint8Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

export function decodePng(file: Buffer): PngImage {
  if (!file.subarray(0, 8).equals(SIGNATURE)) throw new Error('not a PNG file');
  let header: { width: number; height: number; channels: number } | undefined;
  const data: Buffer[] = [];
  for (let at = 8; at < file.length;) {
    const length = file.readUInt32BE(at);
    const type = file.toString('latin1', at + 4, at + 8);
    const body = file.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') header = readHeader(body);
    if (type === 'IDAT') data.push(body);
    if (type === 'IEND') break;
    at += 12 + length;
  }
  if (!header) throw new Error('PNG without IHDR');
  return { width: header.width, height: header.height, rgba: unfilter(inflateSync(Buffer.concat(data)), header) };
}

function readHeader(body: Buffer): { width: number; height: number; channels: number } {
  const [depth, colourType, , , interlace] = body.subarray(8, 13);
  if (depth !== 8 || (colourType !== 2 && colourType !== 6) || interlace !== 0) {
    throw new Error(`unsupported PNG: bit depth ${depth}, colour type ${colourType}, interlace ${interlace}`);
  }
  return { width: body.readUInt32BE(0), height: body.readUInt32BE(4), channels: colourType === 6 ? 4 : 3 };
}

/** Undoes filters None, Sub, Up, Average and Paeth row by row, then widens to RGBA. */
function unfilter(raw: Buffer, header: { width: number; height: number; channels: number }): Uint8Array {
  const { width, height, channels } = header;
  const stride = width * channels;
  const rows = new Uint8Array(stride * height);
  for (let y = 0; y < height; y += 1) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i += 1) {
      const left = i >= channels ? rows[y * stride + i - channels] : 0;
      const up = y > 0 ? rows[(y - 1) * stride + i] : 0;
      const upLeft = y > 0 && i >= channels ? rows[(y - 1) * stride + i - channels] : 0;
      rows[y * stride + i] = (line[i] + predictor(filter, left, up, upLeft)) & 0xff;
    }
  }
  if (channels === 4) return rows;
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p += 1) {
    rgba.set(rows.subarray(p * 3, p * 3 + 3), p * 4);
    rgba[p * 4 + 3] = 255;
  }
  return rgba;
}

function predictor(filter: number, left: number, up: number, upLeft: number): number {
  switch (filter) {
    case 0:
      return 0;
    case 1:
      return left;
    case 2:
      return up;
    case 3:
      return (left + up) >> 1;
    case 4:
      return paeth(left, up, upLeft);
    default:
      throw new Error(`bad PNG row filter ${filter}`);
  }
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Where pixels of one colour lie in an image. */
export interface ColourRegion {
  /** Pixels within the tolerance of the colour. */
  count: number;
  minX: number;
  maxX: number;
  minY: number;
  maxY: number;
}

/** The pixels whose R, G and B each lie within `tolerance` of `hex` (`#rrggbb`); count 0 when none. */
export function findColour(image: PngImage, hex: string, tolerance = 10): ColourRegion {
  const target = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16));
  const region = { count: 0, minX: Infinity, maxX: -Infinity, minY: Infinity, maxY: -Infinity };
  for (let y = 0; y < image.height; y += 1) {
    for (let x = 0; x < image.width; x += 1) {
      const at = (y * image.width + x) * 4;
      if (target.some((value, c) => Math.abs(image.rgba[at + c] - value) > tolerance)) continue;
      region.count += 1;
      region.minX = Math.min(region.minX, x);
      region.maxX = Math.max(region.maxX, x);
      region.minY = Math.min(region.minY, y);
      region.maxY = Math.max(region.maxY, y);
    }
  }
  return region;
}
