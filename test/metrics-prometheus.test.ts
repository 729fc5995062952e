/**
 * The metrics end to end, with a real Prometheus (Debian's `prometheus`): a short real
 * `launch --local` run of 2 workers, its coordinator's `/sd` as the only way to find the
 * workers. While the run trains, every process's `/metrics` passes `promtool check metrics` and
 * the `--prometheus` one-liner's own Prometheus has found them too. Afterwards every query of the
 * Grafana dashboard, evaluated at a moment of the run through Prometheus' HTTP API, returns
 * data, and the cluster throughput it reports agrees with the run's own record over the same steps.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalPrometheus } from '../coordinator/local-prometheus.ts';
import { CLUSTER_THROUGHPUT, dashboardQueries } from '../deploy/grafana/dashboard.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { freePort } from '../shared/redis/redis-server-process.ts';
import type { RunEvent, RunProgress, RunRecord } from '../shared/run/run-state.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { jsonLines, runCli } from './helpers/cli.ts';
import { instantQuery, promtool, rangeSamples } from './helpers/prometheus.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

/**
 * Prometheus scrapes and re-reads `/sd` this often, so that a short run gives rate() many samples
 * and its extrapolation at a window's edges (which differs from series to series) stays small.
 */
const SCRAPE_SECONDS = 0.5;

