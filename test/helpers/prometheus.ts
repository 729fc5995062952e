/**
 * Talking to a real Prometheus from tests: instant queries through its HTTP API, and Debian's
 * `promtool` (the `prometheus` package) to lint configs and metrics exposition text.
 */
import { spawn } from 'node:child_process';

/** One series of an instant query's vector result. */
export interface Sample {
  metric: Record<string, string>;
  value: number;
}

/** Evaluates `expr` at `timeMs` (ms since the epoch) through `GET /api/v1/query`; throws on an API error. */
export async function instantQuery(prometheusUrl: string, expr: string, timeMs: number): Promise<Sample[]> {
  const url = new URL('/api/v1/query', prometheusUrl);
  url.searchParams.set('query', expr);
  url.searchParams.set('time', (timeMs / 1000).toFixed(3));
  const body = (await (await fetch(url)).json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (body.status !== 'success' || body.data === undefined) throw new Error(`query ${expr}: ${body.error ?? body.status}`);
  if (body.data.resultType !== 'vector') throw new Error(`query ${expr}: a ${body.data.resultType}, not a vector`);
  return body.data.result.map((series) => ({ metric: series.metric, value: Number(series.value[1]) }));
}

/** One raw sample of a series: its scrape's time (ms since the epoch) and value. */
export interface TimedSample {
  timeMs: number;
  value: number;
}

/** The raw samples of the one series `selector` picks over the `windowMs` before `timeMs`, oldest first. */
export async function rangeSamples(prometheusUrl: string, selector: string, windowMs: number, timeMs: number): Promise<TimedSample[]> {
  const url = new URL('/api/v1/query', prometheusUrl);
  url.searchParams.set('query', `${selector}[${Math.ceil(windowMs)}ms]`);
  url.searchParams.set('time', (timeMs / 1000).toFixed(3));
  const body = (await (await fetch(url)).json()) as {
    status: string;
    error?: string;
    data?: { resultType: string; result: { values: [number, string][] }[] };
  };
  if (body.status !== 'success' || body.data === undefined) throw new Error(`query ${selector}: ${body.error ?? body.status}`);
  if (body.data.result.length !== 1) throw new Error(`query ${selector}: ${body.data.result.length} series, not 1`);
  return body.data.result[0].values.map(([seconds, value]) => ({ timeMs: Math.round(seconds * 1000), value: Number(value) }));
}

/** What `promtool` said. */
export interface PromtoolResult {
  code: number | null;
  output: string;
}

/** Runs `promtool <args>`, feeding `stdin` when given. */
export function promtool(args: string[], stdin?: string): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(stdin ?? '');
  });
}
