/**
 * Redis with a password, an ACL user and TLS, configured once (shared/config/redis-options.ts)
 * for every connection: real redis-servers started with `--requirepass`, an ACL user, and
 * `--tls-port` with certificates made by openssl. Right credentials work for the CLI, for
 * `launch --local` and its workers (BullMQ included); wrong or missing ones fail with
 * REDIS_AUTH, an untrusted server certificate with REDIS_TLS; no password is ever printed.
 */
import path from 'node:path';
import test from 'ava';
import { compileRedisTarget, redisChildEnv } from '../shared/config/redis-options.ts';
import { ConfigError } from '../shared/errors.ts';
import { cliErrorCode, runCli } from './helpers/cli.ts';
import { tinyLocalRun } from './helpers/tiny-local-run.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';
import { makeCertificateAuthority, type CertificateAuthority, type CertificateFiles } from './helpers/tls-certificates.ts';

const DEFAULT_PASSWORD = 'default-secret-7f3a';
const ALICE = { name: 'alice', password: 'alice-secret-91c2' };
const TLS_PASSWORD = 'tls-secret-4be0';
const SECRETS = [DEFAULT_PASSWORD, ALICE.password, TLS_PASSWORD, 'wrong-secret-0d1e'];

let ca: CertificateAuthority;
let server: CertificateFiles;
let client: CertificateFiles;
/** requirepass and an ACL user, plaintext. */
let auth: TestRedis;
/** TLS only, client certificates required, requirepass and the same ACL user. */
let tls: TestRedis;

test.before(async () => {
  ca = await makeCertificateAuthority('redis');
  [server, client] = await Promise.all([ca.issue('redis-server'), ca.issue('redis-client')]);
  [auth, tls] = await Promise.all([
    startTestRedis({ persist: false, password: DEFAULT_PASSWORD, users: [ALICE] }),
    startTestRedis({ persist: false, password: TLS_PASSWORD, users: [ALICE], tls: { ...server, ca: ca.cert, requireClientCertificates: true } }),
  ]);
});
test.after.always(async () => {
  await Promise.all([auth?.close(), tls?.close()]);
  await ca?.remove();
});

/** Asserts that no secret of this file appears in `output`. */
function assertNoSecret(t: import('ava').ExecutionContext, output: string): void {
  for (const secret of SECRETS) t.false(output.includes(secret), 'a password was printed');
}

test('credentials given apart win over the URL, and the URL shown masks its password', (t) => {
  const target = compileRedisTarget({ url: `redis://bob:${DEFAULT_PASSWORD}@redis:6379/2`, password: 'given' });
  t.is(target.url, 'redis://redis:6379/2');
  t.is(target.displayUrl, 'redis://bob:***@redis:6379/2');
  t.deepEqual(target.redisOptions, { username: 'bob', password: 'given' });
  t.like(redisChildEnv(target), { REDIS_USERNAME: 'bob', REDIS_PASSWORD: 'given', REDIS_TLS_CA: '' });
  t.is(compileRedisTarget({ url: 'redis://redis:6379' }).displayUrl, 'redis://redis:6379');
  const { tls: material } = compileRedisTarget({ url: 'rediss://redis:6380', tlsCa: ca.cert }).redisOptions;
  t.deepEqual(Object.keys(material ?? {}), ['ca'], 'rediss:// with a CA: TLS that trusts it');
});

/** [what is wrong, options, the option the error must name]. */
const INVALID: [string, () => Parameters<typeof compileRedisTarget>[0], string][] = [
  ['a URL of another scheme', () => ({ url: 'http://redis:6379' }), 'redis'],
  ['a URL that does not parse', () => ({ url: 'redis' }), 'redis'],
  ['a CA with a plaintext redis:// URL', () => ({ url: 'redis://redis:6379', tlsCa: ca.cert }), 'redis-tls-ca'],
  ['a CA file that does not exist', () => ({ url: 'rediss://redis:6379', tlsCa: path.join(ca.dir, 'missing.pem') }), 'redis-tls-ca'],
  ['a client certificate without its key', () => ({ url: 'rediss://redis:6379', tlsCert: client.cert }), 'redis-tls-key'],
];

