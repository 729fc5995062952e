/**
 * Worker processes start with the settings of worker/process-tuning.env whoever launches them:
 * `npm run worker` (package.json sources the file) and `launch --local` (LocalCluster reads it
 * through worker/process-tuning.ts). Read back from the live processes' /proc entries.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import test from 'ava';
import { LocalCluster } from '../coordinator/local-cluster.ts';
import { RING_NODE_FLAGS, RING_PROCESS_ENV } from '../worker/process-tuning.ts';
import { REPO_ROOT } from './helpers/cli.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

let redis: TestRedis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
});
test.after.always(() => redis?.close());

interface ProcessView {
  pid: number;
  argv: string[];
  env: Record<string, string>;
}

async function nulSeparated(file: string): Promise<string[]> {
  return (await readFile(file, 'utf8')).split('\0').filter((part) => part !== '');
}

/** The live process whose command line has `--prefix <prefix>` (each test uses its own prefix). */
async function findWorker(prefix: string): Promise<ProcessView | undefined> {
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = await nulSeparated(`/proc/${entry}/cmdline`).catch((): string[] => []);
    const at = argv.indexOf('--prefix');
    if (at < 0 || argv[at + 1] !== prefix || !argv.some((arg) => arg.endsWith(path.join('worker', 'main.ts')))) continue;
    const pairs = await nulSeparated(`/proc/${entry}/environ`).catch((): string[] => []);
    return { pid: Number(entry), argv, env: environment(pairs) };
  }
  return undefined;
}

/**
 * Polls until the worker's log says it waits for jobs, the line it writes just before it
 * installs its signal hook (a start takes seconds on a loaded machine), then finds its process.
 */
async function waitForReadyWorker(t: import('ava').ExecutionContext, prefix: string, log: () => Promise<string>, gone: () => boolean): Promise<ProcessView> {
  while (!(await log()).includes(`(prefix ${prefix})`)) {
    if (gone()) throw new Error(`the worker exited before it was ready:\n${await log()}`);
    await sleep(100);
  }
  const found = await findWorker(prefix);
  if (found === undefined) throw new Error(`no process with --prefix ${prefix}`);
  // Whatever the test's outcome, the worker does not outlive it.
  t.teardown(() => {
    try {
      process.kill(found.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  });
  return found;
}

/**
 * RING_PROCESS_ENV as /proc shows it for a process started with it: glibc's loader rewrites
 * GLIBC_TUNABLES in place there (2.36 leaves only the first tunable, having applied them all;
 * getenv still sees the whole value), so a worker's /proc environ is compared with that of
 * another process started with the file's settings, not with the file.
 */
async function tunedEnvironmentInProc(): Promise<Record<string, string>> {
  const script = "process.stdout.write(require('node:fs').readFileSync('/proc/self/environ'))";
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { env: { ...RING_PROCESS_ENV } });
  const seen = environment(stdout.split('\0').filter((pair) => pair !== ''));
  return Object.fromEntries(Object.keys(RING_PROCESS_ENV).map((name) => [name, seen[name]]));
}

function environment(pairs: string[]): Record<string, string> {
  return Object.fromEntries(pairs.map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]));
}

async function assertTuned(t: import('ava').ExecutionContext, worker: ProcessView): Promise<void> {
  t.true(RING_NODE_FLAGS.length > 0, 'process-tuning.env names Node flags');
  t.true(Object.keys(RING_PROCESS_ENV).length > 0, 'process-tuning.env names environment variables');
  const nodeFlags = worker.argv.slice(1, worker.argv.indexOf('--import'));
  t.deepEqual(nodeFlags, [...RING_NODE_FLAGS], `command line: ${worker.argv.join(' ')}`);
  const expected = await tunedEnvironmentInProc();
  for (const [name, value] of Object.entries(expected)) t.is(worker.env[name], value, name);
}

test.serial('npm run worker starts node with the flags and environment of worker/process-tuning.env', async (t) => {
  const prefix = uniquePrefix('npm-worker');
  const npm = spawn('npm', ['run', '--silent', 'worker', '--', '--redis', redis.url, '--prefix', prefix, '--name', prefix], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  npm.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => npm.once('exit', (code) => resolve(code)));
  t.teardown(() => void npm.kill('SIGKILL'));
  const worker = await waitForReadyWorker(
    t,
    prefix,
    () => Promise.resolve(stderr),
    () => npm.exitCode !== null,
  );
  await assertTuned(t, worker);
  process.kill(worker.pid, 'SIGTERM');
  t.is(await exited, 0, 'the worker drains and exits 0 on SIGTERM, and npm with it');
});

test.serial('launch --local starts its workers with the same settings', async (t) => {
  const prefix = uniquePrefix('local-worker');
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-local-launch-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const cluster = LocalCluster.start({
    workers: 1,
    redis: redis.url,
    prefix,
    checkpointRoot: path.join(scratch, 'ckpt'),
    logDir: path.join(scratch, 'logs'),
  });
  t.teardown(() => cluster.stop(5_000));
  const log = () => readFile(cluster.logFiles[0], 'utf8').catch(() => '');
  await assertTuned(t, await waitForReadyWorker(t, prefix, log, () => cluster.exited.length > 0));
  await cluster.stop();
  t.deepEqual(cluster.exited, [{ worker: 0, code: 0 }]);
});
