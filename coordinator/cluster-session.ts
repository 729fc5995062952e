import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_PROBE_URL, ensureRedis, type LocalRedis } from '../shared/redis/local-redis.ts';
import { redisAnswersWithin, refuseBadCredentials } from '../shared/redis/ping-redis.ts';
import { compileRedisTarget, redisCredentials, type RedisCredentials } from '../shared/config/redis-options.ts';
import { RedisError } from '../shared/redis/redis-error.ts';
import { freePort } from '../shared/redis/redis-server-process.ts';
import { DEFAULT_KEY_PREFIX } from '../shared/redis/keys.ts';
import { installShutdownSignal } from '../shared/process/shutdown-signal.ts';
import type { RunRecord, RunRestart } from '../shared/run/run-state.ts';
import { rendezvousMembers } from '../worker/rendezvous.ts';
import { ConfigError } from '../shared/errors.ts';
import { dialableHost, joinHostPort } from '../shared/net/host-port.ts';
import { ClusterClient } from './cluster-client.ts';
import { CoordinatorService, type CoordinatorMetricsOptions } from './coordinator-service.ts';
import { epochJson, formatEpochLine } from './epoch-line.ts';
import { LocalCluster } from './local-cluster.ts';
import { LocalPrometheus } from './local-prometheus.ts';
import { ProgressBar } from './progress-bar.ts';
import { describeFailure } from './run-failure-text.ts';
import { followRun } from './run-follower.ts';
import { METRICS_FLAGS, metricsOptionsFromFlags, numberFlag, stringFlag, type FlagValues } from './cli-flags.ts';

/** Flags of commands that talk to a cluster. */
export const CLUSTER_FLAGS = {
  redis: { type: 'string' },
  prefix: { type: 'string' },
  local: { type: 'boolean' },
  'state-dir': { type: 'string' },
  'redis-probe': { type: 'string' },
  'redis-user': { type: 'string' },
  'redis-password': { type: 'string' },
  'redis-tls-ca': { type: 'string' },
  'redis-tls-cert': { type: 'string' },
  'redis-tls-key': { type: 'string' },
} as const;

/**
 * `--redis-user`, `--redis-password` and `--redis-tls-ca/-cert/-key`, else REDIS_USERNAME,
 * REDIS_PASSWORD and REDIS_TLS_*: the credentials of the Redis given by URL (or probed).
 */
export function redisCredentialsFromFlags(values: FlagValues, env: NodeJS.ProcessEnv = process.env): RedisCredentials {
  const given = {
    username: stringFlag(values, 'redis-user'),
    password: stringFlag(values, 'redis-password'),
    tlsCa: stringFlag(values, 'redis-tls-ca'),
    tlsCert: stringFlag(values, 'redis-tls-cert'),
    tlsKey: stringFlag(values, 'redis-tls-key'),
  };
  return redisCredentials(given, env);
}

/**
 * Flags of commands that can run the cluster here (`launch`, `resume`): where the coordinator
 * serves its metrics, and `--prometheus` to run Prometheus against it.
 */
export const LOCAL_RUN_FLAGS = {
  ...METRICS_FLAGS,
  prometheus: { type: 'boolean' },
  'prometheus-port': { type: 'string' },
} as const;

/** What a local run serves for monitoring, from {@link LOCAL_RUN_FLAGS}. */
export interface MonitoringPlan {
  /** The coordinator's metrics server; undefined: none. */
  metrics?: CoordinatorMetricsOptions;
  /** Start Prometheus (`--prometheus`) on this port, or 'auto': a free one (9090 is often Debian's own prometheus service). */
  prometheusPort?: number | 'auto';
}

/**
 * Checks the monitoring flags (ConfigError when they do not fit), before a command creates or
 * queues anything: the coordinator's metrics default to a free port with --local.
 */
