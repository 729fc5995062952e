/**
 * Where each process serves its metrics, as its flags and environment say: the coordinator's
 * `--metrics-host/--metrics-port` (and `--prometheus` with --local), the worker's options with
 * their environment variables. Bad combinations are CONFIG_INVALID before anything starts.
 */
import test from 'ava';
import { metricsOptionsFromFlags } from '../coordinator/cli-flags.ts';
import { monitoringPlan } from '../coordinator/cluster-session.ts';
import { ConfigError } from '../shared/errors.ts';
import { defaultAdvertiseHost } from '../worker/advertise-host.ts';
import { compileWorkerOptions } from '../worker/worker-options.ts';

const REDIS = { REDIS_URL: 'redis://127.0.0.1:6399' };

test("the coordinator serves on 127.0.0.1 at the command's default port unless flags or environment say otherwise", (t) => {
  t.deepEqual(metricsOptionsFromFlags({}, 9400, {}), { host: '127.0.0.1', port: 9400 });
  t.deepEqual(metricsOptionsFromFlags({}, 9400, { COORDINATOR_METRICS_HOST: '0.0.0.0', COORDINATOR_METRICS_PORT: 'auto' }), { host: '0.0.0.0', port: 'auto' });
  t.deepEqual(metricsOptionsFromFlags({ 'metrics-host': '::', 'metrics-port': '9500' }, 9400, { COORDINATOR_METRICS_PORT: 'auto' }), {
    host: '::',
    port: 9500,
  });
  t.is(metricsOptionsFromFlags({ 'metrics-port': 'off' }, 9400, {}), undefined);
  t.is(metricsOptionsFromFlags({}, 9400, { COORDINATOR_METRICS_PORT: '0' }), undefined);
});

test('a local run serves metrics on a free port; --prometheus needs --local and the metrics, and takes a port', (t) => {
  t.deepEqual(monitoringPlan({ local: true }), { metrics: { host: '127.0.0.1', port: 'auto' } });
  t.deepEqual(monitoringPlan({ local: true, prometheus: true }), { metrics: { host: '127.0.0.1', port: 'auto' }, prometheusPort: 'auto' });
  t.deepEqual(monitoringPlan({ local: true, prometheus: true, 'prometheus-port': '9191' }).prometheusPort, 9191);
  t.deepEqual(monitoringPlan({}), {}, 'a command that runs nothing here serves nothing');
  for (const values of [
    { prometheus: true },
    { local: true, prometheus: true, 'metrics-port': 'off' },
    { local: true, prometheus: true, 'prometheus-port': '0' },
    { local: true, 'metrics-port': 'many' },
  ]) {
    const error = t.throws(() => monitoringPlan(values), { instanceOf: ConfigError }, JSON.stringify(values));
    t.is(error?.code, 'CONFIG_INVALID');
  }
});

test('a worker serves metrics on a free port of its listen host, advertised as its advertise host', (t) => {
  const defaults = compileWorkerOptions({}, REDIS);
  t.like(defaults, { metricsHost: '127.0.0.1', metricsPort: 'auto', metricsAdvertiseHost: '127.0.0.1' });
  // Listening on every interface, the metrics are advertised where the ring is: the first
  // non-loopback address, which Prometheus on another host or container can reach.
  const wildcard = compileWorkerOptions({ listenHost: '0.0.0.0' }, REDIS);
  t.like(wildcard, { metricsHost: '0.0.0.0', metricsAdvertiseHost: defaultAdvertiseHost('0.0.0.0') });
  t.is(wildcard.advertiseHost, wildcard.metricsAdvertiseHost);
  t.not(wildcard.metricsAdvertiseHost, '127.0.0.1');
  t.like(compileWorkerOptions({ listenHost: '0.0.0.0', advertiseHost: 'worker-3' }, REDIS), { metricsHost: '0.0.0.0', metricsAdvertiseHost: 'worker-3' });
  t.like(compileWorkerOptions({}, { ...REDIS, WORKER_METRICS_HOST: '10.0.0.7', WORKER_METRICS_PORT: '9401' }), {
    metricsHost: '10.0.0.7',
    metricsPort: 9401,
    metricsAdvertiseHost: '10.0.0.7',
  });
  t.like(compileWorkerOptions({ metricsPort: 'off' }, { ...REDIS, WORKER_METRICS_PORT: '9401' }), { metricsPort: 'off' });
  const error = t.throws(() => compileWorkerOptions({}, { ...REDIS, WORKER_METRICS_PORT: '99999' }), { instanceOf: ConfigError });
  t.is(error?.code, 'CONFIG_INVALID');
});
