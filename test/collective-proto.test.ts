/**
 * The collective's .proto contract: the committed generated types are what the generator makes
 * of the .proto today, the runtime loader decodes messages the way those types say, and the
 * loader options agree with the flags of `npm run proto:gen`.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ExchangeChunk } from '../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import { loadClusterProto } from '../shared/grpc/cluster-proto.ts';
import { PROTO_LOADER_OPTIONS, protoGenTypesFlags } from '../shared/grpc/proto-loader-options.ts';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const PROTO_DIR = 'proto/fmnist/cluster/v1';
const GENERATED = path.join(REPO, 'proto/generated');
const GENERATOR = createRequire(import.meta.url).resolve('@grpc/proto-loader/build/bin/proto-loader-gen-types.js');

/** Every file under `root`, as paths relative to it, sorted. */
async function listFiles(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)))
    .sort();
}

test('the committed generated types equal a fresh generation from the .proto files', async (t) => {
  const outDir = await mkdtemp(path.join(tmpdir(), 'proto-gen-'));
  try {
    // The same inputs as `npm run proto:gen`: the shell glob, sorted, relative to the repository.
    const protos = (await readdir(path.join(REPO, PROTO_DIR))).filter((name) => name.endsWith('.proto')).sort();
    const inputs = protos.map((name) => `${PROTO_DIR}/${name}`);
    await promisify(execFile)(process.execPath, [GENERATOR, ...protoGenTypesFlags(outDir), ...inputs], { cwd: REPO });
    const fresh = await listFiles(outDir);
    t.deepEqual(await listFiles(GENERATED), fresh);
    t.true(fresh.length >= 3);
    for (const file of fresh) {
      const [committed, generated] = await Promise.all([readFile(path.join(GENERATED, file), 'utf8'), readFile(path.join(outDir, file), 'utf8')]);
      t.is(committed, generated, `proto/generated/${file} is out of date: run the generator (see shared/grpc/proto-loader-options.ts)`);
    }
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
});

test('the loader options are the ones the proto:gen script generates types for', async (t) => {
  const packageJson = JSON.parse(await readFile(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const script = packageJson.scripts['proto:gen'].split(/\s+/);
  const loaderFlags = protoGenTypesFlags('out').filter((flag) => /^--(longs|enums|defaults|oneofs|keepCase)\b/.test(flag));
  t.is(loaderFlags.length, 5);
  for (const flag of loaderFlags) t.true(script.includes(flag), `proto:gen lacks ${flag}`);
  t.deepEqual(script.filter((word) => /^--(longs|enums|defaults|oneofs|keepCase|bytes|arrays|objects|json)\b/.test(word)).sort(), [...loaderFlags].sort());
  t.is(PROTO_LOADER_OPTIONS.longs, String);
});

test('a chunk survives encode and decode with enum names, string longs and a Buffer payload', (t) => {
  const values = new Float32Array([1.5, -2.25, 3e-8]);
  const chunk: ExchangeChunk = {
    run_id: 'run-1',
    generation: 3,
    step: 4_000_000_000,
    sequence: 7,
    purpose: 'gradients',
    phase: 'PHASE_ALL_GATHER',
    ring_step: 2,
    chunk_index: 5,
    offset: 123_456,
    total_elements: 11_178_378,
    world_size: 4,
    sender_rank: 1,
    payload: Buffer.from(values.buffer),
    float16_values: 11_178_368,
  };
  // Through the same (de)serialisers gRPC uses for the service.
  const method = loadClusterProto().fmnist.cluster.v1.Collective.service.Exchange;
  const decoded = method.requestDeserialize(method.requestSerialize(chunk));
  t.deepEqual({ ...decoded, payload: undefined }, { ...chunk, payload: undefined, alignment: Buffer.alloc(0) });
  t.true(Buffer.isBuffer(decoded.payload));
  t.deepEqual(new Float32Array(new Uint8Array(decoded.payload).buffer), values);
  const summary = method.responseDeserialize(method.responseSerialize({ chunks_received: 2, bytes_received: '9007199254740993' }));
  t.deepEqual(summary, { chunks_received: 2, bytes_received: '9007199254740993' });
});

test('Exchange streams from the client and Ping is unary', (t) => {
  const { service } = loadClusterProto().fmnist.cluster.v1.Collective;
  t.deepEqual([service.Exchange.requestStream, service.Exchange.responseStream], [true, false]);
  t.deepEqual([service.Ping.requestStream, service.Ping.responseStream], [false, false]);
  t.is(service.Exchange.path, '/fmnist.cluster.v1.Collective/Exchange');
});
