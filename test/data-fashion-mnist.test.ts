import test from 'ava';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatasetError } from '../shared/errors.ts';
import {
  cacheDatasetDir,
  expectedDatasetVersion,
  limitImageSet,
  loadFashionMnist,
  SYSTEM_DATASET_DIR,
  type FashionMnist,
} from '../shared/data/fashion-mnist.ts';
import { downloadFashionMnistFile } from '../shared/data/fashion-mnist-download.ts';
import { FASHION_MNIST_FILES } from '../shared/data/fashion-mnist-files.ts';

let dir = '';
let dataset: FashionMnist;

test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fmnist-load-'));
  dataset = await loadFashionMnist({ env: {} });
});

test.after.always(async () => {
  await rm(dir, { recursive: true, force: true });
});

function classCounts(labels: Uint8Array): number[] {
  const counts = new Array<number>(10).fill(0);
  for (const label of labels) counts[label] += 1;
  return counts;
}

test('the Debian copy loads with the published counts and balanced classes', (t) => {
  const { train, test: testSet } = dataset;
  t.deepEqual([train.count, train.height, train.width], [60_000, 28, 28]);
  t.deepEqual([testSet.count, testSet.height, testSet.width], [10_000, 28, 28]);
  t.is(train.images.length, 60_000 * 784);
  t.is(testSet.images.length, 10_000 * 784);
  // Fashion-MNIST has 6,000 training and 1,000 test images of each of its 10 classes.
  t.deepEqual(classCounts(train.labels), new Array(10).fill(6_000));
  t.deepEqual(classCounts(testSet.labels), new Array(10).fill(1_000));
  t.regex(dataset.version, /^[0-9a-f]{12}$/);
  t.is(dataset.version, expectedDatasetVersion());
});

test('the images are the file contents after the 16-byte header', async (t) => {
  const { gunzipSync } = await import('node:zlib');
  const raw = gunzipSync(await readFile(join(SYSTEM_DATASET_DIR, `${FASHION_MNIST_FILES.testImages.name}.gz`)));
  const last = 9_999 * 784;
  t.deepEqual(Array.from(dataset.test.images.subarray(last, last + 784)), Array.from(raw.subarray(16 + last, 16 + last + 784)));
});

test('FASHION_MNIST_DIR is used as given, with no fallback', async (t) => {
  const empty = await mkdtemp(join(dir, 'empty-'));
  const error = await t.throwsAsync(loadFashionMnist({ env: { FASHION_MNIST_DIR: empty } }), { instanceOf: DatasetError });
  t.is(error?.code, 'DATASET_MISSING');
  t.true(error.file.startsWith(empty));
});

test('options.dir overrides FASHION_MNIST_DIR', async (t) => {
  const linked = await mkdtemp(join(dir, 'linked-'));
  for (const file of Object.values(FASHION_MNIST_FILES)) {
    await symlink(join(SYSTEM_DATASET_DIR, `${file.name}.gz`), join(linked, `${file.name}.gz`));
  }
  const loaded = await loadFashionMnist({ dir: linked, env: { FASHION_MNIST_DIR: join(dir, 'does-not-exist') } });
  t.is(loaded.version, dataset.version);
  t.is(loaded.test.labels[42], dataset.test.labels[42]);
});

test('limitImageSet keeps the first images as views', (t) => {
  const limited = limitImageSet(dataset.train, 100);
  t.is(limited.count, 100);
  t.is(limited.images.length, 100 * 784);
  t.is(limited.labels.length, 100);
  t.is(limited.images.buffer, dataset.train.images.buffer);
  t.deepEqual(Array.from(limited.labels), Array.from(dataset.train.labels.subarray(0, 100)));
  t.is(limitImageSet(dataset.test, 50_000).count, 10_000);
  t.is(limitImageSet(dataset.test, 0).images.length, 0);
  t.throws(() => limitImageSet(dataset.test, -1), { instanceOf: RangeError });
});

test('the cache directory follows XDG_CACHE_HOME, else HOME', (t) => {
  t.is(cacheDatasetDir({ HOME: '/home/u' }), '/home/u/.cache/fmnist-cluster/fashion-mnist');
  t.is(cacheDatasetDir({ HOME: '/home/u', XDG_CACHE_HOME: '/c' }), '/c/fmnist-cluster/fashion-mnist');
});

/** A loopback HTTP server: /good/ serves the Debian files, /bad/ serves damaged copies, the rest 404. */
async function startMirrorServer(): Promise<{ server: Server; base: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((request, response) => {
    const url = request.url ?? '';
    requests.push(url);
    void (async () => {
      const name = url.split('/').pop() ?? '';
      const known = Object.values(FASHION_MNIST_FILES).some((file) => `${file.name}.gz` === name);
      if (!known || !(url.startsWith('/good/') || url.startsWith('/bad/'))) {
        response.writeHead(404).end();
        return;
      }
      const bytes = await readFile(join(SYSTEM_DATASET_DIR, name));
      if (url.startsWith('/bad/')) bytes[bytes.length - 5] ^= 0xff; // breaks the gzip CRC/size trailer
      response.writeHead(200, { 'content-type': 'application/gzip' }).end(bytes);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, base: `http://127.0.0.1:${port}`, requests };
}

test('a download skips mirrors that fail or serve bad data, and leaves no partial file', async (t) => {
  const { server, base, requests } = await startMirrorServer();
  t.teardown(() => server.close());
  const cache = join(dir, 'cache-ok');
  const file = FASHION_MNIST_FILES.testLabels;
  const path = await downloadFashionMnistFile(cache, file, { mirrors: [`${base}/missing/`, `${base}/bad/`, `${base}/good/`] });
  t.is(path, join(cache, `${file.name}.gz`));
  t.deepEqual(requests, [`/missing/${file.name}.gz`, `/bad/${file.name}.gz`, `/good/${file.name}.gz`]);
  t.deepEqual(await readFile(path), await readFile(join(SYSTEM_DATASET_DIR, `${file.name}.gz`)));
  t.deepEqual(await readdir(cache), [`${file.name}.gz`]);
});

test('a download with no good mirror is DATASET_DOWNLOAD_FAILED and writes nothing', async (t) => {
  const { server, base } = await startMirrorServer();
  t.teardown(() => server.close());
  const cache = join(dir, 'cache-fail');
  const error = await t.throwsAsync(downloadFashionMnistFile(cache, FASHION_MNIST_FILES.testLabels, { mirrors: [`${base}/bad/`, `${base}/missing/`] }), {
    instanceOf: DatasetError,
  });
  t.is(error?.code, 'DATASET_DOWNLOAD_FAILED');
  t.deepEqual(await readdir(cache), []);
});
