/**
 * The page `coordinator report` writes: one self-contained HTML file (inline CSS and SVG, a
 * Content-Security-Policy that forbids fetching anything) with a run's loss and accuracy per
 * epoch, its throughput over training time and where its steps spent their time.
 */
import { gradCompressionNote } from '../../shared/config/training-options.ts';
import type { EpochEntry, RunRecord } from '../../shared/run/run-state.ts';
import { STEP_PHASES, type PhaseMs, type StepSample } from '../../shared/run/step-samples.ts';
import { dataDomain, integerTicks, niceTicks, type Domain } from './chart-scale.ts';
import { escapeHtml } from './html-escape.ts';
import { lineChart, stackedBarChart, type AxisSpec, type StackedBar } from './svg-chart.ts';

/** Stroke and fill colour of each series, distinct from each other and from the page's greys. */
export const REPORT_COLOURS = {
  loss: '#1f77b4',
  trainAcc: '#ff7f0e',
  testAcc: '#2ca02c',
  throughput: '#d62728',
  dataMs: '#9467bd',
  computeMs: '#8c564b',
  allReduceMs: '#e377c2',
  updateMs: '#17becf',
} as const;

const PHASE_NAMES: Record<keyof PhaseMs, string> = { dataMs: 'data', computeMs: 'compute', allReduceMs: 'all-reduce', updateMs: 'update' };

export interface RunReportData {
  run: RunRecord;
  /** The run's step samples in step order (RunStore.stepSamples). */
  samples: readonly StepSample[];
  /** When the page is made, shown at its foot. */
  generatedAt: Date;
}

/** The report page as one HTML string. */
export function renderRunReport(data: RunReportData): string {
  const { run, samples } = data;
  const sections = [
    `<h1>Run ${escapeHtml(run.id)}</h1>`,
    `<p class="meta">${escapeHtml(summaryLine(run))}</p>`,
    `<p class="meta">${escapeHtml(configLine(run))}</p>`,
    run.history.length > 0 ? lossChart(run.history) + accuracyChart(run.history) : note('No epoch has finished yet: no loss or accuracy per epoch.'),
    samples.length > 0 ? throughputChart(samples) + stepSplitChart(samples) : note('No step samples were recorded for this run: no throughput or step split.'),
    epochTable(run.history),
    `<p class="foot">Made by coordinator report on ${escapeHtml(data.generatedAt.toISOString())}.</p>`,
  ];
  return page(`Run ${run.id}`, sections.join('\n'));
}

function summaryLine(run: RunRecord): string {
  const error = run.error ? ` (${run.error})` : '';
  return `${run.state}${error}, generation ${run.generation}, created ${new Date(run.createdAt).toISOString()}, ${run.history.length}/${run.config.epochs} epochs`;
}

function configLine(run: RunRecord): string {
  const c = run.config;
  return `${c.model}, ${c.workers} worker(s) on ${c.backend}, batch ${c.batchSize}, lr ${c.lr}, resize ${c.resize}, seed ${c.seed}${gradCompressionNote(c.gradCompression)}`;
}

/** Epochs sit half an epoch in from each end, so markers never touch an axis. */
function epochAxis(history: readonly EpochEntry[]): AxisSpec {
  const last = history.at(-1)!.epoch;
  return { label: 'epoch', domain: [0.5, last + 0.5], ticks: integerTicks(last) };
}

function valueAxis(label: string, domain: Domain): AxisSpec {
  const nice = niceTicks(domain);
  return { label, domain: nice.domain, ticks: nice.ticks };
}

function lossChart(history: readonly EpochEntry[]): string {
  const points = history.map((e) => ({ x: e.epoch, y: e.loss }));
  return lineChart({
    title: 'Training loss per epoch',
    x: epochAxis(history),
    y: valueAxis('mean cross-entropy', dataDomain(points.map((p) => p.y))),
    series: [{ name: 'train loss', colour: REPORT_COLOURS.loss, points }],
  });
}

function accuracyChart(history: readonly EpochEntry[]): string {
  return lineChart({
    title: 'Accuracy per epoch',
    x: epochAxis(history),
    y: { label: 'accuracy', domain: [0, 1], ticks: [0, 0.2, 0.4, 0.6, 0.8, 1] },
    series: [
      { name: 'train accuracy', colour: REPORT_COLOURS.trainAcc, points: history.map((e) => ({ x: e.epoch, y: e.trainAcc })) },
      // Dashed, so where both accuracies are equal the train line still shows between the dashes.
      { name: 'test accuracy', colour: REPORT_COLOURS.testAcc, points: history.map((e) => ({ x: e.epoch, y: e.testAcc })), dashed: true },
    ],
  });
}

