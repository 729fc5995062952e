import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { compileRedisTarget, type RedisTarget } from '../config/redis-options.ts';
import { pingRedis } from './ping-redis.ts';
import { RedisError } from './redis-error.ts';

/** Options of {@link RedisServerProcess.start}. */
export interface RedisServerOptions {
  /** TCP port on 127.0.0.1. @default a free port chosen by the OS */
  port?: number;
  /** Data directory, kept on close. @default a new temporary directory, removed on close */
  dir?: string;
  /**
   * Keep data in an append-only file in `dir`, so that a restart (or a later process given the
   * same `dir`) finds it. Without it nothing is ever written to disk. @default false
   */
  persist?: boolean;
  /** The redis-server executable. @default 'redis-server' */
  executable?: string;
  /** How long to wait for the first PONG, in ms. @default 10000 */
  startTimeoutMs?: number;
  /** `requirepass`: the default user's password. @default none */
  password?: string;
  /** ACL users besides the default one, each with every right on every key. @default none */
  users?: readonly { name: string; password: string }[];
  /**
   * Serve TLS only (`rediss://`), with these PEM files: the server's certificate and key, and
   * the CA it checks client certificates against. With `requireClientCertificates` a client
   * must present one (`tls-auth-clients yes`); this process then uses the server's own.
   * @default plaintext
   */
  tls?: { cert: string; key: string; ca: string; requireClientCertificates?: boolean };
}

type ServerState = 'running' | 'stopped' | 'closed';

/** Attempts at finding a free port when the one the OS offered was taken before Redis bound it. */
const PORT_ATTEMPTS = 3;
/** Output kept from the server for error messages, in characters. */
const LOG_TAIL_CHARS = 4_000;

/** Children still running; killed when this process exits so no redis-server is orphaned. */
const liveChildren = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});

/**
 * A real `redis-server` child bound to 127.0.0.1, which can be stopped and started again on the
 * same port and directory (to test reconnects). It runs in its own process group, so a Ctrl-C
 * in the terminal reaches our process, which can still write to Redis while it drains.
 */
