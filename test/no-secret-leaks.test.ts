/**
 * No secret leaks: a cluster run as a deployment runs it (`serve`, two workers, `launch
 * --follow`) with a known Redis password, ring token and ring TLS key, then everything it wrote
 * is searched for them: every process's output, `status --json`, `list --json`, the report page,
 * every key the run left in Redis (run records, events, queue jobs, shards), the `/metrics` of
 * every process, the checkpoints and the logs. None may hold a secret.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import type { Redis } from 'ioredis';
import { freePort } from '../shared/redis/redis-server-process.ts';
import { jsonLines, printed, runCli } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';
import { makeCertificateAuthority, type CertificateAuthority, type CertificateFiles } from './helpers/tls-certificates.ts';

const REDIS_PASSWORD = 'redis-secret-5c1d9e';
const RING_TOKEN = 'ring-token-8a7b3f';

let redis: TestRedis;
let ca: CertificateAuthority;
let ring: CertificateFiles;
let scratch: string;
test.before(async () => {
  redis = await startTestRedis({ persist: false, password: REDIS_PASSWORD });
  ca = await makeCertificateAuthority('ring');
  ring = await ca.issue('worker');
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-secrets-'));
});
test.after.always(async () => {
  await redis?.close();
  await ca?.remove();
  await rm(scratch, { recursive: true, force: true });
});

/** Every key under `prefix` with its value as text (binary values as latin1, so ASCII secrets still show). */
async function dumpKeys(client: Redis, prefix: string): Promise<Map<string, string>> {
  const dump = new Map<string, string>();
  for (const key of await client.keys(`${prefix}*`)) {
    const type = await client.type(key);
    let value: unknown;
    if (type === 'string') value = (await client.getBuffer(key))?.toString('latin1');
    else if (type === 'hash') value = await client.hgetall(key);
    else if (type === 'list') value = await client.lrange(key, 0, -1);
    else if (type === 'set') value = await client.smembers(key);
    else if (type === 'zset') value = await client.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'stream') value = await client.xrange(key, '-', '+');
    dump.set(key, `${type} ${JSON.stringify(value)}`);
  }
  return dump;
}

/** Every file under `dir`, as text (latin1). */
async function readTree(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    files.set(file, (await readFile(file)).toString('latin1'));
  }
  return files;
}

test('a run with a Redis password, a ring token and ring TLS writes none of them anywhere', async (t) => {
  const key = await readFile(ring.key, 'utf8');
  // A line from the middle of the private key: the key's material, not its PEM armour.
  const keyLine = key.split('\n').find((line) => line.length > 40 && !line.startsWith('-----'))!;
  const secrets = { 'Redis password': REDIS_PASSWORD, 'ring token': RING_TOKEN, 'ring TLS key': keyLine };

  const prefix = uniquePrefix('secrets');
  const common = ['--redis', redis.url, '--prefix', prefix];
  const env = { REDIS_PASSWORD, FMNIST_AUTH_TOKEN: RING_TOKEN, FMNIST_TLS_CERT: ring.cert, FMNIST_TLS_KEY: ring.key, FMNIST_TLS_CA: ca.cert };
  const checkpointRoot = path.join(scratch, 'checkpoints');
  const [servePort, ...workerPorts] = [await freePort(), await freePort(), await freePort()];
  const serve = runCli('coordinator', ['serve', ...common, '--metrics-port', String(servePort)], { env });
  const workers = workerPorts.map((port, k) =>
    runCli('worker', [...common, '--checkpoint-root', checkpointRoot, '--backend', 'wasm', '--name', `secret-${k}`, '--metrics-port', String(port)], { env }),
  );
  const services = [serve, ...workers];
  t.teardown(() => {
    for (const service of services) service.child.kill('SIGKILL');
  });
  await Promise.all(workers.map((worker) => printed(worker, /waiting for jobs/)));

  const flags = ['--workers', '2', '--model', 'tiny-cnn', '--epochs', '1', '--batch-size', '64', '--resize', '28', '--limit-train', '256'];
  const launch = await runCli('coordinator', ['launch', '--follow', '--json', ...flags, '--limit-test', '64', '--backend', 'wasm', ...common], { env });
  t.is(launch.code, 0, launch.stderr);
  const runId = jsonLines(launch.stdout).at(-1)!.run as string;

  const written = new Map<string, string>([['launch', launch.stdout + launch.stderr]]);
  for (const command of [
    ['status', runId, '--json'],
    ['list', '--json'],
    ['report', runId, '--out', '-'],
  ]) {
    const result = await runCli('coordinator', [...command, ...common], { env });
    t.is(result.code, 0, `${command[0]}: ${result.stderr}`);
    written.set(command[0], result.stdout + result.stderr);
  }
  for (const port of [servePort, ...workerPorts]) written.set(`/metrics :${port}`, await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  const client = redis.connect('secrets-dump');
  for (const [name, value] of await dumpKeys(client, prefix)) written.set(`redis ${name}`, value);
  for (const [name, value] of await readTree(checkpointRoot)) written.set(name, value);

  for (const service of services) service.child.kill('SIGTERM');
  const stopped = await Promise.all(services);
  stopped.forEach((result, i) => written.set(`service ${i} output`, result.stdout + result.stderr));
  t.true(stopped.every((result) => result.code === 0));

  t.true(
    [...written.keys()].some((name) => name.startsWith('redis ') && name.includes(runId)),
    'the run record was searched',
  );
  t.true(
    [...written.values()].some((text) => text.includes('fmnist_worker_examples_total')),
    'the workers’ metrics were searched',
  );
  for (const [what, secret] of Object.entries(secrets)) {
    const holders = [...written].filter(([, text]) => text.includes(secret)).map(([name]) => name);
    t.deepEqual(holders, [], `the ${what} was written to these`);
  }
});
