/**
 * A worker's security settings: the ring's TLS files (`--tls-cert`, `--tls-key`, `--tls-ca`,
 * or FMNIST_TLS_*), read and checked once by compileWorkerOptions, with a ConfigError naming the
 * flag at fault; and the start-up warning of a worker that would send its ring token in the
 * clear over a network.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { compileRedisTarget } from '../shared/config/redis-options.ts';
import { ConfigError } from '../shared/errors.ts';
import { securityWarnings } from '../worker/security-warnings.ts';
import { compileWorkerOptions, type WorkerOptions } from '../worker/worker-options.ts';
import { runCli } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';
import { makeCertificateAuthority, type CertificateAuthority, type CertificateFiles } from './helpers/tls-certificates.ts';

const REDIS = 'redis://10.0.0.5:6379';
let ca: CertificateAuthority;
let worker: CertificateFiles;
let other: CertificateFiles;
let notPem: string;
let redis: TestRedis;

test.before(async () => {
  ca = await makeCertificateAuthority('worker');
  [worker, other] = await Promise.all([ca.issue('worker'), ca.issue('other')]);
  notPem = path.join(ca.dir, 'not-pem.txt');
  await writeFile(notPem, 'not a certificate\n');
  redis = await startTestRedis({ persist: false });
});
test.after.always(async () => {
  await redis?.close();
  await ca?.remove();
});

test('the three TLS files, from options or the environment, become the ring TLS material', (t) => {
  const expected = { ca: readFileSync(ca.cert), cert: readFileSync(worker.cert), key: readFileSync(worker.key) };
  t.deepEqual(compileWorkerOptions({ redisUrl: REDIS, tlsCa: ca.cert, tlsCert: worker.cert, tlsKey: worker.key }, {}).tls, expected);
  const env = { FMNIST_TLS_CA: ca.cert, FMNIST_TLS_CERT: worker.cert, FMNIST_TLS_KEY: worker.key };
  t.deepEqual(compileWorkerOptions({ redisUrl: REDIS }, env).tls, expected);
  t.is(compileWorkerOptions({ redisUrl: REDIS }, { FMNIST_TLS_CA: '', FMNIST_TLS_CERT: '', FMNIST_TLS_KEY: '' }).tls, undefined, 'empty variables are unset');
});

/** [what is wrong, TLS options, the option the error must name]. */
const INVALID: [string, () => WorkerOptions, string][] = [
  ['a certificate and key without a CA', () => ({ tlsCert: worker.cert, tlsKey: worker.key }), 'tls-ca'],
  ['a CA alone', () => ({ tlsCa: ca.cert }), 'tls-cert'],
  ['a certificate without its key', () => ({ tlsCa: ca.cert, tlsCert: worker.cert }), 'tls-key'],
  ['a certificate file that does not exist', () => ({ tlsCa: ca.cert, tlsCert: path.join(ca.dir, 'missing.pem'), tlsKey: worker.key }), 'tls-cert'],
  ['a CA file that is not PEM', () => ({ tlsCa: notPem, tlsCert: worker.cert, tlsKey: worker.key }), 'tls-ca'],
  ['a key that is not PEM', () => ({ tlsCa: ca.cert, tlsCert: worker.cert, tlsKey: notPem }), 'tls-key'],
  ["another certificate's key", () => ({ tlsCa: ca.cert, tlsCert: worker.cert, tlsKey: other.key }), 'tls-key'],
];

for (const [what, options, option] of INVALID) {
  test(`${what} is a ConfigError naming ${option}`, (t) => {
    const error = t.throws(() => compileWorkerOptions({ redisUrl: REDIS, ...options() }, {}), { instanceOf: ConfigError });
    t.is(error?.code, 'CONFIG_INVALID');
    t.is(error?.option, option);
  });
}

