/**
 * After a real `launch --local` has finished: `list`, `status` and `report` read the state
 * directory's Redis without `--local` (an explicit Redis still wins), and the report's page,
 * opened in headless Chromium, shows every curve.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPORT_COLOURS } from '../coordinator/report/run-report.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { STEP_PHASES } from '../shared/run/step-samples.ts';
import { jsonLines, REPO_ROOT, runCli } from './helpers/cli.ts';
import { decodePng, findColour, type ColourRegion } from './helpers/png-image.ts';
import { startTestRedis, uniquePrefix } from './helpers/redis-server.ts';

/** 2 workers, 2 epochs of 10 steps: two points per epoch curve, 20 step samples (stride 1). */
const FLAGS = [
  '--model',
  'tiny-cnn',
  '--epochs',
  '2',
  '--batch-size',
  '32',
  '--resize',
  '28',
  '--limit-train',
  '320',
  '--limit-test',
  '100',
  '--lr',
  '0.3',
  '--backend',
  'wasm',
  '--json',
];
/** No Redis configured: what a user has after `launch --local` on a fresh machine. */
const NO_REDIS = { REDIS_URL: '' };

let scratch: string;
let stateDir: string;
let runId: string;
let prefix: string;
/** The flags that name the launch's state directory and key prefix. */
let state: string[];