/** Examples/sec of each window against rank 0's training time so far (evaluation and pauses left out). */
function throughputChart(samples: readonly StepSample[]): string {
  let elapsed = 0;
  const points = samples
    .filter((s) => s.seconds > 0)
    .map((s) => {
      elapsed += s.seconds;
      return { x: elapsed, y: s.examples / s.seconds };
    });
  return lineChart({
    title: 'Throughput over training time',
    x: valueAxis('training time on rank 0 (s)', dataDomain([elapsed], { includeZero: true })),
    y: valueAxis(
      'examples/sec',
      dataDomain(
        points.map((p) => p.y),
        { includeZero: true },
      ),
    ),
    series: [{ name: 'examples/sec (all workers)', colour: REPORT_COLOURS.throughput, points }],
  });
}

/** Mean ms per step of each phase, one bar per window of steps, with each phase's share overall. */
function stepSplitChart(samples: readonly StepSample[]): string {
  const bars: StackedBar[] = samples.map((s) => ({ from: s.globalStep - s.steps, to: s.globalStep, values: STEP_PHASES.map((phase) => s[phase]) }));
  const steps = samples.reduce((sum, s) => sum + s.steps, 0);
  const totals = STEP_PHASES.map((phase) => samples.reduce((sum, s) => sum + s[phase] * s.steps, 0));
  const all = totals.reduce((a, b) => a + b, 0);
  const layers = STEP_PHASES.map((phase, i) => ({
    name: `${PHASE_NAMES[phase]} ${(totals[i] / steps).toFixed(2)} ms (${((100 * totals[i]) / (all || 1)).toFixed(1)}%)`,
    colour: REPORT_COLOURS[phase],
  }));
  return stackedBarChart({
    title: 'Step time split on rank 0',
    x: valueAxis('global step', [0, samples.at(-1)!.globalStep]),
    y: valueAxis(
      'ms per step',
      dataDomain(
        bars.map((b) => b.values.reduce((a, v) => a + v, 0)),
        { includeZero: true },
      ),
    ),
    layers,
    bars,
  });
}

function epochTable(history: readonly EpochEntry[]): string {
  if (history.length === 0) return '';
  const rows = history.map((e) => {
    const cells = [
      String(e.epoch),
      e.loss.toFixed(4),
      e.trainAcc.toFixed(3),
      e.testAcc.toFixed(3),
      e.examplesPerSec.toFixed(1),
      e.seconds.toFixed(1),
      e.backend ?? '',
    ];
    return `<tr>${cells.map((cell) => `<td>${escapeHtml(cell)}</td>`).join('')}</tr>`;
  });
  const head = ['epoch', 'loss', 'train acc', 'test acc', 'examples/sec', 'seconds', 'backend'].map((h) => `<th>${h}</th>`).join('');
  return `<table><thead><tr>${head}</tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function note(text: string): string {
  return `<p class="note">${escapeHtml(text)}</p>`;
}

const STYLE = `
body { font: 14px/1.4 sans-serif; color: #222; background: #fff; margin: 16px 24px; }
h1 { font-size: 20px; margin: 0 0 4px; }
p.meta { margin: 0 0 2px; color: #444; }
p.note { color: #666; font-style: italic; }
p.foot { color: #888; font-size: 12px; }
svg { display: block; margin: 10px 0; }
svg .title { font: bold 15px sans-serif; fill: #222; }
svg .tick, svg .legend { font: 12px sans-serif; fill: #333; }
svg .label { font: 13px sans-serif; fill: #222; }
svg .axis { stroke: #222; stroke-width: 1; }
svg .grid { stroke: #e4e4e4; stroke-width: 1; }
svg rect { shape-rendering: crispEdges; }
table { border-collapse: collapse; margin-top: 12px; }
th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
`;

function page(title: string, body: string): string {
  return [
    '<!doctype html>',
    '<html lang="en"><head><meta charset="utf-8">',
    // Everything is inline: the page must not reach out for anything, even when opened from a server.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>`,
    `<body>\n${body}\n</body></html>\n`,
  ].join('\n');
}