test('a token without TLS is a warning when the ring is reachable beyond loopback, and only then', (t) => {
  const tls = { ca: Buffer.alloc(0), cert: Buffer.alloc(0), key: Buffer.alloc(0) };
  const redis = compileRedisTarget({ url: REDIS });
  const codes = (settings: Omit<Parameters<typeof securityWarnings>[0], 'redis'>) => securityWarnings({ redis, ...settings }).map((warning) => warning.code);
  t.deepEqual(codes({ authToken: 's', tls: undefined, listenHost: '0.0.0.0', advertiseHost: '10.0.0.9' }), ['RING_TOKEN_IN_CLEAR']);
  t.deepEqual(codes({ authToken: 's', tls: undefined, listenHost: '10.0.0.9', advertiseHost: undefined }), ['RING_TOKEN_IN_CLEAR']);
  t.deepEqual(codes({ authToken: 's', tls: undefined, listenHost: '127.0.0.1', advertiseHost: 'worker-3' }), ['RING_TOKEN_IN_CLEAR']);
  t.deepEqual(codes({ authToken: 's', tls: undefined, listenHost: '127.0.0.1', advertiseHost: undefined }), [], 'loopback never leaves the host');
  t.deepEqual(codes({ authToken: 's', tls: undefined, listenHost: '::1', advertiseHost: 'localhost' }), []);
  t.deepEqual(codes({ authToken: 's', tls, listenHost: '0.0.0.0', advertiseHost: '10.0.0.9' }), [], 'TLS encrypts the token');
  t.deepEqual(codes({ authToken: undefined, tls: undefined, listenHost: '0.0.0.0', advertiseHost: '10.0.0.9' }), [], 'no token to leak');
});

test('a Redis password sent without TLS beyond loopback is a warning, and only then', (t) => {
  const ring = { authToken: undefined, tls: undefined, listenHost: '127.0.0.1', advertiseHost: undefined };
  const codes = (redis: Parameters<typeof compileRedisTarget>[0]) =>
    securityWarnings({ ...ring, redis: compileRedisTarget(redis) }).map((warning) => warning.code);
  t.deepEqual(codes({ url: 'redis://redis:6379', password: 's' }), ['REDIS_PASSWORD_IN_CLEAR']);
  t.deepEqual(codes({ url: 'redis://:s@10.0.0.5:6379' }), ['REDIS_PASSWORD_IN_CLEAR']);
  t.deepEqual(codes({ url: 'redis://127.0.0.1:6379', password: 's' }), [], 'loopback never leaves the host');
  t.deepEqual(codes({ url: 'rediss://redis:6379', password: 's' }), [], 'TLS encrypts it');
  t.deepEqual(codes({ url: 'redis://redis:6379' }), [], 'no password to leak');
});

/** Starts a worker CLI and stops it once it is ready (its line `(prefix <prefix>)`); whether it got there, and the codes of its warnings. */
async function startAndStop(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv): Promise<{ warnings: string[]; ready: boolean }> {
  const prefix = uniquePrefix('security');
  const cli = runCli('worker', ['--redis', redis.url, '--prefix', prefix, '--metrics-port', 'off', ...args], {
    env: { FMNIST_AUTH_TOKEN: 'ring-secret', ...env },
  });
  t.teardown(() => void cli.child.kill('SIGKILL'));
  let stderr = '';
  let ready = false;
  cli.child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    ready ||= stderr.includes(`(prefix ${prefix})`);
    // SIGKILL: the worker may not have installed its signal hook yet, and its drain is not what is tested.
    if (ready) cli.child.kill('SIGKILL');
  });
  const result = await cli;
  return { warnings: [...result.stderr.matchAll(/^warning \[([A-Z_]+)\]/gm)].map((match) => match[1]), ready };
}

test.serial('a worker listening beyond loopback with a token and no TLS warns at start-up, and still runs', async (t) => {
  t.deepEqual(await startAndStop(t, ['--listen-host', '0.0.0.0'], {}), { warnings: ['RING_TOKEN_IN_CLEAR'], ready: true });
});

test.serial('the same worker with the TLS flags starts without a warning', async (t) => {
  const tls = ['--tls-cert', worker.cert, '--tls-key', worker.key, '--tls-ca', ca.cert];
  t.deepEqual(await startAndStop(t, ['--listen-host', '0.0.0.0', ...tls], {}), { warnings: [], ready: true });
});

test.serial('a worker given a TLS file it cannot read exits with CONFIG_INVALID before it starts', async (t) => {
  const result = await runCli('worker', ['--redis', redis.url, '--tls-cert', path.join(ca.dir, 'missing.pem'), '--tls-key', worker.key, '--tls-ca', ca.cert]);
  t.is(result.code, 2);
  t.regex(result.stderr, /^error \[CONFIG_INVALID\]/m);
});
