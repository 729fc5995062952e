import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { redisChildEnv, redisTargetOf, type RedisTarget } from '../shared/config/redis-options.ts';
import { RING_NODE_FLAGS, RING_PROCESS_ENV } from '../worker/process-tuning.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const WORKER_MAIN = path.join(REPO_ROOT, 'worker', 'main.ts');

export interface LocalClusterOptions {
  workers: number;
  /**
   * The cluster's Redis. Workers get its URL as `--redis` and its credentials and TLS files as
   * REDIS_* environment variables (never on their command line, which `ps` shows).
   */
  redis: string | RedisTarget;
  prefix: string;
  checkpointRoot: string;
  /** Each worker's stdout and stderr go to `<logDir>/worker-<k>.log`. */
  logDir: string;
  /**
   * `--threads` of each worker: used by runs whose config names no thread count. The backend
   * and everything else about the training come from the run's config. @default the worker's own
   */
  threads?: number;
  /**
   * The workers' environment, on top of worker/process-tuning.env. The ring's settings
   * (FMNIST_AUTH_TOKEN, FMNIST_TLS_CERT/KEY/CA, ...) reach the workers through it. @default process.env
   */
  env?: NodeJS.ProcessEnv;
  /**
   * How many times, in all, a worker that exits on its own (killed, crashed) is started again
   * in its place, as torchrun's agent restarts its workers; 0: never. @default 0
   */
  respawns?: number;
  /** Told when a worker exits on its own and whether it is started again. @default ignore */
  log?: (line: string) => void;
}

export type LocalClusterState = 'running' | 'stopping' | 'stopped';

/**
 * N worker processes on this machine for `launch --local`: each a real `worker/main.ts` process
 * taking jobs from the queue like any other worker. They share this process group, so a
 * terminal's Ctrl-C reaches them too; `stop()` also signals them explicitly. A worker that
 * exits on its own is started again in its slot while `respawns` last, so that the run the
 * coordinator restarts finds N workers again.
 */
export class LocalCluster {
  state: LocalClusterState = 'running';
  /** The current process of each worker slot. */
  private readonly children: ChildProcess[] = [];
  private readonly logs: WriteStream[] = [];
  private respawnsLeft: number;
  private stopping?: Promise<void>;

  private constructor(readonly options: LocalClusterOptions) {
    this.respawnsLeft = options.respawns ?? 0;
  }

  static start(options: LocalClusterOptions): LocalCluster {
    const cluster = new LocalCluster(options);
    mkdirSync(options.logDir, { recursive: true });
    for (let k = 0; k < options.workers; k += 1) cluster.spawnWorker(k);
    return cluster;
  }

  /** Paths of the workers' log files. */
  get logFiles(): string[] {
    return this.children.map((_, k) => path.join(this.options.logDir, `worker-${k}.log`));
  }

  /** Workers that exited, with their exit codes. */
  get exited(): { worker: number; code: number | null }[] {
    return this.children.flatMap((child, worker) => (child.exitCode !== null || child.signalCode !== null ? [{ worker, code: child.exitCode }] : []));
  }

  /** The pid of each slot's current process. */
  get pids(): number[] {
    return this.children.map((child) => child.pid ?? -1);
  }

  private spawnWorker(k: number): void {
    const { prefix, checkpointRoot, threads } = this.options;
    const redis = redisTargetOf(this.options.redis);
    const args = ['--import', 'tsx', WORKER_MAIN, '--redis', redis.url, '--prefix', prefix, '--checkpoint-root', checkpointRoot, '--name', `local-${k}`];
    if (threads !== undefined) args.push('--threads', String(threads));
    // The same start-up settings as `npm run worker` (worker/process-tuning.env).
    const env = { ...RING_PROCESS_ENV, ...(this.options.env ?? process.env), ...redisChildEnv(redis) };
    const child = spawn(process.execPath, [...RING_NODE_FLAGS, ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    // A respawned worker appends to its slot's log.
    const log = (this.logs[k] ??= createWriteStream(path.join(this.options.logDir, `worker-${k}.log`), { flags: 'a' }));
    child.stdout?.pipe(log, { end: false });
    child.stderr?.pipe(log, { end: false });
    child.once('exit', (code, signal) => {
      // Exit code 0 is a worker that was asked to stop (a signal from the terminal) and drained.
      if (code !== 0) this.onExit(k, child, signal ?? `code ${code}`);
    });
    this.children[k] = child;
  }

  private onExit(k: number, child: ChildProcess, how: string): void {
    if (this.state !== 'running' || this.children[k] !== child) return;
    const again = this.respawnsLeft > 0;
    this.options.log?.(`worker ${k} (pid ${child.pid}) exited (${how})${again ? '; starting it again' : ''}`);
    if (!again) return;
    this.respawnsLeft -= 1;
    this.spawnWorker(k);
  }

  /**
   * SIGKILLs the worker with this pid when it is one of ours and still there: a worker its peers
   * found hung (a stopped or frozen process) holds its slot forever otherwise. Its exit then
   * starts a new one like any other death. False when the pid is not a live worker of ours.
   */
  killHung(pid: number): boolean {
    const child = this.children.find((c) => c.pid === pid && c.exitCode === null && c.signalCode === null);
    if (!child || this.state !== 'running') return false;
    this.options.log?.(`worker pid ${pid} hung: killing it so that a new one takes its slot`);
    child.kill('SIGKILL');
    return true;
  }

  /** SIGTERM to every worker (they finish the step, checkpoint and exit), SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs = 120_000): Promise<void> {
    this.stopping ??= (async () => {
      this.state = 'stopping';
      await Promise.all(this.children.map((child) => stopChild(child, graceMs)));
      for (const log of this.logs) log.end();
      this.state = 'stopped';
    })();
    return this.stopping;
  }
}

function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
