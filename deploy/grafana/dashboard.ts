/**
 * The Grafana dashboard "fmnist training", as code (Grafana's foundation SDK, typed builders).
 * `npm run deploy:generate` writes it to deploy/grafana/dashboards/fmnist-training.json, which
 * Grafana provisions; a test checks that the committed file is what this code builds, and the
 * Prometheus test evaluates every query below against a real run.
 */
import {
  DashboardBuilder,
  DashboardCursorSync,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
  type Dashboard,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { StackingConfigBuilder, StackingMode, VizLegendOptionsBuilder, LegendDisplayMode, LegendPlacement } from '@grafana/grafana-foundation-sdk/common';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as StatPanelBuilder } from '@grafana/grafana-foundation-sdk/stat';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';

/** The provisioned Prometheus datasource (deploy/grafana/provisioning/datasources/prometheus.yml). */
export const DATASOURCE = { type: 'prometheus', uid: 'fmnist-prometheus' };

/** One query of a panel: PromQL with Grafana's `$run` and `$__rate_interval`, and its legend. */
export interface PanelQuery {
  expr: string;
  legend: string;
}

/** One panel: its title, kind, unit (Grafana's unit ids) and queries. */
export interface PanelSpec {
  title: string;
  description: string;
  kind: 'timeseries' | 'stacked' | 'stat';
  unit: string;
  queries: PanelQuery[];
  /** Fixed axis range, e.g. [0, 1] for ratios. */
  range?: [number, number];
}

const RUN = 'run="$run"';
const rate = (metric: string, selector = RUN) => `rate(${metric}{${selector}}[$__rate_interval])`;
const FMNIST_JOBS = 'job=~"fmnist-.*"';

/**
 * Cluster throughput, two ways: per second of wall-clock time (what the cluster delivers,
 * evaluations, checkpoints and everything between steps included), and per second of training
 * step time, as the run's own record counts it (`status` shows examples/sec per epoch as
 * examples / seconds spent in steps); the gap between the two is time lost outside steps.
 */
export const CLUSTER_THROUGHPUT = {
  wallClock: { expr: `sum(${rate('fmnist_worker_examples_total')})`, legend: 'cluster' },
  stepTime: {
    // Rank 0's examples and step time, times the ring size, as the record counts (rank 0's global
    // batches over rank 0's step time). Both rates come from the same scrapes of one process, so
    // their ratio is exact whatever the window; mixing in other ranks' series, scraped at other
    // moments, skews a short window by up to a scrape interval. (A global batch that does not
    // divide by the ring size gives rank 0 the larger slice: under 1 % high at batch 256.)
    expr: `sum(${rate('fmnist_worker_examples_total', `${RUN}, rank="0"`)}) / sum(${rate('fmnist_worker_step_phase_seconds_sum', `${RUN}, rank="0"`)}) * max(fmnist_ring_size{${RUN}})`,
    legend: 'cluster, per second of rank 0 step time (as the run record counts)',
  },
} satisfies Record<string, PanelQuery>;

