/**
 * `coordinator launch --local --workers 2` of the smallest run worth training (tiny-cnn, one
 * epoch of 512 images at 28x28), in its own state directory: for tests of how the processes
 * of a local cluster are wired (credentials, TLS), not of what they learn.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { jsonLines, runCli, type CliResult } from './cli.ts';
import { uniquePrefix } from './redis-server.ts';

const TINY_RUN = [
  '--model',
  'tiny-cnn',
  '--epochs',
  '1',
  '--resize',
  '28',
  '--limit-train',
  '512',
  '--limit-test',
  '128',
  '--batch-size',
  '128',
  '--backend',
  'wasm',
];

/** What the launch printed, its last JSON line ({ run, status }) and each worker's log. */
export interface TinyLocalRun {
  launch: CliResult;
  last: Record<string, unknown> | undefined;
  workerLogs: string[];
}

/** Runs it with `args` added and `env` on top of the CLI environment; the state directory goes at teardown. */
export async function tinyLocalRun(t: ExecutionContext, args: string[], env: NodeJS.ProcessEnv): Promise<TinyLocalRun> {
  const stateDir = await mkdtemp(path.join(os.tmpdir(), 'fmnist-tiny-local-'));
  t.teardown(() => rm(stateDir, { recursive: true, force: true }));
  const command = ['launch', '--local', '--workers', '2', '--json', '--state-dir', stateDir, '--prefix', uniquePrefix('tiny-local'), ...args, ...TINY_RUN];
  const launch = await runCli('coordinator', command, { env: { REDIS_URL: '', ...env } });
  const last = launch.code === 0 ? jsonLines(launch.stdout).at(-1) : undefined;
  const logDir = path.join(stateDir, 'logs', String(last?.run));
  const files = last === undefined ? [] : await readdir(logDir);
  return { launch, last, workerLogs: await Promise.all(files.map((file) => readFile(path.join(logDir, file), 'utf8'))) };
}
