import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { latestCheckpoint } from '../../shared/train/checkpoint-store.ts';

/** The weights of the newest checkpoint in `dir`, by name, straight from model.json + weights.bin. */
export async function newestWeights(dir: string): Promise<Map<string, Float32Array>> {
  const latest = await latestCheckpoint(dir);
  if (!latest) throw new Error(`no checkpoint in ${dir}`);
  const manifest = JSON.parse(await readFile(path.join(latest, 'model.json'), 'utf8')) as {
    weightsManifest: { weights: { name: string; shape: number[] }[] }[];
  };
  const bytes = await readFile(path.join(latest, 'weights.bin'));
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const weights = new Map<string, Float32Array>();
  let offset = 0;
  for (const spec of manifest.weightsManifest.flatMap((g) => g.weights)) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    weights.set(spec.name, all.subarray(offset, offset + size));
    offset += size;
  }
  return weights;
}

/** max |a - b| / max |b| over all weights (0 when identical). */
export function maxRelativeDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let diff = 0;
  let scale = 0;
  for (const [name, values] of b) {
    const other = a.get(name);
    if (!other || other.length !== values.length) return Number.POSITIVE_INFINITY;
    for (let i = 0; i < values.length; i += 1) {
      diff = Math.max(diff, Math.abs(other[i] - values[i]));
      scale = Math.max(scale, Math.abs(values[i]));
    }
  }
  return scale === 0 ? diff : diff / scale;
}

/** True when every weight is bit-identical. */
export function identicalWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, values] of b) {
    const other = a.get(name);
    if (
      !other ||
      Buffer.compare(Buffer.from(other.buffer, other.byteOffset, other.byteLength), Buffer.from(values.buffer, values.byteOffset, values.byteLength)) !== 0
    )
      return false;
  }
  return true;
}