export function monitoringPlan(values: FlagValues): MonitoringPlan {
  if (values.local !== true) {
    if (values.prometheus === true) throw new ConfigError('--prometheus needs --local: it watches the cluster this command runs');
    return {};
  }
  const metrics = metricsOptionsFromFlags(values, 'auto');
  if (values.prometheus !== true) return { metrics };
  if (metrics === undefined) throw new ConfigError("--prometheus needs the coordinator's metrics: drop --metrics-port off");
  const port = numberFlag(values, 'prometheus-port');
  if (port === undefined) return { metrics, prometheusPort: 'auto' };
  if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new ConfigError(`--prometheus-port must be an integer in [1, 65535], got ${port}`);
  return { metrics, prometheusPort: port };
}

/** Where `--local` keeps its Redis data, checkpoints and worker logs, so runs stay resumable. */
export function stateDir(values: FlagValues): string {
  return path.resolve(stringFlag(values, 'state-dir') ?? process.env.FMNIST_STATE_DIR ?? '.fmnist-cluster');
}

/**
 * Where `--local` looks for a Redis that is already running before it uses the state
 * directory's own: `--redis-probe`, else FMNIST_REDIS_PROBE, else 127.0.0.1:6379. `off` never
 * looks, so runs never land in a server that someone else runs there. Null for `off`.
 */
