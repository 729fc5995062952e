/**
 * Inline SVG charts for the run report: a line chart and a stacked bar chart on a shared frame
 * (title, legend, axes with ticks, grid lines and labels). Each returns one `<svg>` element as a
 * string, every text escaped; nothing is fetched, no script runs.
 */
import { formatTick, linearScale, type Domain } from './chart-scale.ts';
import { escapeHtml } from './html-escape.ts';

/** Pixel size of a chart and the margins around its plot area. */
export interface ChartLayout {
  width: number;
  height: number;
  margin: { top: number; right: number; bottom: number; left: number };
}

/** 1100 x 280 px, room for the title and legend above the plot and tick labels beside it. */
export const DEFAULT_LAYOUT: ChartLayout = { width: 1100, height: 280, margin: { top: 54, right: 24, bottom: 48, left: 72 } };

/** One axis: its label, its data interval and where its ticks go (in data units). */
export interface AxisSpec {
  label: string;
  domain: Domain;
  ticks: readonly number[];
  format?: (value: number) => string;
}

export interface Point {
  x: number;
  y: number;
}

/** A line through `points` in data units; `dashed` lets a line drawn over another show both. */
export interface LineSeries {
  name: string;
  colour: string;
  points: readonly Point[];
  dashed?: boolean;
}

/** A bar over [from, to] on the x axis whose segments stack `values` (one per layer) from 0. */
export interface StackedBar {
  from: number;
  to: number;
  values: readonly number[];
}

export interface StackLayer {
  name: string;
  colour: string;
}

interface ChartSpec {
  title: string;
  x: AxisSpec;
  y: AxisSpec;
  layout?: ChartLayout;
}

type Scale = (value: number) => number;

/** Lines with a round marker at each point while there are few enough to tell apart. */
const MAX_MARKED_POINTS = 50;
const STROKE_WIDTH = 3;

/** An SVG path through `points`: `M x,y L x,y ...` in pixels rounded to 0.01. */
export function linePath(points: readonly Point[], x: Scale, y: Scale): string {
  return points.map((p, i) => `${i === 0 ? 'M' : 'L'}${px(x(p.x))},${px(y(p.y))}`).join('');
}

/** A line chart of `series`. */
export function lineChart(spec: ChartSpec & { series: readonly LineSeries[] }): string {
  const legend = spec.series.map((s): LegendEntry => ({ name: s.name, colour: s.colour, swatch: s.dashed ? 'dashed' : 'line' }));
  return chartFrame(spec, legend, (x, y) => spec.series.map((s) => seriesSvg(s, x, y)).join(''));
}

/** Bars of stacked segments, layer 0 at the bottom. */
export function stackedBarChart(spec: ChartSpec & { layers: readonly StackLayer[]; bars: readonly StackedBar[] }): string {
  const legend = spec.layers.map((layer): LegendEntry => ({ ...layer, swatch: 'box' }));
  return chartFrame(spec, legend, (x, y) => spec.bars.map((bar) => barSvg(bar, spec.layers, x, y)).join(''));
}

function seriesSvg(series: LineSeries, x: Scale, y: Scale): string {
  const dash = series.dashed ? ` stroke-dasharray="10 6"` : '';
  const line = `<path d="${linePath(series.points, x, y)}" fill="none" stroke="${escapeHtml(series.colour)}" stroke-width="${STROKE_WIDTH}" stroke-linejoin="round"${dash}/>`;
  if (series.points.length > MAX_MARKED_POINTS) return line;
  const markers = series.points.map((p) => `<circle cx="${px(x(p.x))}" cy="${px(y(p.y))}" r="4" fill="${escapeHtml(series.colour)}"/>`);
  return line + markers.join('');
}

function barSvg(bar: StackedBar, layers: readonly StackLayer[], x: Scale, y: Scale): string {
  const left = x(bar.from);
  const width = Math.max(1, x(bar.to) - left);
  let base = 0;
  return bar.values
    .map((value, i) => {
      const top = y(base + value);
      const height = y(base) - top;
      base += value;
      return `<rect class="bar" x="${px(left)}" y="${px(top)}" width="${px(width)}" height="${px(height)}" fill="${escapeHtml(layers[i].colour)}"/>`;
    })
    .join('');
}