test.before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-report-'));
  stateDir = path.join(scratch, 'state');
  prefix = uniquePrefix('report');
  state = ['--state-dir', stateDir, '--prefix', prefix];
  const launch = await runCli('coordinator', ['launch', '--local', '--workers', '2', ...FLAGS, ...state], { env: NO_REDIS });
  if (launch.code !== 0) throw new Error(`launch --local failed:\n${launch.stderr}`);
  runId = jsonLines(launch.stdout).at(-1)!.run as string;
});
test.after.always(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const serverMarker = () => path.join(stateDir, 'redis', 'server.json');

// Serial: each command starts the state directory's Redis on its files and stops it again.
test.serial('after launch --local, list and status read the state directory without --local', async (t) => {
  t.false(existsSync(serverMarker()), 'the launch stopped its Redis');
  const list = await runCli('coordinator', ['list', '--json', ...state], { env: NO_REDIS });
  t.is(list.code, 0, list.stderr);
  t.deepEqual(
    (JSON.parse(list.stdout) as { run: string; status: string }[]).map((r) => [r.run, r.status]),
    [[runId, 'completed']],
  );

  const status = await runCli('coordinator', ['status', runId, '--json', ...state], { env: NO_REDIS });
  t.is(status.code, 0, status.stderr);
  const record = JSON.parse(status.stdout) as { state: string; history: unknown[] };
  t.is(record.state, 'completed');
  t.is(record.history.length, 2);
  t.false(existsSync(serverMarker()), 'each reader stopped the Redis it started');
});

test.serial('without Redis and without a state directory, reading commands fail with CONFIG_INVALID', async (t) => {
  const nowhere = ['--state-dir', path.join(scratch, 'no-such-dir')];
  for (const args of [['list'], ['status', runId], ['report', runId]]) {
    const result = await runCli('coordinator', [...args, ...nowhere], { env: NO_REDIS });
    t.is(result.code, 1, args[0]);
    t.regex(result.stderr, /^error \[CONFIG_INVALID\]/, args[0]);
  }
  t.false(existsSync(path.join(scratch, 'no-such-dir')), 'no state directory was made');
});

test.serial('--redis and REDIS_URL win over the state directory', async (t) => {
  const redis = await startTestRedis({ persist: false });
  t.teardown(() => redis.close());
  const other = await new RunStore(redis.connect(), prefix).create({ workers: 1, backend: 'cpu', epochs: 1 });
  for (const [args, env] of [
    [['--redis', redis.url], NO_REDIS],
    [[], { REDIS_URL: redis.url }],
  ] as const) {
    const list = await runCli('coordinator', ['list', '--json', ...state, ...args], { env });
    t.is(list.code, 0, list.stderr);
    t.deepEqual(
      (JSON.parse(list.stdout) as { run: string }[]).map((r) => r.run),
      [other.id],
    );
    const status = await runCli('coordinator', ['status', runId, ...state, ...args], { env });
    t.is(status.code, 1);
    t.regex(status.stderr, /^error \[RUN_NOT_FOUND\]/);
  }
  t.false(existsSync(serverMarker()));
});

test.serial('report without --local writes a page that headless Chromium shows with the loss, accuracy, throughput and step split', async (t) => {
  const out = path.join(scratch, 'report.html');
  const report = await runCli('coordinator', ['report', runId, '--out', out, '--json', ...state], { env: NO_REDIS });
  t.is(report.code, 0, report.stderr);
  t.deepEqual(JSON.parse(report.stdout), { run: runId, out, epochs: 2, stepSamples: 20 }, 'read from the state directory without --local');
  t.false(existsSync(serverMarker()), 'report stopped the Redis it started');
  const html = await readFile(out, 'utf8');
  t.notRegex(html, /<script|\bsrc=|\bhref=|url\(/i, 'nothing is fetched or run');

  const image = decodePng(await screenshot(out, path.join(scratch, 'report.png')));
  t.deepEqual([image.width, image.height], [1200, 1600]);
  const lines = {
    loss: findColour(image, REPORT_COLOURS.loss),
    trainAcc: findColour(image, REPORT_COLOURS.trainAcc),
    testAcc: findColour(image, REPORT_COLOURS.testAcc),
    throughput: findColour(image, REPORT_COLOURS.throughput),
  };
  for (const [name, region] of Object.entries(lines)) {
    // A legend swatch is 18 px wide; a curve over two epochs (or 20 samples) spans half a chart.
    t.true(region.maxX - region.minX > 300, `${name} is drawn across its chart (${describe(region)})`);
  }
  t.true(lines.loss.maxY - lines.loss.minY > 20, `the loss falls from epoch 1 to 2 (${describe(lines.loss)})`);

  const phases = STEP_PHASES.map((phase) => ({ phase, region: findColour(image, REPORT_COLOURS[phase]), tallest: tallestBar(html, REPORT_COLOURS[phase]) }));
  const tall = phases.filter((p) => p.tallest >= 3);
  t.deepEqual(
    ['computeMs', 'allReduceMs'].filter((phase) => !tall.some((p) => p.phase === phase)),
    [],
    'compute and the all-reduce of 2 workers take visible time',
  );
  for (const { phase, region, tallest } of tall) {
    // The legend's swatch is 10 px tall and sits at least 15 px above the plot.
    t.true(region.maxY - region.minY >= 20, `${phase}'s bars (up to ${tallest} px) are drawn (${describe(region)})`);
  }
  const split = tall.map((p) => p.region);
  const middles = [lines.loss, lines.trainAcc, lines.throughput, ...split].map((r) => (r.minY + r.maxY) / 2);
  t.true(
    middles[0] < middles[1] && middles[1] < middles[2] && split.every((r, i) => middles[2] < middles[3 + i]),
    `charts top to bottom: ${middles.join(', ')}`,
  );
});

test.serial('report --out - writes the same page to stdout and no file (for a container thrown away after the command)', async (t) => {
  const report = await runCli('coordinator', ['report', runId, '--out', '-', ...state], { env: NO_REDIS });
  t.is(report.code, 0, report.stderr);
  const fromFile = await readFile(path.join(scratch, 'report.html'), 'utf8');
  // Only the generation time may differ from the page the previous test wrote.
  const withoutTime = (html: string) => html.replace(/\d{4}-\d{2}-\d{2}T[\d:.]+Z/g, 'T');
  t.is(withoutTime(report.stdout), withoutTime(fromFile));
  t.false(existsSync(path.join(REPO_ROOT, '-')));
  t.false(existsSync(path.join(REPO_ROOT, `${runId}.html`)));
});

/** The tallest bar segment of one fill colour in the page, in px (legend swatches left out). */
function tallestBar(html: string, colour: string): number {
  const heights = [...html.matchAll(/<rect class="bar" [^>]*height="([\d.]+)" fill="(#[0-9a-f]{6})"/g)].filter((m) => m[2] === colour).map((m) => Number(m[1]));
  return Math.max(0, ...heights);
}

function describe(region: ColourRegion): string {
  return `${region.count} px in x ${region.minX}..${region.maxX}, y ${region.minY}..${region.maxY}`;
}

/** Chromium's own screenshot of the page at 1200 x 1600, with no network and a throw-away profile. */
async function screenshot(page: string, png: string): Promise<Buffer> {
  const args = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    `--user-data-dir=${path.join(scratch, 'chromium-profile')}`,
    `--screenshot=${png}`,
    '--window-size=1200,1600',
    '--hide-scrollbars',
    pathToFileURL(page).href,
  ];
  const child = spawn('/usr/bin/chromium', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // Generous: a screenshot takes seconds, but a loaded 2-core machine may stretch its start-up.
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  }).finally(() => clearTimeout(timer));
  if (code !== 0 || !existsSync(png)) throw new Error(`chromium exited with ${code}:\n${stderr}`);
  return readFile(png);
}