/** The dashboard's rows and panels, top to bottom. Every query returns data during a run. */
export const DASHBOARD_ROWS: { title: string; panels: PanelSpec[] }[] = [
  {
    title: 'Throughput',
    panels: [
      {
        title: 'Cluster examples/sec',
        description:
          "Training examples per second over all workers of the run (the sum of every rank's slices), per second of wall-clock time and per second spent in training steps (as the run record counts: evaluation and checkpoints excluded).",
        kind: 'timeseries',
        unit: 'short',
        queries: [CLUSTER_THROUGHPUT.wallClock, CLUSTER_THROUGHPUT.stepTime],
      },
      {
        title: 'Examples/sec per worker',
        description: "Each rank's examples per second: a slow worker holds the whole ring back.",
        kind: 'timeseries',
        unit: 'short',
        queries: [{ expr: `sum by (rank) (${rate('fmnist_worker_examples_total')})`, legend: 'rank {{rank}}' }],
      },
      {
        title: 'Step time by phase',
        description:
          'Mean seconds per step in each phase, averaged over ranks: data (batch building), compute (forward and backward), allreduce (gradient sum, waiting for slower ranks included), update (SGD).',
        kind: 'stacked',
        unit: 's',
        queries: [
          { expr: `avg by (phase) (${rate('fmnist_worker_step_phase_seconds_sum')} / ${rate('fmnist_worker_step_phase_seconds_count')})`, legend: '{{phase}}' },
        ],
      },
      {
        title: 'All-reduce bandwidth per rank',
        description: 'Payload bytes each rank sent and received per second spent in all-reduces (algorithm bandwidth).',
        kind: 'timeseries',
        unit: 'Bps',
        queries: [
          {
            expr: `sum by (rank) (${rate('fmnist_allreduce_sent_bytes_total')}) / sum by (rank) (${rate('fmnist_allreduce_seconds_total')})`,
            legend: 'rank {{rank}} sent',
          },
          {
            expr: `sum by (rank) (${rate('fmnist_allreduce_received_bytes_total')}) / sum by (rank) (${rate('fmnist_allreduce_seconds_total')})`,
            legend: 'rank {{rank}} received',
          },
        ],
      },
    ],
  },
  {
    title: 'Learning',
    panels: [
      {
        title: 'Loss',
        description: 'Training loss of the latest global batch (the same on every rank), and the mean test loss after the latest epoch.',
        kind: 'timeseries',
        unit: 'short',
        queries: [
          { expr: `max(fmnist_worker_loss{${RUN}})`, legend: 'train (latest batch)' },
          { expr: `fmnist_run_test_loss{${RUN}}`, legend: 'test (latest epoch)' },
        ],
      },
      {
        title: 'Test accuracy',
        description: 'Test accuracy after the latest finished epoch.',
        kind: 'timeseries',
        unit: 'percentunit',
        range: [0, 1],
        queries: [{ expr: `fmnist_run_test_accuracy{${RUN}}`, legend: 'test accuracy' }],
      },
      {
        title: 'Run progress',
        description: "Optimiser steps done out of the whole run's.",
        kind: 'stat',
        unit: 'percentunit',
        range: [0, 1],
        queries: [{ expr: `fmnist_run_progress_ratio{${RUN}}`, legend: 'progress' }],
      },
      {
        title: 'ETA',
        description: 'Time left at the pace of the latest step (epoch-end evaluations not included).',
        kind: 'stat',
        unit: 's',
        queries: [{ expr: `fmnist_run_eta_seconds{${RUN}}`, legend: 'ETA' }],
      },
    ],
  },
  {
    title: 'Cluster',
    panels: [
      {
        title: 'Queue depth by state',
        description: 'Jobs of the BullMQ train queue in each state.',
        kind: 'timeseries',
        unit: 'short',
        queries: [{ expr: 'sum by (state) (fmnist_queue_jobs)', legend: '{{state}}' }],
      },
      {
        title: 'Workers up',
        description: 'Worker processes Prometheus discovered and scraped, and those the coordinator sees training this run.',
        kind: 'timeseries',
        unit: 'short',
        queries: [
          { expr: 'sum(up{job="fmnist-worker"})', legend: 'up (scraped)' },
          { expr: `fmnist_run_workers{${RUN}}`, legend: 'training $run' },
        ],
      },
      {
        title: 'Process CPU',
        description: 'CPU time per second of each process (1 = one core busy).',
        kind: 'timeseries',
        unit: 'percentunit',
        queries: [{ expr: rate('process_cpu_seconds_total', FMNIST_JOBS), legend: '{{job}} {{worker}}' }],
      },
      {
        title: 'Process memory',
        description: 'Resident memory of each process.',
        kind: 'timeseries',
        unit: 'bytes',
        queries: [{ expr: `process_resident_memory_bytes{${FMNIST_JOBS}}`, legend: '{{job}} {{worker}}' }],
      },
    ],
  },
];

/** Every query of the dashboard with its panel's title (for the Prometheus test). */
export function dashboardQueries(): { panel: string; expr: string }[] {
  return DASHBOARD_ROWS.flatMap((row) => row.panels.flatMap((panel) => panel.queries.map((query) => ({ panel: panel.title, expr: query.expr }))));
}

function target(query: PanelQuery, refId: string): DataqueryBuilder {
  return new DataqueryBuilder().datasource(DATASOURCE).expr(query.expr).legendFormat(query.legend).refId(refId).range();
}

function panel(spec: PanelSpec): TimeseriesPanelBuilder | StatPanelBuilder {
  const builder = spec.kind === 'stat' ? new StatPanelBuilder() : new TimeseriesPanelBuilder();
  builder
    .title(spec.title)
    .description(spec.description)
    .datasource(DATASOURCE)
    .unit(spec.unit)
    .span(spec.kind === 'stat' ? 6 : 12)
    .height(8);
  spec.queries.forEach((query, i) => builder.withTarget(target(query, String.fromCharCode(65 + i))));
  if (spec.range) builder.min(spec.range[0]).max(spec.range[1]);
  if (builder instanceof TimeseriesPanelBuilder) {
    builder.legend(new VizLegendOptionsBuilder().showLegend(true).displayMode(LegendDisplayMode.List).placement(LegendPlacement.Bottom));
    if (spec.kind === 'stacked') builder.stacking(new StackingConfigBuilder().mode(StackingMode.Normal)).fillOpacity(60);
  }
  return builder;
}

/** The dashboard, ready to be written as JSON. */
export function buildDashboard(): Dashboard {
  const builder = new DashboardBuilder('fmnist training')
    .uid('fmnist-training')
    .tags(['fmnist'])
    .description(
      'Synchronous data-parallel training on Fashion-MNIST: throughput, step split, all-reduce, learning curves, queue and processes. Metric names: docs/ARCHITECTURE.md.',
    )
    .refresh('10s')
    .time({ from: 'now-1h', to: 'now' })
    .tooltip(DashboardCursorSync.Crosshair)
    .withVariable(
      new QueryVariableBuilder('run')
        .label('run')
        .datasource(DATASOURCE)
        .query({ query: 'label_values(fmnist_worker_examples_total, run)', refId: 'run' })
        .definition('label_values(fmnist_worker_examples_total, run)')
        .refresh(VariableRefresh.OnTimeRangeChanged)
        .sort(VariableSort.AlphabeticalDesc),
    );
  for (const row of DASHBOARD_ROWS) {
    builder.withRow(new RowBuilder(row.title));
    for (const spec of row.panels) builder.withPanel(panel(spec));
  }
  return builder.build();
}
