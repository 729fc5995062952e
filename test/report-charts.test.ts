import test from 'ava';
import { dataDomain, formatTick, integerTicks, linearScale, niceTicks } from '../coordinator/report/chart-scale.ts';
import { escapeHtml } from '../coordinator/report/html-escape.ts';
import { REPORT_COLOURS, renderRunReport } from '../coordinator/report/run-report.ts';
import { lineChart, linePath, stackedBarChart, type ChartLayout } from '../coordinator/report/svg-chart.ts';
import { validateRunConfig, type RunRecord } from '../shared/run/run-state.ts';
import type { StepSample } from '../shared/run/step-samples.ts';

/** 200 x 140 px with the plot at x 0..200, y 20..120: one x unit = 100 px, one y unit = 25 px below. */
const LAYOUT: ChartLayout = { width: 200, height: 140, margin: { top: 20, right: 0, bottom: 20, left: 0 } };

test('a linear scale maps the domain onto the range, backwards for a y axis', (t) => {
  const y = linearScale([0, 4], [120, 20]);
  t.deepEqual([y(0), y(1), y(4), y(2.5)], [120, 95, 20, 57.5]);
});

test('a line path goes through each point in pixels', (t) => {
  const path = linePath(
    [
      { x: 0, y: 0 },
      { x: 1, y: 2 },
      { x: 2, y: 1 },
      { x: 0.5, y: 1 / 3 },
    ],
    linearScale([0, 2], [10, 110]),
    linearScale([0, 2], [100, 0]),
  );
  t.is(path, 'M10,100L60,0L110,50L35,83.33');
});

test('ticks are round values covering the data, and the axis ends on them', (t) => {
  t.deepEqual(niceTicks([0, 0.93]), { ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], domain: [0, 1] });
  t.deepEqual(niceTicks([2.3024, 2.3153]), { ticks: [2.3, 2.305, 2.31, 2.315, 2.32], domain: [2.3, 2.32] });
  t.deepEqual(niceTicks([0, 1713]).ticks, [0, 500, 1000, 1500, 2000]);
  t.deepEqual(integerTicks(2), [1, 2]);
  t.deepEqual(integerTicks(30), [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);
  t.deepEqual([formatTick(0), formatTick(2.315), formatTick(1 / 3), formatTick(12000)], ['0', '2.315', '0.3333', '12000']);
});

test('a data domain is never empty, and holds 0 when asked', (t) => {
  t.deepEqual(dataDomain([3, 7]), [3, 7]);
  t.deepEqual(dataDomain([3, 7], { includeZero: true }), [0, 7]);
  t.deepEqual(dataDomain([5, 5]), [4.5, 5.5]);
  t.deepEqual(dataDomain([0], { includeZero: true }), [0, 1]);
  t.deepEqual(dataDomain([]), [0, 1]);
});

test('stacked bars put each layer on top of the one before', (t) => {
  const svg = stackedBarChart({
    title: 'split',
    x: { label: 'step', domain: [0, 2], ticks: [0, 1, 2] },
    y: { label: 'ms', domain: [0, 4], ticks: [0, 2, 4] },
    layers: [
      { name: 'a', colour: '#111111' },
      { name: 'b', colour: '#222222' },
    ],
    bars: [{ from: 0, to: 1, values: [1, 2] }],
    layout: LAYOUT,
  });
  const bars = [...svg.matchAll(/<rect class="bar" x="([\d.]+)" y="([\d.]+)" width="([\d.]+)" height="([\d.]+)" fill="(#\w+)"/g)].map((m) =>
    m.slice(1).map((v, i) => (i < 4 ? Number(v) : v)),
  );
  t.deepEqual(bars, [
    [0, 95, 100, 25, '#111111'],
    [0, 45, 100, 50, '#222222'],
  ]);
});

test('chart text is escaped', (t) => {
  t.is(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  const svg = lineChart({
    title: '<b>loss</b>',
    x: { label: 'a & b', domain: [0, 1], ticks: [0, 1] },
    y: { label: 'y', domain: [0, 1], ticks: [0, 1] },
    series: [
      {
        name: '"quoted"',
        colour: '#123456',
        points: [
          { x: 0, y: 0 },
          { x: 1, y: 1 },
        ],
      },
    ],
    layout: LAYOUT,
  });
  t.false(svg.includes('<b>'));
  t.true(svg.includes('&lt;b&gt;loss&lt;/b&gt;') && svg.includes('a &amp; b') && svg.includes('&quot;quoted&quot;'));
});

function record(overrides: Partial<RunRecord> = {}): RunRecord {
  return {
    id: 'run-20260101-000000-abcd',
    config: validateRunConfig({ workers: 2, backend: 'wasm', model: 'tiny-cnn', epochs: 3 }),
    state: 'completed',
    generation: 0,
    createdAt: Date.UTC(2026, 0, 1),
    updatedAt: Date.UTC(2026, 0, 1),
    history: [
      { epoch: 1, loss: 0.9, trainAcc: 0.7, testAcc: 0.72, examplesPerSec: 500, seconds: 10, backend: 'wasm' },
      { epoch: 2, loss: 0.5, trainAcc: 0.82, testAcc: 0.8, examplesPerSec: 520, seconds: 9.6, backend: 'wasm' },
    ],
    cancelRequested: false,
    restarts: [],
    ...overrides,
  };
}

const SAMPLES: StepSample[] = [1, 2, 3].map((g) => ({
  globalStep: g,
  epoch: 1,
  steps: 1,
  examples: 256,
  seconds: 0.5,
  loss: 1,
  dataMs: 10,
  computeMs: 300,
  allReduceMs: 150,
  updateMs: 40,
}));

test('the page draws every series and fetches nothing', (t) => {
  const html = renderRunReport({ run: record(), samples: SAMPLES, generatedAt: new Date(0) });
  t.true(html.startsWith('<!doctype html>'));
  t.regex(html, /Content-Security-Policy" content="default-src 'none'/);
  t.notRegex(html, /<script|\bsrc=|\bhref=|url\(/i);
  for (const colour of [REPORT_COLOURS.loss, REPORT_COLOURS.trainAcc, REPORT_COLOURS.testAcc, REPORT_COLOURS.throughput]) {
    t.regex(html, new RegExp(`<path d="M[^"]+L[^"]+" fill="none" stroke="${colour}"`), `a line in ${colour}`);
  }
  t.is([...html.matchAll(/<rect class="bar" /g)].length, 3 * 4, 'one segment per phase per window');
  t.regex(html, /compute 300\.00 ms \(60\.0%\)/);
  t.is([...html.matchAll(/<svg /g)].length, 4);
});

test('a run with a hostile error text and no figures yet gets notes, its text escaped', (t) => {
  const html = renderRunReport({ run: record({ state: 'failed', error: '<script>alert(1)</script>', history: [] }), samples: [], generatedAt: new Date(0) });
  t.false(html.includes('<script>'));
  t.true(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  t.is([...html.matchAll(/<svg /g)].length, 0);
  t.is([...html.matchAll(/class="note"/g)].length, 2);
});
