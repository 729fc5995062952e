/**
 * `npm run worker -- --redis URL [flags]`: a training worker. It takes `train` jobs from
 * BullMQ, joins each run's ring and trains its slice of every batch, until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { FmnistError } from '../shared/errors.ts';
import { installShutdownSignal } from '../shared/process/shutdown-signal.ts';
import { refuseBadCredentials } from '../shared/redis/ping-redis.ts';
import { ClusterWorker } from './cluster-worker.ts';
import { securityWarnings } from './security-warnings.ts';
import { compileWorkerOptions, type CompiledWorkerOptions } from './worker-options.ts';

const USAGE = `usage: npm run worker -- [--redis URL] [--prefix fmnist] [--backend auto|tensorflow-gpu|tensorflow|onednn|wasm|cpu]
       [--threads N] [--listen-host 127.0.0.1] [--advertise-host HOST] [--ring-port 0] [--checkpoint-root DIR]
       [--collective-timeout-ms 600000] [--collective-transport auto|grpc] [--host-id ID] [--name NAME]
       [--metrics-host HOST] [--metrics-port auto|off|N] [--tls-cert FILE --tls-key FILE --tls-ca FILE]
       [--redis-user USER] [--redis-password PASSWORD] [--redis-tls-ca FILE] [--redis-tls-cert FILE --redis-tls-key FILE]
  Listening on 0.0.0.0 or :: without --advertise-host, a worker advertises its first non-loopback
  address to its peers. --ring-port fixes the ring's port (0: a free one for each job).
  /metrics and /healthz are served on --metrics-host (default: the listen host) and --metrics-port
  (default auto: a free port, registered in Redis so that the coordinator's /sd lists it; 0 or off: none).
  --tls-cert, --tls-key and --tls-ca (all three) turn on mutual TLS between ring members: each
  certificate must be signed by the CA and name the host its worker advertises (docs/SECURITY.md).
  Redis: rediss:// for TLS (--redis-tls-ca: the CA of its certificate; --redis-tls-cert/-key: a
  client certificate); an ACL user and password in the URL or, better (ps shows command lines),
  in REDIS_USERNAME and REDIS_PASSWORD.
  Environment: REDIS_URL, FMNIST_PREFIX, TRAIN_BACKEND, WORKER_THREADS, WORKER_LISTEN_HOST, WORKER_ADVERTISE_HOST,
  WORKER_RING_PORT, WORKER_METRICS_HOST, WORKER_METRICS_PORT, CHECKPOINT_ROOT, FMNIST_COLLECTIVE_TRANSPORT,
  FMNIST_HOST_ID, FMNIST_AUTH_TOKEN (shared secret of the ring), FMNIST_TLS_CERT, FMNIST_TLS_KEY, FMNIST_TLS_CA,
  REDIS_USERNAME, REDIS_PASSWORD, REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY.`;

function parseWorkerFlags(argv: string[]): CompiledWorkerOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      redis: { type: 'string' },
      prefix: { type: 'string' },
      backend: { type: 'string' },
      threads: { type: 'string' },
      'listen-host': { type: 'string' },
      'advertise-host': { type: 'string' },
      'ring-port': { type: 'string' },
      'checkpoint-root': { type: 'string' },
      'collective-timeout-ms': { type: 'string' },
      name: { type: 'string' },
      'metrics-host': { type: 'string' },
      'metrics-port': { type: 'string' },
      'collective-transport': { type: 'string' },
      'host-id': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'tls-ca': { type: 'string' },
      'redis-user': { type: 'string' },
      'redis-password': { type: 'string' },
      'redis-tls-ca': { type: 'string' },
      'redis-tls-cert': { type: 'string' },
      'redis-tls-key': { type: 'string' },
    },
  });
  const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  return compileWorkerOptions({
    redisUrl: values.redis,
    redisCredentials: {
      username: values['redis-user'],
      password: values['redis-password'],
      tlsCa: values['redis-tls-ca'],
      tlsCert: values['redis-tls-cert'],
      tlsKey: values['redis-tls-key'],
    },
    prefix: values.prefix,
    backend: values.backend,
    threads: number(values.threads),
    listenHost: values['listen-host'],
    advertiseHost: values['advertise-host'],
    ringPort: number(values['ring-port']),
    checkpointRoot: values['checkpoint-root'],
    collectiveTimeoutMs: number(values['collective-timeout-ms']),
    name: values.name,
    metricsHost: values['metrics-host'],
    metricsPort: values['metrics-port'],
    collectiveTransport: values['collective-transport'],
    hostId: values['host-id'],
    tlsCert: values['tls-cert'] || undefined,
    tlsKey: values['tls-key'] || undefined,
    tlsCa: values['tls-ca'] || undefined,
  });
}

/** `error [CODE]: message`, one line for stderr. */
function errorLine(error: unknown): string {
  const code = error instanceof FmnistError ? ` [${error.code}]` : '';
  return `error${code}: ${(error as Error).message}`;
}

async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let options: CompiledWorkerOptions;
  try {
    options = parseWorkerFlags(argv);
  } catch (error) {
    process.stderr.write(`${errorLine(error)}\n${USAGE}\n`);
    return 2;
  }
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} worker ${options.name}: ${line}\n`);
  for (const warning of securityWarnings(options)) process.stderr.write(`warning [${warning.code}]: ${warning.message}\n`);
  let worker: ClusterWorker;
  try {
    await refuseBadCredentials(options.redis);
    worker = await ClusterWorker.start(options, log);
  } catch (error) {
    process.stderr.write(`${errorLine(error)}\n`);
    return 1;
  }
  const metrics = worker.metricsServer ? `; metrics on ${worker.metricsServer.url}/metrics` : '';
  const ring = options.tls === undefined ? 'plaintext' : 'mutual TLS';
  log(`waiting for jobs on ${options.redis.displayUrl} (prefix ${options.prefix}); ring: ${ring}${metrics}`);
  const shutdown = installShutdownSignal({ exitCode: 0, graceMs: 10 * 60_000, log });
  await new Promise<void>((resolve) =>
    shutdown.onDrain(async () => {
      await worker.close();
      resolve();
    }),
  );
  shutdown.dispose();
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
