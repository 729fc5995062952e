/**
 * Fills a directory with the Fashion-MNIST files from public mirrors. Each file is fetched
 * whole into a temporary file next to its target, validated exactly as a local file is
 * (magic, shape, length, checksum), and only then renamed into place, so a reader never sees a
 * partial or wrong file. Kept deliberately small: no resume, no progress, no retries beyond
 * trying the next mirror.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatasetError } from '../errors.ts';
import { readIdxFile } from './idx-file.ts';
import { FASHION_MNIST_MIRRORS, type FashionMnistFile } from './fashion-mnist-files.ts';

/** Options for {@link downloadFashionMnistFile}. */
export interface DownloadOptions {
  /** Base URLs tried in order; a file is fetched as `<mirror><name>.gz`. @default FASHION_MNIST_MIRRORS */
  mirrors?: readonly string[];
  /** Limit for one fetch, in milliseconds. @default 300000 */
  timeoutMs?: number;
}

/**
 * Downloads `<file.name>.gz` into `dir` (created if needed) from the first mirror that serves
 * a valid copy, and returns the path written. Throws DATASET_DOWNLOAD_FAILED, listing every
 * mirror's failure, when none does.
 */
export async function downloadFashionMnistFile(dir: string, file: FashionMnistFile, options: DownloadOptions = {}): Promise<string> {
  const mirrors = options.mirrors ?? FASHION_MNIST_MIRRORS;
  const timeoutMs = options.timeoutMs ?? 300_000;
  const target = join(dir, `${file.name}.gz`);
  await mkdir(dir, { recursive: true });
  const failures: string[] = [];
  for (const mirror of mirrors) {
    const url = `${mirror}${file.name}.gz`;
    const temp = `${target}.${randomUUID()}.part`;
    try {
      await fetchToFile(url, temp, timeoutMs);
      await readIdxFile(temp, file);
      await rename(temp, target);
      return target;
    } catch (error) {
      failures.push(`${url}: ${error instanceof Error ? error.message : String(error)}`);
      await rm(temp, { force: true });
    }
  }
  throw new DatasetError('DATASET_DOWNLOAD_FAILED', target, `not present and no mirror served a valid copy (${failures.join('; ') || 'no mirrors given'})`);
}

async function fetchToFile(url: string, path: string, timeoutMs: number): Promise<void> {
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
  await writeFile(path, new Uint8Array(await response.arrayBuffer()));
}