/** The frame around a plot: grid, axes, tick labels, axis labels, title and legend. */
function chartFrame(spec: ChartSpec, legend: readonly LegendEntry[], body: (x: Scale, y: Scale) => string): string {
  const { width, height, margin } = spec.layout ?? DEFAULT_LAYOUT;
  const plot = { left: margin.left, right: width - margin.right, top: margin.top, bottom: height - margin.bottom };
  const x = linearScale(spec.x.domain, [plot.left, plot.right]);
  const y = linearScale(spec.y.domain, [plot.bottom, plot.top]);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="${escapeHtml(spec.title)}">`,
    `<text x="${plot.left}" y="18" class="title">${escapeHtml(spec.title)}</text>`,
    yAxisSvg(spec.y, y, plot),
    xAxisSvg(spec.x, x, plot),
    body(x, y),
    `<line x1="${plot.left}" y1="${plot.bottom}" x2="${plot.right}" y2="${plot.bottom}" class="axis"/>`,
    `<line x1="${plot.left}" y1="${plot.top}" x2="${plot.left}" y2="${plot.bottom}" class="axis"/>`,
    `<g transform="translate(${plot.left},38)">${legendRow(legend)}</g>`,
    '</svg>',
  ];
  return parts.join('');
}

interface PlotBox {
  left: number;
  right: number;
  top: number;
  bottom: number;
}

function yAxisSvg(axis: AxisSpec, y: Scale, plot: PlotBox): string {
  const format = axis.format ?? formatTick;
  const ticks = axis.ticks.map((tick) => {
    const at = px(y(tick));
    return `<line x1="${plot.left}" y1="${at}" x2="${plot.right}" y2="${at}" class="grid"/><text x="${plot.left - 8}" y="${at}" class="tick" text-anchor="end" dominant-baseline="middle">${escapeHtml(format(tick))}</text>`;
  });
  const middle = px((plot.top + plot.bottom) / 2);
  return `${ticks.join('')}<text transform="translate(16,${middle}) rotate(-90)" class="label" text-anchor="middle">${escapeHtml(axis.label)}</text>`;
}

function xAxisSvg(axis: AxisSpec, x: Scale, plot: PlotBox): string {
  const format = axis.format ?? formatTick;
  const ticks = axis.ticks.map((tick) => {
    const at = px(x(tick));
    return `<line x1="${at}" y1="${plot.bottom}" x2="${at}" y2="${plot.bottom + 5}" class="axis"/><text x="${at}" y="${plot.bottom + 20}" class="tick" text-anchor="middle">${escapeHtml(format(tick))}</text>`;
  });
  const middle = px((plot.left + plot.right) / 2);
  return `${ticks.join('')}<text x="${middle}" y="${plot.bottom + 40}" class="label" text-anchor="middle">${escapeHtml(axis.label)}</text>`;
}

/** A legend entry: a swatch in the series' colour and its name. */
interface LegendEntry {
  name: string;
  colour: string;
  swatch: 'line' | 'dashed' | 'box';
}

function swatchSvg(entry: LegendEntry): string {
  const c = escapeHtml(entry.colour);
  if (entry.swatch === 'box') return `<rect x="0" y="-9" width="18" height="10" fill="${c}"/>`;
  const dash = entry.swatch === 'dashed' ? ' stroke-dasharray="6 3"' : '';
  return `<line x1="0" y1="-4" x2="18" y2="-4" stroke="${c}" stroke-width="${STROKE_WIDTH}"${dash}/>`;
}

/** Entries side by side; widths estimated from the name's length (12 px text, about 7 px a character). */
function legendRow(entries: readonly LegendEntry[]): string {
  let offset = 0;
  return entries
    .map((entry) => {
      const placed = `<g transform="translate(${offset},0)">${swatchSvg(entry)}<text x="24" y="0" class="legend">${escapeHtml(entry.name)}</text></g>`;
      offset += 48 + entry.name.length * 7;
      return placed;
    })
    .join('');
}

/** A pixel coordinate rounded to 0.01 px, without trailing zeros. */
function px(value: number): string {
  return String(Math.round(value * 100) / 100);
}
