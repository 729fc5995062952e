/**
 * The small HTTP server every process runs for Prometheus: `GET /metrics` (its registry in the
 * text exposition format), `GET /healthz` and any extra JSON routes (the coordinator adds `/sd`,
 * Prometheus' HTTP service discovery). Plain node:http: one route table, no framework.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { ConfigError } from '../errors.ts';
import { joinHostPort } from '../net/host-port.ts';

/**
 * Where a process serves its metrics: a TCP port, `'auto'` (a free port the OS picks, so that
 * several processes on one host never collide; the real one is logged and registered) or `'off'`.
 */
export type MetricsPort = number | 'auto' | 'off';

/** Parses `--metrics-port`: `0` or `off` turns the server off, `auto` picks a free port. */
export function parseMetricsPort(value: string | number | undefined, fallback: MetricsPort): MetricsPort {
  if (value === undefined || value === '') return fallback;
  if (value === 'auto' || value === 'off') return value;
  const port = typeof value === 'number' ? value : Number(value.trim() === '' ? Number.NaN : value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`metrics port must be auto, off or an integer in [0, 65535] (0: off), got ${JSON.stringify(value)}`);
  }
  return port === 0 ? 'off' : port;
}

/** What `/healthz` reports: 200 while `ok`, 503 otherwise; `state` is shown in the body. */
export interface HealthReport {
  ok: boolean;
  state: string;
}

/** Options of {@link MetricsServer.start}. */
export interface MetricsServerOptions {
  registry: Registry;
  /** Interface to listen on. */
  host: string;
  /** A port, or 'auto' for a free one ('off' is the caller's business: do not start). */
  port: number | 'auto';
  /** Called before each `/metrics` render, e.g. to read Redis into gauges. Its failure is a 500. */
  refresh?: () => Promise<void>;
  /** @default always healthy, state 'up' */
  health?: () => HealthReport;
  /** Extra `GET` routes answering JSON, by path (e.g. `/sd`). */
  routes?: Record<string, (request: IncomingMessage) => Promise<unknown>>;
}

/** A started metrics server. */
export class MetricsServer {
  private closing?: Promise<void>;

  private constructor(
    private readonly server: Server,
    /** The port it listens on (the OS's choice for 'auto'). */
    readonly port: number,
    readonly host: string,
  ) {}

  /**
   * Listens on `host:port`; rejects with ConfigError('CONFIG_INVALID') when the address cannot be
   * bound (a fixed port already in use), naming it.
   */
  static async start(options: MetricsServerOptions): Promise<MetricsServer> {
    const server = createServer((request, response) => void handle(options, request, response));
    // A scrape is a short request; an idle keep-alive socket must not hold close() up.
    server.keepAliveTimeout = 1_000;
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', (error) =>
        reject(
          new ConfigError(`cannot serve metrics on ${joinHostPort(options.host, options.port === 'auto' ? 0 : options.port)}: ${error.message}`, {
            cause: error,
          }),
        ),
      );
      server.listen(options.port === 'auto' ? 0 : options.port, options.host, () => resolve((server.address() as AddressInfo).port));
    });
    server.unref();
    return new MetricsServer(server, port, options.host);
  }

  /** `http://host:port`, for logs. */
  get url(): string {
    return `http://${joinHostPort(this.host, this.port)}`;
  }

  /** Stops listening and ends open connections. Idempotent. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}

async function handle(options: MetricsServerOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  if (request.method !== 'GET' && request.method !== 'HEAD') return send(response, 405, 'text/plain', 'only GET\n');
  try {
    if (path === '/metrics') {
      await options.refresh?.();
      return send(response, 200, options.registry.contentType, await options.registry.metrics());
    }
    if (path === '/healthz') {
      const health = options.health?.() ?? { ok: true, state: 'up' };
      return send(response, health.ok ? 200 : 503, 'application/json', `${JSON.stringify(health)}\n`);
    }
    const route = options.routes?.[path];
    if (route !== undefined) return send(response, 200, 'application/json', `${JSON.stringify(await route(request))}\n`);
    return send(response, 404, 'text/plain', 'not found: try /metrics or /healthz\n');
  } catch (error) {
    return send(response, 500, 'text/plain', `${(error as Error).message}\n`);
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