export function redisProbeUrl(values: FlagValues, env: NodeJS.ProcessEnv = process.env): string | null {
  const value = stringFlag(values, 'redis-probe') ?? (env.FMNIST_REDIS_PROBE || undefined) ?? DEFAULT_PROBE_URL;
  if (value === 'off') return null;
  if (!/^rediss?:\/\//.test(value)) throw new ConfigError(`--redis-probe / FMNIST_REDIS_PROBE must be a redis:// URL or off, got ${JSON.stringify(value)}`);
  return value;
}

export interface ClusterSession {
  client: ClusterClient;
  redis?: LocalRedis;
  close(): Promise<void>;
}

/** How long a one-shot command waits for Redis to answer before it gives up (ms). */
const COMMAND_REDIS_TIMEOUT_MS = 5_000;

/** Options of {@link openClusterSession}. */
export interface ClusterSessionOptions {
  /** A service (`serve`) keeps retrying a Redis that does not answer yet. @default false */
  waitForRedis?: boolean;
  /**
   * A command that reads runs (list, status, report): with no Redis given, it reads the state
   * directory's as `--local` does, when that directory exists (a `launch --local` made it).
   * @default false
   */
  readsStateDir?: boolean;
}

/**
 * Connects to the cluster's Redis: `--redis`, else REDIS_URL; with `--local`, when neither is set
 * and nothing answers on the probe URL (see {@link redisProbeUrl}), the redis-server whose data
 * lives in the state directory, started when it is not running (so `resume --local` finds the
 * run again). A command (launch, status, ...) fails with REDIS_UNAVAILABLE when Redis does not
 * answer, rather than retrying silently; a service (`waitForRedis`, as `serve`) keeps retrying,
 * as it must when it starts before Redis does.
 */
export async function openClusterSession(
  values: FlagValues,
  env: NodeJS.ProcessEnv = process.env,
  options: ClusterSessionOptions = {},
): Promise<ClusterSession> {
  const url = stringFlag(values, 'redis') ?? (env.REDIS_URL || undefined);
  const prefix = stringFlag(values, 'prefix') ?? env.FMNIST_PREFIX ?? DEFAULT_KEY_PREFIX;
  const credentials = redisCredentialsFromFlags(values, env);
  let redis: LocalRedis | undefined;
  if (usesStateDir(values, url, options)) {
    redis = await ensureRedis({ url, env, credentials, probeUrl: redisProbeUrl(values, env), dataDir: path.join(stateDir(values), 'redis') });
  } else if (!url) {
    const reads = options.readsStateDir === true ? ` (no state directory to read at ${stateDir(values)}; see --state-dir)` : '';
    throw new ConfigError(`no Redis: pass --redis redis://host:port, set REDIS_URL or use --local${reads}`);
  }
  const target = redis?.target ?? compileRedisTarget({ url: url!, ...credentials });
  if (redis === undefined && options.waitForRedis === true) await refuseBadCredentials(target);
  else if (redis === undefined && !(await redisAnswersWithin(target, COMMAND_REDIS_TIMEOUT_MS))) {
    throw new RedisError('REDIS_UNAVAILABLE', `Redis at ${target.displayUrl} does not answer PING within ${COMMAND_REDIS_TIMEOUT_MS / 1000} s`);
  }
  const client = new ClusterClient(target, prefix);
  return {
    client,
    redis,
    async close() {
      await client.close();
      await redis?.close();
    },
  };
}

/**
 * `--local`, or a reading command with no Redis given beside an existing state directory: after
 * `launch --local` finished, `list` and `status <run>` need no flag to find its runs.
 */
function usesStateDir(values: FlagValues, url: string | undefined, options: ClusterSessionOptions): boolean {
  if (values.local === true) return true;
  return url === undefined && options.readsStateDir === true && existsSync(stateDir(values));
}

export interface RunToEndOptions {
  json: boolean;
  /** Start the coordinator service and N worker processes here (`--local`). */
  local: boolean;
  values: FlagValues;
  /** With `local`: the coordinator's metrics and Prometheus (see {@link monitoringPlan}). */
  monitoring?: MonitoringPlan;
}

function printEpochs(run: RunRecord, json: boolean, bar: ProgressBar) {
  return (entry: RunRecord['history'][number]) => {
    bar.clear();
    const backend = entry.backend ?? run.config.backend;
    const line = json
      ? epochJson(entry, backend, { workers: run.config.workers })
      : formatEpochLine(entry, run.config.epochs, `${backend} x${run.config.workers}`);
    process.stdout.write(`${line}\n`);
  };
}

/**
 * Follows a queued run to its end, printing each epoch (and a progress bar on a terminal); with
 * `local`, runs the workers here and stops them cleanly on Ctrl-C, leaving the run resumable.
 * Resolves to the exit code: 0 only when the run completed.
 */
export async function runToEnd(
  session: ClusterSession,
  run: RunRecord,
  options: RunToEndOptions,
  start: (service?: CoordinatorService) => Promise<void>,
): Promise<number> {
  const { client } = session;
  const monitoring = options.monitoring ?? {};
  const service = options.local ? new CoordinatorService(client, (line) => process.stderr.write(`${line}\n`), monitoring.metrics) : undefined;
  await service?.start();
  const dir = stateDir(options.values);
  const prometheus = await startMonitoring(service, monitoring, dir).catch(async (error: unknown) => {
    await service?.close();
    throw error;
  });
  const cluster = options.local
    ? LocalCluster.start({
        workers: run.config.workers,
        redis: client.target,
        prefix: client.keys.prefix,
        checkpointRoot: path.join(dir, 'checkpoints'),
        logDir: path.join(dir, 'logs', run.id),
        threads: localThreads(run),
        env: { OMP_WAIT_POLICY: 'PASSIVE', ...process.env },
        // A dead worker is started again (as torchrun's agent does), as often as the run may restart.
        respawns: run.config.maxRestarts,
        log: (line) => process.stderr.write(`${line}\n`),
      })
    : undefined;
  const follow = new AbortController();
  const shutdown = installShutdownSignal({ log: (line) => process.stderr.write(`\n${line}\n`) });
  shutdown.onDrain(async () => {
    if (!cluster) return follow.abort();
    await cluster.stop();
    await markStopped(client, run.id);
  });
  const bar = new ProgressBar();
  try {
    await start(service);
    if (!options.json) process.stderr.write(`run ${run.id}: ${run.config.workers} worker(s)${cluster ? `, logs in ${cluster.options.logDir}` : ''}\n`);
    const final = await followRun(
      client.runs,
      run.id,
      {
        onEpoch: printEpochs(run, options.json, bar),
        onProgress: (p) => {
          const done = (p.epoch - 1) * p.stepsPerEpoch + p.step;
          bar.update(
            done,
            run.config.epochs * p.stepsPerEpoch,
            `epoch ${p.epoch}/${run.config.epochs} step ${p.step}/${p.stepsPerEpoch} loss ${p.loss.toFixed(3)} ${p.examplesPerSec.toFixed(1)} ex/s`,
          );
        },
        onRestart: (restart) => {
          bar.clear();
          process.stderr.write(`run ${run.id} restarted as generation ${restart.generation}: ${describeFailure(restart.cause)}\n`);
          if (cluster) void killHungWorker(client, cluster, run.id, restart);
        },
      },
      follow.signal,
    );
    bar.clear();
    const why = {
      ...(final.error ? { error: final.error } : {}),
      ...(final.failure ? { failure: final.failure } : {}),
      ...(final.restarts.length > 0 ? { restarts: final.restarts } : {}),
    };
    process.stdout.write(`${JSON.stringify({ run: run.id, status: final.state, ...why })}\n`);
    if (final.state !== 'completed' && final.state !== 'running' && !options.json) {
      process.stderr.write(
        `run ${run.id} is ${final.state}${final.error ? `: ${final.error}` : ''}; resume with: npm run coordinator -- resume ${run.id}${options.local ? ' --local' : ''}\n`,
      );
    }
    return final.state === 'completed' ? 0 : shutdown.requested ? 130 : 1;
  } finally {
    shutdown.dispose();
    await cluster?.stop();
    await prometheus?.close();
    await service?.close();
  }
}

/**
 * Says where the local coordinator's metrics are and, with `--prometheus`, starts Prometheus
 * on them (config and data under `<state-dir>/prometheus`, kept for the next run).
 */
async function startMonitoring(service: CoordinatorService | undefined, plan: MonitoringPlan, dir: string): Promise<LocalPrometheus | undefined> {
  const metrics = service?.metricsServer;
  if (metrics === undefined) return undefined;
  const discoveryUrl = `http://${joinHostPort(dialableHost(metrics.host), metrics.port)}/sd`;
  process.stderr.write(`metrics: ${metrics.url}/metrics (coordinator), Prometheus service discovery of the workers: ${discoveryUrl}\n`);
  if (plan.prometheusPort === undefined) return undefined;
  // A scrape waits for a worker's step to let go of its event loop (seconds on a CPU), hence 10 s;
  // reading /sd is cheap, so every 2 s, and a local run's workers are scraped soon after they start.
  const port = plan.prometheusPort === 'auto' ? await freePort() : plan.prometheusPort;
  const prometheus = await LocalPrometheus.start({ discoveryUrl, scrapeInterval: '10s', discoveryRefresh: '2s', port, dir: path.join(dir, 'prometheus') });
  process.stderr.write(`prometheus: ${prometheus.url} (config ${prometheus.configFile})\n`);
  return prometheus;
}

/**
 * Local workers share this machine's cores: unless the run says otherwise (its config's threads
 * win over a worker's own), each gets cores / N threads (at least 1), so N workers do not
 * oversubscribe the CPU. OpenMP threads wait passively, so an idle worker's spinning does not
 * slow its neighbours.
 */
function localThreads(run: RunRecord): number | undefined {
  if (run.config.threads !== undefined) return undefined;
  return Math.max(1, Math.floor(os.availableParallelism() / run.config.workers));
}

/** After local workers were stopped: a run they left queued or running is marked so it can be resumed. */
async function markStopped(client: ClusterClient, runId: string): Promise<void> {
  const run = await client.runs.get(runId);
  if (run.state === 'running') await client.runs.transition(runId, 'interrupted', { error: 'stopped by the coordinator' }).catch(() => {});
  if (run.state === 'queued') await client.runs.transition(runId, 'cancelled', { error: 'stopped before it started' }).catch(() => {});
}

/**
 * After a restart caused by a hung rank, `launch --local` kills that rank's process if it is one
 * of its own (it would hold its slot, stopped, while the new generation waits for N workers),
 * as torchrun's agent does with workers that stop answering.
 */
async function killHungWorker(client: ClusterClient, cluster: LocalCluster, runId: string, restart: RunRestart): Promise<void> {
  const { code, peerRank } = restart.cause;
  if (code !== 'COLLECTIVE_PEER_HUNG' || peerRank === undefined) return;
  try {
    const members = await rendezvousMembers(client.redis, client.keys, runId, restart.generation - 1);
    const hung = members.find((member) => member.rank === peerRank);
    if (hung) cluster.killHung(hung.pid);
  } catch (error) {
    process.stderr.write(`could not look up the hung worker of rank ${peerRank}: ${(error as Error).message}\n`);
  }
}
