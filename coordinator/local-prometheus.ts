/**
 * A Prometheus server on this machine for a local cluster (`launch --local --prometheus`), and
 * for the tests: Debian's `prometheus` with a generated config that discovers the cluster
 * through the coordinator's `/sd`, its data in a directory that outlives the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MetricsError } from '../shared/errors.ts';
import { prometheusConfig, type PrometheusConfigOptions } from './prometheus-config.ts';

/** Options of {@link LocalPrometheus.start}. */
export interface LocalPrometheusOptions extends PrometheusConfigOptions {
  /** Port of its web UI and API on 127.0.0.1. */
  port: number;
  /** Holds `prometheus.yml` and the TSDB (`data/`); kept on close. */
  dir: string;
  /** @default env.PROMETHEUS ?? 'prometheus' (Debian's package installs /usr/bin/prometheus) */
  executable?: string;
  /** How long to wait for `/-/ready`, in ms. @default 30000 */
  startTimeoutMs?: number;
}

/** Output kept for error messages, in characters. */
const LOG_TAIL_CHARS = 4_000;
/** How long close() waits after SIGTERM before SIGKILL, in ms. */
const STOP_GRACE_MS = 10_000;

/** Children still running: stopped when this process exits, so that no Prometheus is orphaned. */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGTERM');
});

/** A running Prometheus child process (in its own process group: we decide when it stops). */
export class LocalPrometheus {
  private logTail = '';
  private closing?: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    /** The config file it runs with. */
    readonly configFile: string,
  ) {}

  /**
   * Writes the config and starts Prometheus; resolves once it answers `/-/ready`. Rejects with
   * MetricsError 'METRICS_PROMETHEUS_NOT_FOUND' when the executable is missing and
   * 'METRICS_PROMETHEUS_START_FAILED' when it exits or does not get ready in time.
   */
  static async start(options: LocalPrometheusOptions): Promise<LocalPrometheus> {
    const configFile = path.join(options.dir, 'prometheus.yml');
    await mkdir(path.join(options.dir, 'data'), { recursive: true });
    await writeFile(configFile, prometheusConfig(options));
    const executable = options.executable ?? process.env.PROMETHEUS ?? 'prometheus';
    const child = spawn(
      executable,
      [
        `--config.file=${configFile}`,
        `--storage.tsdb.path=${path.join(options.dir, 'data')}`,
        `--web.listen-address=127.0.0.1:${options.port}`,
        '--log.level=warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true },
    );
    liveChildren.add(child);
    child.once('exit', () => liveChildren.delete(child));
    const prometheus = new LocalPrometheus(child, options.port, configFile);
    const keep = (chunk: Buffer) => (prometheus.logTail = (prometheus.logTail + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    try {
      await prometheus.waitUntilReady(executable, options.startTimeoutMs ?? 30_000);
    } catch (error) {
      await prometheus.close();
      throw error;
    }
    return prometheus;
  }

  /** `http://127.0.0.1:<port>`: its web UI and HTTP API. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** SIGTERM (Prometheus flushes its head block), SIGKILL after a grace period. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null || this.child.pid === undefined) return resolve();
      const kill = setTimeout(() => this.child.kill('SIGKILL'), STOP_GRACE_MS);
      this.child.once('exit', () => {
        clearTimeout(kill);
        resolve();
      });
      this.child.kill('SIGTERM');
    });
    return this.closing;
  }

  private async waitUntilReady(executable: string, timeoutMs: number): Promise<void> {
    let spawnError: Error | undefined;
    this.child.once('error', (error) => (spawnError = error));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (spawnError)
        throw new MetricsError('METRICS_PROMETHEUS_NOT_FOUND', `cannot run ${executable} (Debian: apt-get install prometheus): ${spawnError.message}`, {
          cause: spawnError,
        });
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new MetricsError('METRICS_PROMETHEUS_START_FAILED', `${executable} exited at start:\n${this.logTail}`);
      }
      if (await isReady(this.url)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new MetricsError('METRICS_PROMETHEUS_START_FAILED', `${executable} was not ready on ${this.url} within ${timeoutMs} ms:\n${this.logTail}`);
  }
}

async function isReady(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) });
    return response.ok;
  } catch {
    return false;
  }
}