export class RedisServerProcess {
  /** `redis://127.0.0.1:<port>`, or `rediss://` with TLS; never with credentials. */
  readonly url: string;
  /** How to connect: the URL with the password and TLS files of the options. */
  readonly target: RedisTarget;
  private state: ServerState = 'stopped';
  private child: ChildProcess | undefined;
  private logTail = '';
  private closing: Promise<void> | undefined;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly ownsDir: boolean,
    private readonly options: RedisServerOptions,
  ) {
    const tls = options.tls;
    this.url = `${tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`;
    const clientCertificate = tls?.requireClientCertificates === true ? { tlsCert: tls.cert, tlsKey: tls.key } : {};
    this.target = compileRedisTarget({ url: this.url, password: options.password, tlsCa: tls?.ca, ...clientCertificate });
  }

  /** Starts a server and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServerProcess> {
    const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'fmnist-redis-')));
    await mkdir(dir, { recursive: true });
    const attempts = options.port === undefined ? PORT_ATTEMPTS : 1;
    for (let attempt = 1; ; attempt += 1) {
      const server = new RedisServerProcess(options.port ?? (await freePort()), dir, options.dir === undefined, options);
      try {
        await server.startProcess();
        return server;
      } catch (error) {
        const portTaken = error instanceof RedisError && error.code === 'REDIS_PORT_IN_USE';
        if (!portTaken || attempt >= attempts) {
          if (server.ownsDir) await rm(dir, { recursive: true, force: true });
          throw error;
        }
      }
    }
  }

  /** The server's process id, while it runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Stops the server, keeping its directory. `'graceful'` sends SIGTERM (Redis flushes its
   * append-only file when persisting); `'kill'` sends SIGKILL, like a crash.
   */
  async stop(mode: 'graceful' | 'kill' = 'graceful'): Promise<void> {
    const child = this.child;
    if (this.state !== 'running' || child === undefined) return;
    this.state = 'stopped';
    const exited = new Promise<void>((resolve) => {
      if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    // The child is unref'ed so that it never keeps us alive; while we wait for its exit it must.
    child.ref();
    child.kill(mode === 'kill' ? 'SIGKILL' : 'SIGTERM');
    await exited;
    liveChildren.delete(child);
    this.child = undefined;
  }

  /** Starts a stopped server again on the same port and directory. */
  async restart(options: { mode?: 'graceful' | 'kill'; downMs?: number } = {}): Promise<void> {
    if (this.state === 'closed') throw new RedisError('REDIS_CLOSED', `redis-server on ${this.url} was closed`);
    await this.stop(options.mode);
    if (options.downMs) await sleep(options.downMs);
    await this.startProcess();
  }

  /** Stops the server and removes its directory when we created it. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private async closeOnce(): Promise<void> {
    try {
      await this.stop('graceful');
    } finally {
      this.state = 'closed';
      if (this.ownsDir) await rm(this.dir, { recursive: true, force: true });
    }
  }

  private async startProcess(): Promise<void> {
    const child = spawn(this.options.executable ?? 'redis-server', this.arguments(), {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child = child;
    this.state = 'running';
    liveChildren.add(child);
    this.captureOutput(child);
    try {
      await this.waitUntilReady(child);
    } catch (error) {
      await this.stop('kill');
      throw error;
    }
    child.unref();
  }

  private arguments(): string[] {
    const persistence = this.options.persist ? ['--appendonly', 'yes', '--appendfsync', 'everysec'] : ['--appendonly', 'no'];
    const common = ['--bind', '127.0.0.1', '--dir', this.dir, '--save', '', ...persistence, '--daemonize', 'no', '--loglevel', 'warning'];
    return [...this.listenArguments(), ...common, ...this.authArguments()];
  }

  private listenArguments(): string[] {
    const tls = this.options.tls;
    if (tls === undefined) return ['--port', String(this.port)];
    const clients = tls.requireClientCertificates === true ? 'yes' : 'no';
    return [
      '--port',
      '0',
      '--tls-port',
      String(this.port),
      '--tls-cert-file',
      tls.cert,
      '--tls-key-file',
      tls.key,
      '--tls-ca-cert-file',
      tls.ca,
      '--tls-auth-clients',
      clients,
    ];
  }

  private authArguments(): string[] {
    const password = this.options.password === undefined ? [] : ['--requirepass', this.options.password];
    const users = (this.options.users ?? []).flatMap(({ name, password }) => ['--user', name, 'on', `>${password}`, '~*', '&*', '+@all']);
    return [...password, ...users];
  }

  private captureOutput(child: ChildProcess): void {
    const keep = (chunk: Buffer) => {
      this.logTail = (this.logTail + chunk.toString('utf8')).slice(-LOG_TAIL_CHARS);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
  }

  private async waitUntilReady(child: ChildProcess): Promise<void> {
    let spawnError: Error | undefined;
    child.once('error', (error) => (spawnError = error));
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 10_000);
    while (Date.now() < deadline) {
      if (spawnError)
        throw new RedisError('REDIS_SERVER_NOT_FOUND', `cannot run ${this.options.executable ?? 'redis-server'}: ${spawnError.message}`, { cause: spawnError });
      if (child.exitCode !== null || child.signalCode !== null) throw this.exitError();
      if (await pingRedis(this.target, 200)) return;
      await sleep(20);
    }
    throw new RedisError('REDIS_START_FAILED', `redis-server on ${this.url} did not answer PING in time:\n${this.logTail}`);
  }

  private exitError(): RedisError {
    if (/address already in use/i.test(this.logTail)) {
      return new RedisError('REDIS_PORT_IN_USE', `port ${this.port} is already in use`);
    }
    return new RedisError('REDIS_START_FAILED', `redis-server on ${this.url} exited at start:\n${this.logTail}`);
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}
