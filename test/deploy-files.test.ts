/**
 * The deployment files generated from code (deploy/generated-files.ts) are committed as the code
 * makes them today; Prometheus accepts its config (`promtool check config`); the dashboard's
 * datasource is the provisioned one; and every metric the dashboard queries is one a worker or
 * the coordinator exports (the Prometheus test then proves each query returns data).
 */
import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { CoordinatorMetrics } from '../coordinator/coordinator-metrics.ts';
import { prometheusConfig } from '../coordinator/prometheus-config.ts';
import { DATASOURCE, buildDashboard, dashboardQueries } from '../deploy/grafana/dashboard.ts';
import { GENERATED_FILES } from '../deploy/generated-files.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import type { RunStore } from '../shared/run/run-store.ts';
import { WorkerMetrics } from '../worker/worker-metrics.ts';
import type { TrainingQueue } from '../coordinator/training-queue.ts';
import { REPO_ROOT } from './helpers/cli.ts';
import { promtool } from './helpers/prometheus.ts';

test('the committed generated files are what the code generates (npm run deploy:generate)', async (t) => {
  t.is(GENERATED_FILES.length, 2);
  for (const file of GENERATED_FILES) {
    t.is(await readFile(file.path, 'utf8'), file.content(), `${path.relative(REPO_ROOT, file.path)} is out of date: run npm run deploy:generate`);
  }
});

test('promtool accepts the deployed Prometheus config and the one generated for a local run', async (t) => {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-promconfig-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const local = path.join(scratch, 'prometheus.yml');
  await writeFile(local, prometheusConfig({ discoveryUrl: 'http://127.0.0.1:40123/sd', scrapeInterval: '500ms', discoveryRefresh: '2s' }));
  for (const file of [path.join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), local]) {
    const result = await promtool(['check', 'config', file]);
    t.is(result.code, 0, result.output);
  }
});

test('the dashboard has the run variable and reads the provisioned datasource in every query', async (t) => {
  const dashboard = buildDashboard();
  t.deepEqual(
    dashboard.templating?.list?.map((variable) => variable.name),
    ['run'],
  );
  const provisioned = await readFile(path.join(REPO_ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8');
  t.true(provisioned.includes(`uid: ${DATASOURCE.uid}`));
  const provider = await readFile(path.join(REPO_ROOT, 'deploy/grafana/provisioning/dashboards/fmnist.yml'), 'utf8');
  t.true(provider.includes('type: file'));
  const panels = (dashboard.panels ?? []).filter((panel) => panel.type !== 'row') as { targets?: { datasource?: object; expr?: string }[] }[];
  t.is(
    panels.length,
    dashboardQueries()
      .map((q) => q.panel)
      .filter((title, i, all) => all.indexOf(title) === i).length,
  );
  for (const panel of panels) {
    t.true((panel.targets?.length ?? 0) > 0);
    for (const target of panel.targets ?? []) t.deepEqual(target.datasource, DATASOURCE);
  }
});

test('every metric the dashboard queries is exported by a worker, the coordinator or Prometheus itself', async (t) => {
  const view = { redis: {} as Redis, keys: new RedisKeys('unused'), runs: {} as RunStore, queue: {} as TrainingQueue };
  const exported = new Set<string>(['up']);
  for (const registry of [new WorkerMetrics().registry, new CoordinatorMetrics(view).registry]) {
    for (const metric of await registry.getMetricsAsJSON()) {
      exported.add(metric.name);
      if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${metric.name}${suffix}`);
    }
  }
  for (const { panel, expr } of dashboardQueries()) {
    const names = expr.match(/\b(?:fmnist|process|nodejs|up)[a-z_]*\b(?=\s*[{[)]|\s*$)/g) ?? [];
    t.true(names.length > 0, `${panel}: no metric found in ${expr}`);
    for (const name of names) t.true(exported.has(name), `${panel}: ${name} is exported by nobody`);
  }
});
