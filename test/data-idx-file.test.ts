import test from 'ava';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DatasetError } from '../shared/errors.ts';
import { readIdxFile } from '../shared/data/idx-file.ts';
import { FASHION_MNIST_FILES, type FashionMnistFile } from '../shared/data/fashion-mnist-files.ts';
import { loadFashionMnist, SYSTEM_DATASET_DIR } from '../shared/data/fashion-mnist.ts';

const LABELS = FASHION_MNIST_FILES.testLabels;
const IMAGES = FASHION_MNIST_FILES.testImages;
let dir = '';

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmnist-idx-'));
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The decompressed original file, a fresh copy each call. */
async function original(file: FashionMnistFile): Promise<Uint8Array> {
  return new Uint8Array(gunzipSync(await readFile(join(SYSTEM_DATASET_DIR, `${file.name}.gz`))));
}

async function writeCase(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

async function assertRejects(t: import('ava').ExecutionContext, path: string, file: FashionMnistFile, code: string): Promise<void> {
  const error = await t.throwsAsync(readIdxFile(path, file), { instanceOf: DatasetError });
  t.is(error?.code, code);
  t.is(error.file, path);
  t.true(error?.message.includes(path), `message names the file: ${error?.message}`);
}

test('the original test files read back with their header shapes', async (t) => {
  const labels = await readIdxFile(join(SYSTEM_DATASET_DIR, `${LABELS.name}.gz`), LABELS);
  t.deepEqual(labels.dims, [10_000]);
  t.is(labels.data.length, 10_000);
  t.is(labels.sha256, LABELS.sha256);
  const images = await readIdxFile(join(SYSTEM_DATASET_DIR, `${IMAGES.name}.gz`), IMAGES);
  t.deepEqual(images.dims, [10_000, 28, 28]);
  t.is(images.data.length, 10_000 * 28 * 28);
});

test('an uncompressed copy is accepted', async (t) => {
  const bytes = await original(LABELS);
  const path = await writeCase('raw-labels', bytes);
  const read = await readIdxFile(path, LABELS);
  t.deepEqual(Array.from(read.data.subarray(0, 20)), Array.from(bytes.subarray(8, 28)));
});

test('a missing file is DATASET_MISSING', async (t) => {
  await assertRejects(t, join(dir, 'no-such-file.gz'), LABELS, 'DATASET_MISSING');
});

test('a truncated gzip stream is DATASET_TRUNCATED', async (t) => {
  const gz = await readFile(join(SYSTEM_DATASET_DIR, `${LABELS.name}.gz`));
  const path = await writeCase('cut.gz', gz.subarray(0, Math.floor(gz.length / 2)));
  await assertRejects(t, path, LABELS, 'DATASET_TRUNCATED');
});

test('a damaged gzip stream is DATASET_CORRUPT', async (t) => {
  const gz = new Uint8Array(await readFile(join(SYSTEM_DATASET_DIR, `${LABELS.name}.gz`)));
  for (let i = 100; i < 140; i += 1) gz[i] ^= 0xff;
  const path = await writeCase('damaged.gz', gz);
  await assertRejects(t, path, LABELS, 'DATASET_CORRUPT');
});

test('a payload shorter than its header is DATASET_TRUNCATED, gzip or raw', async (t) => {
  const bytes = await original(IMAGES);
  const short = bytes.subarray(0, bytes.length - 784);
  await assertRejects(t, await writeCase('short-images.gz', gzipSync(short)), IMAGES, 'DATASET_TRUNCATED');
  await assertRejects(t, await writeCase('short-images', short), IMAGES, 'DATASET_TRUNCATED');
  await assertRejects(t, await writeCase('header-only', bytes.subarray(0, 10)), IMAGES, 'DATASET_TRUNCATED');
});

test('a wrong magic number is DATASET_BAD_MAGIC', async (t) => {
  const bytes = await original(LABELS);
  bytes[2] = 0x0d; // element type: float32 instead of unsigned byte
  await assertRejects(t, await writeCase('float-labels.gz', gzipSync(bytes)), LABELS, 'DATASET_BAD_MAGIC');
  // A labels file where an images file is expected (0x801 for 0x803).
  await assertRejects(t, join(SYSTEM_DATASET_DIR, `${LABELS.name}.gz`), IMAGES, 'DATASET_BAD_MAGIC');
});

test('a wrong image count or image size is DATASET_BAD_SHAPE', async (t) => {
  const labels = await original(LABELS);
  new DataView(labels.buffer).setUint32(4, 9_999, false);
  await assertRejects(t, await writeCase('9999-labels', labels.subarray(0, labels.length - 1)), LABELS, 'DATASET_BAD_SHAPE');
  const images = await original(IMAGES);
  new DataView(images.buffer).setUint32(8, 27, false);
  await assertRejects(t, await writeCase('27-rows', images), IMAGES, 'DATASET_BAD_SHAPE');
});

test('trailing bytes after the payload are DATASET_BAD_SHAPE', async (t) => {
  const labels = await original(LABELS);
  const longer = new Uint8Array(labels.length + 3);
  longer.set(labels);
  await assertRejects(t, await writeCase('long-labels', longer), LABELS, 'DATASET_BAD_SHAPE');
});

test('one flipped pixel is DATASET_CHECKSUM', async (t) => {
  const images = await original(IMAGES);
  images[16 + 5000 * 784 + 400] ^= 0x01;
  await assertRejects(t, await writeCase('flipped.gz', gzipSync(images)), IMAGES, 'DATASET_CHECKSUM');
});

test('a label of 10 is DATASET_LABEL_RANGE', async (t) => {
  const labels = await original(LABELS);
  labels[8 + 1234] = 10;
  await assertRejects(t, await writeCase('label-10', labels), LABELS, 'DATASET_LABEL_RANGE');
});

test('loadFashionMnist reports a corrupt file in an otherwise good directory', async (t) => {
  const mixed = await mkdtemp(join(dir, 'mixed-'));
  for (const file of [FASHION_MNIST_FILES.trainImages, FASHION_MNIST_FILES.trainLabels, IMAGES]) {
    await symlink(join(SYSTEM_DATASET_DIR, `${file.name}.gz`), join(mixed, `${file.name}.gz`));
  }
  const labels = await original(LABELS);
  labels[8] = 200;
  const path = join(mixed, LABELS.name);
  await writeFile(path, labels);
  const error = await t.throwsAsync(loadFashionMnist({ dir: mixed }), { instanceOf: DatasetError });
  t.is(error?.code, 'DATASET_LABEL_RANGE');
  t.is(error.file, path);
});