for (const [what, options, option] of INVALID) {
  test(`${what} is a ConfigError naming ${option}`, (t) => {
    const error = t.throws(() => compileRedisTarget(options()), { instanceOf: ConfigError });
    t.is(error?.option, option);
  });
}

test('list works with the default password from REDIS_PASSWORD, the ACL user from flags, or both in the URL', async (t) => {
  const prefix = ['--prefix', uniquePrefix('auth-list'), '--json'];
  const runs = await Promise.all([
    runCli('coordinator', ['list', '--redis', auth.url, ...prefix], { env: { REDIS_PASSWORD: DEFAULT_PASSWORD } }),
    runCli('coordinator', ['list', '--redis', auth.url, '--redis-user', ALICE.name, '--redis-password', ALICE.password, ...prefix]),
    runCli('coordinator', ['list', '--redis', `redis://${ALICE.name}:${ALICE.password}@127.0.0.1:${auth.port}`, ...prefix]),
  ]);
  for (const result of runs) {
    t.is(result.code, 0, result.stderr);
    t.deepEqual(JSON.parse(result.stdout), []);
  }
});

test('a wrong or missing password, or an unknown user, is REDIS_AUTH, and the password tried is not printed', async (t) => {
  const prefix = ['--prefix', uniquePrefix('auth-wrong')];
  const runs = await Promise.all([
    runCli('coordinator', ['list', '--redis', auth.url, ...prefix], { env: { REDIS_PASSWORD: 'wrong-secret-0d1e' } }),
    runCli('coordinator', ['list', '--redis', auth.url, ...prefix], { env: { REDIS_PASSWORD: '' } }),
    runCli('coordinator', ['list', '--redis', `redis://mallory:wrong-secret-0d1e@127.0.0.1:${auth.port}`, ...prefix]),
    runCli('worker', ['--redis', auth.url, '--redis-user', ALICE.name, '--metrics-port', 'off', ...prefix], { env: { REDIS_PASSWORD: 'wrong-secret-0d1e' } }),
  ]);
  t.deepEqual(
    runs.map((result) => [result.code, cliErrorCode(result.stderr)]),
    [
      [1, 'REDIS_AUTH'],
      [1, 'REDIS_AUTH'],
      [1, 'REDIS_AUTH'],
      [1, 'REDIS_AUTH'],
    ],
  );
  for (const result of runs) assertNoSecret(t, result.stdout + result.stderr);
});

test('over TLS with a client certificate list works; a server certificate the CA did not sign is REDIS_TLS', async (t) => {
  const prefix = ['--prefix', uniquePrefix('tls-list'), '--json'];
  const certificate = ['--redis-tls-cert', client.cert, '--redis-tls-key', client.key];
  const env = { REDIS_PASSWORD: TLS_PASSWORD };
  const good = await runCli('coordinator', ['list', '--redis', tls.url, '--redis-tls-ca', ca.cert, ...certificate, ...prefix], { env });
  t.is(good.code, 0, good.stderr);
  const stranger = await makeCertificateAuthority('not-redis');
  t.teardown(() => stranger.remove());
  const untrusted = await runCli('coordinator', ['list', '--redis', tls.url, '--redis-tls-ca', stranger.cert, ...certificate, ...prefix], { env });
  t.is(cliErrorCode(untrusted.stderr), 'REDIS_TLS', untrusted.stderr);
});

test('launch --local trains a tiny run on a TLS Redis with an ACL user: its workers and BullMQ get the same settings', async (t) => {
  const redis = ['--redis', tls.url, '--redis-user', ALICE.name, '--redis-tls-ca', ca.cert, '--redis-tls-cert', client.cert, '--redis-tls-key', client.key];
  const { launch, last, workerLogs } = await tinyLocalRun(t, redis, { REDIS_PASSWORD: ALICE.password });
  t.is(launch.code, 0, launch.stderr);
  t.is(last?.status, 'completed');
  t.is(workerLogs.length, 2);
  assertNoSecret(t, launch.stdout + launch.stderr + workerLogs.join('\n'));
});
