/**
 * Loads Fashion-MNIST (train 60,000 and test 10,000 grey 28x28 images, labels 0-9) from the
 * first of these places that applies:
 * 1. `options.dir`, else the `FASHION_MNIST_DIR` environment variable: used as given, never
 *    downloaded into (a missing file is an error, DATASET_MISSING);
 * 2. `/usr/share/datasets/fashion-mnist` (Debian's package) when it holds all four files;
 * 3. the cache `$XDG_CACHE_HOME/fmnist-cluster/fashion-mnist` (default
 *    `~/.cache/fmnist-cluster/fashion-mnist`), where missing files are downloaded from the
 *    mirrors (`FASHION_MNIST_MIRRORS`, comma-separated base URLs, overrides the defaults).
 * Each file may be gzip'd (`<name>.gz`, preferred) or raw (`<name>`), and is fully validated.
 */
import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DatasetError } from '../errors.ts';
import { readIdxFile } from './idx-file.ts';
import { downloadFashionMnistFile } from './fashion-mnist-download.ts';
import { FASHION_MNIST_FILES, FASHION_MNIST_MIRRORS, type FashionMnistFile, type FashionMnistFileKey } from './fashion-mnist-files.ts';

/** A set of images with their labels. */
export interface ImageSet {
  /** Pixels 0-255, image after image, each row-major `height x width` (NHW). */
  images: Uint8Array;
  /** Class per image, 0-9. */
  labels: Uint8Array;
  /** Number of images. */
  count: number;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
}

/** The whole dataset. */
export interface FashionMnist {
  train: ImageSet;
  test: ImageSet;
  /** 12 hex digits of the SHA-256 of the four file checksums; names the dataset version. */
  version: string;
}

/** Options for {@link loadFashionMnist}. */
export interface LoadFashionMnistOptions {
  /** Directory holding the four files; overrides `FASHION_MNIST_DIR` and never downloads. */
  dir?: string;
  /** Environment to read `FASHION_MNIST_DIR`, `FASHION_MNIST_MIRRORS`, `XDG_CACHE_HOME`, `HOME` from. @default process.env */
  env?: NodeJS.ProcessEnv;
}

/** Where Debian's `fashion-mnist` data package puts the files. */
export const SYSTEM_DATASET_DIR = '/usr/share/datasets/fashion-mnist';

/** Loads and validates all four files; see the module comment for where they are looked for. */
export async function loadFashionMnist(options: LoadFashionMnistOptions = {}): Promise<FashionMnist> {
  const env = options.env ?? process.env;
  const source = await chooseDatasetDir(options.dir ?? nonEmpty(env.FASHION_MNIST_DIR), env);
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all(
    FILE_ORDER.map((key) => readDatasetFile(source.dir, FASHION_MNIST_FILES[key], source.download ? mirrorsFrom(env) : undefined)),
  );
  return {
    train: toImageSet(trainImages.data, trainLabels.data, FASHION_MNIST_FILES.trainImages.dims),
    test: toImageSet(testImages.data, testLabels.data, FASHION_MNIST_FILES.testImages.dims),
    version: datasetVersion([trainImages.sha256, trainLabels.sha256, testImages.sha256, testLabels.sha256]),
  };
}

/**
 * The first `count` images of `set` (views, no copy), for `--limit-train` / `--limit-test`.
 * A count at or above `set.count` returns the whole set.
 */
export function limitImageSet(set: ImageSet, count: number): ImageSet {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`limitImageSet: count must be a non-negative integer, got ${count}`);
  const kept = Math.min(count, set.count);
  return {
    images: set.images.subarray(0, kept * set.height * set.width),
    labels: set.labels.subarray(0, kept),
    count: kept,
    height: set.height,
    width: set.width,
  };
}

/** The version string of the files this module accepts (what {@link loadFashionMnist} reports). */
export function expectedDatasetVersion(): string {
  return datasetVersion(FILE_ORDER.map((key) => FASHION_MNIST_FILES[key].sha256));
}

/** The download cache directory for `env`: `$XDG_CACHE_HOME` or `$HOME/.cache`, then `fmnist-cluster/fashion-mnist`. */
export function cacheDatasetDir(env: NodeJS.ProcessEnv = process.env): string {
  const cacheRoot = nonEmpty(env.XDG_CACHE_HOME) ?? join(nonEmpty(env.HOME) ?? homedir(), '.cache');
  return join(cacheRoot, 'fmnist-cluster', 'fashion-mnist');
}

const FILE_ORDER: readonly FashionMnistFileKey[] = ['trainImages', 'trainLabels', 'testImages', 'testLabels'];

async function chooseDatasetDir(explicitDir: string | undefined, env: NodeJS.ProcessEnv): Promise<{ dir: string; download: boolean }> {
  if (explicitDir !== undefined) return { dir: explicitDir, download: false };
  const present = await Promise.all(FILE_ORDER.map((key) => findDatasetFile(SYSTEM_DATASET_DIR, FASHION_MNIST_FILES[key].name)));
  if (present.every((path) => path !== undefined)) return { dir: SYSTEM_DATASET_DIR, download: false };
  return { dir: cacheDatasetDir(env), download: true };
}

async function readDatasetFile(dir: string, file: FashionMnistFile, downloadMirrors: readonly string[] | undefined) {
  let path = await findDatasetFile(dir, file.name);
  if (path === undefined && downloadMirrors !== undefined) path = await downloadFashionMnistFile(dir, file, { mirrors: downloadMirrors });
  if (path === undefined) {
    throw new DatasetError(
      'DATASET_MISSING',
      join(dir, `${file.name}.gz`),
      `file not found (nor an uncompressed ${file.name}); set FASHION_MNIST_DIR to a directory holding the four Fashion-MNIST files`,
    );
  }
  return readIdxFile(path, file);
}

/** `<dir>/<name>.gz` if it exists, else `<dir>/<name>` if it exists, else undefined. */
async function findDatasetFile(dir: string, name: string): Promise<string | undefined> {
  for (const candidate of [join(dir, `${name}.gz`), join(dir, name)]) {
    if (await exists(candidate)) return candidate;
  }
  return undefined;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function toImageSet(images: Uint8Array, labels: Uint8Array, dims: readonly number[]): ImageSet {
  const [count, height, width] = dims;
  return { images, labels, count, height, width };
}

function datasetVersion(checksums: readonly string[]): string {
  return createHash('sha256').update(checksums.join('\n')).digest('hex').slice(0, 12);
}

function mirrorsFrom(env: NodeJS.ProcessEnv): readonly string[] {
  const listed = nonEmpty(env.FASHION_MNIST_MIRRORS);
  return listed === undefined
    ? FASHION_MNIST_MIRRORS
    : listed
        .split(',')
        .map((url) => url.trim())
        .filter((url) => url !== '');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}