let redis: TestRedis;
let scratch: string;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-prometheus-'));
});
test.after.always(async () => {
  await redis?.close();
  await rm(scratch, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const response = await fetch(url);
  return { status: response.status, body: (await response.json()) as T };
}

interface TargetGroup {
  targets: string[];
  labels: Record<string, string>;
}

/** The targets `/sd` lists, each with its role, and every one's `/metrics` linted by promtool. */
async function checkProcessesWhileTraining(
  coordinatorPort: number,
): Promise<{ roles: string[]; lint: { target: string; code: number | null; output: string }[]; health: number[] }> {
  const { body: groups } = await getJson<TargetGroup[]>(`http://127.0.0.1:${coordinatorPort}/sd`);
  const targets = groups.map((group) => ({ target: group.targets[0], role: group.labels.__meta_fmnist_role }));
  const lint = await Promise.all(
    targets.map(async ({ target }) => {
      const text = await (await fetch(`http://${target}/metrics`)).text();
      return { target, ...(await promtool(['check', 'metrics'], text)) };
    }),
  );
  const health = await Promise.all(targets.map(async ({ target }) => (await fetch(`http://${target}/healthz`)).status));
  return { roles: targets.map((t) => t.role).sort(), lint, health };
}

/**
 * The jobs of the targets the Prometheus at `url` has discovered, once it has 2 workers and the
 * coordinator, or as they were when it stopped answering (launch stops it at the end).
 */
async function untilDiscovered(url: string): Promise<string[]> {
  let jobs: string[] = [];
  for (;;) {
    try {
      const { body } = await getJson<{ data: { activeTargets: { labels: Record<string, string> }[] } }>(`${url}/api/v1/targets?state=active`);
      jobs = body.data.activeTargets.map((target) => target.labels.job).sort();
    } catch {
      return jobs;
    }
    if (jobs.length === 3) return jobs;
    await sleep(250);
  }
}

/** Resolves once the (only) run under `store` has recorded a training step. */
async function untilTraining(store: RunStore): Promise<void> {
  while ((await store.list({ limit: 1 }))[0]?.progress === undefined) await sleep(100);
}

/** The progress records rank 0 wrote for `epoch`, in order, with the time each was written. */
async function progressOf(store: RunStore, runId: string, epoch: number): Promise<{ progress: RunProgress; at: number }[]> {
  const events = await store.readEvents(runId, { count: 100_000 });
  return events
    .filter((event): event is RunEvent & { type: 'progress' } => event.type === 'progress')
    .filter((event) => event.progress.epoch === epoch)
    .map((event) => ({ progress: event.progress, at: event.progress.updatedAt }));
}

test('Prometheus discovers a local run through /sd, every dashboard query returns data and the cluster throughput matches the run record', async (t) => {
  const prefix = uniquePrefix('prom');
  const [coordinatorPort, prometheusPort, cliPrometheusPort] = [await freePort(), await freePort(), await freePort()];
  const prometheus = await LocalPrometheus.start({
    discoveryUrl: `http://127.0.0.1:${coordinatorPort}/sd`,
    scrapeInterval: `${SCRAPE_SECONDS * 1000}ms`,
    port: prometheusPort,
    dir: path.join(scratch, 'prometheus-test'),
  });
  t.teardown(() => prometheus.close());
  const configCheck = await promtool(['check', 'config', prometheus.configFile]);
  t.is(configCheck.code, 0, configCheck.output);

  const stateDir = path.join(scratch, 'state');
  const args = [
    'launch',
    '--local',
    '--redis',
    redis.url,
    '--prefix',
    prefix,
    '--state-dir',
    stateDir,
    '--json',
    '--workers',
    '2',
    '--model',
    'tiny-cnn',
    '--epochs',
    '3',
    '--batch-size',
    '1024',
    '--resize',
    '28',
    '--limit-train',
    '32768',
    '--limit-test',
    '256',
    '--seed',
    '5',
    '--metrics-port',
    String(coordinatorPort),
    '--prometheus',
    '--prometheus-port',
    String(cliPrometheusPort),
  ];
  const client = redis.connect('prometheus-test');
  const store = new RunStore(client, new RedisKeys(prefix));
  // Over the gRPC ring, as between hosts: the all-reduce byte counters and bandwidth panels then
  // count network traffic, and the run lasts long enough for the checks made while it trains
  // (shared memory makes this run several times shorter).
  const launch = runCli('coordinator', args, { timeoutMs: 180_000, env: { FMNIST_COLLECTIVE_TRANSPORT: 'grpc' } });
  // Once the workers train, every process is up and its run's series exist.
  const duringRun = untilTraining(store).then(() =>
    Promise.all([checkProcessesWhileTraining(coordinatorPort), untilDiscovered(`http://127.0.0.1:${cliPrometheusPort}`)]),
  );
  duringRun.catch(() => {}); // awaited below, after the run
  const result = await launch;
  t.is(result.code, 0, result.stderr);
  t.regex(result.stderr, new RegExp(`metrics: http://127\\.0\\.0\\.1:${coordinatorPort}/metrics`), 'launch --local says where its metrics are');
  t.regex(result.stderr, new RegExp(`prometheus: http://127\\.0\\.0\\.1:${cliPrometheusPort}`), 'and where --prometheus runs');
  const runId = jsonLines(result.stdout).at(-1)!.run as string;

  const [processes, cliDiscovered] = await duringRun;
  t.deepEqual(processes.roles, ['coordinator', 'worker', 'worker'], '/sd lists both workers and the coordinator');
  for (const lint of processes.lint) t.is(lint.code, 0, `promtool check metrics ${lint.target}: ${lint.output}`);
  t.deepEqual(processes.health, [200, 200, 200]);
  t.deepEqual(cliDiscovered, ['fmnist-coordinator', 'fmnist-worker', 'fmnist-worker'], 'the --prometheus one-liner found the cluster');
  const cliConfig = await promtool(['check', 'config', path.join(stateDir, 'prometheus', 'prometheus.yml')]);
  t.is(cliConfig.code, 0, cliConfig.output);

  const record = JSON.parse((await runCli('coordinator', ['status', runId, '--json', '--redis', redis.url, '--prefix', prefix])).stdout) as RunRecord;
  t.is(record.state, 'completed');
  // The moment of the run's last step: every process is up, and every epoch but the last is recorded.
  const steps = await progressOf(store, runId, record.config.epochs);
  const at = steps.find((s) => s.progress.step === s.progress.stepsPerEpoch)!.at;

  const up = await instantQuery(prometheus.url, 'count by (job) (up == 1)', at);
  t.deepEqual(
    Object.fromEntries(up.map((s) => [s.metric.job, s.value])),
    { 'fmnist-coordinator': 1, 'fmnist-worker': 2 },
    'the test Prometheus found the workers through /sd',
  );
  const ranks = await instantQuery(prometheus.url, `count by (rank) (fmnist_worker_examples_total{run="${runId}"})`, at);
  t.deepEqual(ranks.map((s) => s.metric.rank).sort(), ['0', '1']);

  const substitute = (expr: string, window: string) => expr.replaceAll('$run', runId).replaceAll('$__rate_interval', window);
  // The whole run as the rate window: a loaded machine can hold a worker's answer to a scrape for
  // seconds (a step blocks its event loop), so a window of a few scrape intervals may hold fewer than
  // the two samples rate() needs; over the whole run every series has many.
  const windowMs = Math.ceil(at - record.createdAt);
  for (const { panel, expr } of dashboardQueries()) {
    const query = substitute(expr, `${windowMs}ms`);
    const samples = await instantQuery(prometheus.url, query, at);
    t.true(samples.length > 0, `"${panel}": ${query} returned no data`);
    t.true(
      samples.every((s) => Number.isFinite(s.value)),
      `"${panel}": ${query} returned ${JSON.stringify(samples)}`,
    );
  }

  // The record's examples/sec counts examples per second spent in steps (evaluation, checkpoints
  // and the time between steps excluded), as the dashboard's step-time query does. Prometheus sees
  // only the steps between its first and last scrape of rank 0 (discovery takes a while; a loaded
  // machine can miss the whole first epoch, whose steps are the slowest), so the record is summed
  // over exactly those steps: the global steps rank 0's gauge showed at those two scrapes, read
  // in the same scrapes as the counters the query divides. The window spans those two scrapes, so
  // rate() extrapolates by at most a millisecond, by the same factor for both counters.
  const seen = await rangeSamples(prometheus.url, `fmnist_worker_global_step{run="${runId}", rank="0"}`, windowMs, at);
  const [first, last] = [seen[0], seen.at(-1)!];
  t.true(last.value > first.value, `Prometheus saw rank 0 train: ${JSON.stringify(seen)}`);
  const window = `${last.timeMs - first.timeMs + 1}ms`;
  const [measured] = await instantQuery(prometheus.url, substitute(CLUSTER_THROUGHPUT.stepTime.expr, window), last.timeMs);
  const seenSteps = (await store.readEvents(runId, { count: 100_000 }))
    .filter((event): event is RunEvent & { type: 'progress' } => event.type === 'progress')
    .map((event) => event.progress)
    .filter((p): p is Required<RunProgress> => p.globalStep !== undefined && p.timings !== undefined)
    .filter((p) => p.globalStep > first.value && p.globalStep <= last.value);
  t.is(seenSteps.length, last.value - first.value, 'the record has every step Prometheus saw');
  const seconds = seenSteps.map((p) => (p.timings.dataMs + p.timings.computeMs + p.timings.allReduceMs + p.timings.updateMs) / 1000);
  const examples = seenSteps.reduce((sum, p, i) => sum + p.examplesPerSec * seconds[i], 0);
  const recorded = examples / seconds.reduce((a, b) => a + b, 0);
  t.log(
    `${measured.value.toFixed(1)} examples/sec of step time by Prometheus, ${recorded.toFixed(1)} by the run record, over global steps ${first.value + 1}-${last.value}`,
  );
  // A step updates its counters and the gauge in one synchronous call, so no scrape falls between
  // them: the two figures are sums over the same steps, equal to rounding.
  t.true(Math.abs(measured.value / recorded - 1) < 1e-6, `Prometheus says ${measured.value.toFixed(1)} examples/sec, the run record ${recorded.toFixed(1)}`);
});
