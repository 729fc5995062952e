/**
 * The HTTP server every process runs for Prometheus (shared/metrics/metrics-server.ts): the
 * `--metrics-port` values it takes, what `/metrics`, `/healthz` and extra routes answer, a port
 * that is taken, and close().
 */
import test from 'ava';
import { get } from 'node:http';
import { Gauge, Registry } from 'prom-client';
import { ConfigError } from '../shared/errors.ts';
import { MetricsServer, parseMetricsPort, type HealthReport } from '../shared/metrics/metrics-server.ts';

/** GET `url` with a Host header of our choosing (fetch does not let one set it). */
function getWithHost(url: string, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, { headers: { host } }, (response) => {
      let body = '';
      response.on('data', (chunk: Buffer) => (body += chunk.toString()));
      response.on('end', () => resolve(body));
    }).on('error', reject);
  });
}

test('--metrics-port takes a port, auto, or off (also 0); anything else is CONFIG_INVALID', (t) => {
  t.is(parseMetricsPort(undefined, 9400), 9400);
  t.is(parseMetricsPort('', 'auto'), 'auto');
  t.is(parseMetricsPort('auto', 9400), 'auto');
  t.is(parseMetricsPort('off', 9400), 'off');
  t.is(parseMetricsPort('0', 9400), 'off');
  t.is(parseMetricsPort(0, 'auto'), 'off');
  t.is(parseMetricsPort('9401', 'auto'), 9401);
  t.is(parseMetricsPort(9402, 'auto'), 9402);
  for (const bad of ['x', '-1', '65536', '1.5', ' ', 'AUTO']) {
    const error = t.throws(() => parseMetricsPort(bad, 'auto'), { instanceOf: ConfigError }, bad);
    t.is(error?.code, 'CONFIG_INVALID');
  }
});

test('/metrics renders the registry after refresh, /healthz follows the health report, extra routes see the request', async (t) => {
  const registry = new Registry();
  const gauge = new Gauge({ name: 'test_refreshes', help: 'Refreshes so far.', registers: [registry] });
  let refreshes = 0;
  let health: HealthReport = { ok: true, state: 'serving' };
  const server = await MetricsServer.start({
    registry,
    host: '127.0.0.1',
    port: 'auto',
    refresh: () => Promise.resolve(void gauge.set(++refreshes)),
    health: () => health,
    routes: { '/echo': (request) => Promise.resolve({ host: request.headers.host }) },
  });
  t.teardown(() => server.close());
  t.true(server.port > 0);

  for (const expected of [1, 2]) {
    const response = await fetch(`${server.url}/metrics`);
    t.is(response.status, 200);
    t.is(response.headers.get('content-type'), registry.contentType);
    t.true((await response.text()).includes(`test_refreshes ${expected}\n`));
  }
  t.deepEqual(await (await fetch(`${server.url}/healthz`)).json(), { ok: true, state: 'serving' });
  health = { ok: false, state: 'closed' };
  const unhealthy = await fetch(`${server.url}/healthz`);
  t.is(unhealthy.status, 503);
  t.deepEqual(await unhealthy.json(), { ok: false, state: 'closed' });
  t.deepEqual(JSON.parse(await getWithHost(`${server.url}/echo`, 'prometheus-saw-me:1234')), { host: 'prometheus-saw-me:1234' });
  t.is((await fetch(`${server.url}/nothing-here`)).status, 404);
  t.is((await fetch(`${server.url}/metrics`, { method: 'POST' })).status, 405);
});

test('a refresh that fails answers 500 and the next scrape tries again', async (t) => {
  const registry = new Registry();
  let fail = true;
  const server = await MetricsServer.start({
    registry,
    host: '127.0.0.1',
    port: 'auto',
    refresh: () => (fail ? Promise.reject(new Error('Redis is away')) : Promise.resolve()),
  });
  t.teardown(() => server.close());
  t.is((await fetch(`${server.url}/metrics`)).status, 500);
  fail = false;
  t.is((await fetch(`${server.url}/metrics`)).status, 200);
});

test('a fixed port that is taken is CONFIG_INVALID; close() is idempotent and frees the port', async (t) => {
  const registry = new Registry();
  const first = await MetricsServer.start({ registry, host: '127.0.0.1', port: 'auto' });
  const error = await t.throwsAsync(MetricsServer.start({ registry, host: '127.0.0.1', port: first.port }), { instanceOf: ConfigError });
  t.is(error?.code, 'CONFIG_INVALID');
  await Promise.all([first.close(), first.close()]);
  await t.throwsAsync(fetch(`${first.url}/metrics`));
  const again = await MetricsServer.start({ registry, host: '127.0.0.1', port: first.port });
  t.is(again.port, first.port);
  await again.close();
});
