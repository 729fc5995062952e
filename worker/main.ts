/**
 * `npm run worker -- --redis URL [flags]`: a training worker. It takes `train` jobs from
 * BullMQ, joins each run's ring and trains its slice of every batch, until SIGINT/SIGTERM.
 */
import { parseArgs } from 'node:util';
import { FmnistError } from '../shared/errors.ts';
import { installShutdownSignal } from '../shared/process/shutdown-signal.ts';
import { ClusterWorker } from './cluster-worker.ts';
import { compileWorkerOptions, type CompiledWorkerOptions } from './worker-options.ts';

const USAGE = `usage: npm run worker -- [--redis URL] [--prefix fmnist] [--backend auto|tensorflow-gpu|tensorflow|onednn|wasm|cpu]
       [--threads N] [--listen-host 127.0.0.1] [--advertise-host HOST] [--ring-port 0] [--checkpoint-root DIR]
       [--collective-timeout-ms 600000] [--name NAME]
  Listening on 0.0.0.0 or :: without --advertise-host, a worker advertises its first non-loopback
  address to its peers. --ring-port fixes the ring's port (0: a free one for each job).
  Environment: REDIS_URL, FMNIST_PREFIX, TRAIN_BACKEND, WORKER_THREADS, WORKER_LISTEN_HOST,
  WORKER_ADVERTISE_HOST, WORKER_RING_PORT, CHECKPOINT_ROOT, FMNIST_AUTH_TOKEN (shared secret of the ring).`;

function parseWorkerFlags(argv: string[]): CompiledWorkerOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      redis: { type: 'string' }, prefix: { type: 'string' }, backend: { type: 'string' }, threads: { type: 'string' },
      'listen-host': { type: 'string' }, 'advertise-host': { type: 'string' }, 'ring-port': { type: 'string' }, 'checkpoint-root': { type: 'string' },
      'collective-timeout-ms': { type: 'string' }, name: { type: 'string' },
    },
  });
  const number = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  return compileWorkerOptions({
    redisUrl: values.redis, prefix: values.prefix, backend: values.backend, threads: number(values.threads),
    listenHost: values['listen-host'], advertiseHost: values['advertise-host'], ringPort: number(values['ring-port']), checkpointRoot: values['checkpoint-root'],
    collectiveTimeoutMs: number(values['collective-timeout-ms']), name: values.name,
  });
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
    const code = error instanceof FmnistError ? ` [${error.code}]` : '';
    process.stderr.write(`error${code}: ${(error as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} worker ${options.name}: ${line}\n`);
  const worker = new ClusterWorker(options, log);
  log(`waiting for jobs on ${options.redisUrl} (prefix ${options.prefix})`);
  const shutdown = installShutdownSignal({ exitCode: 0, graceMs: 10 * 60_000, log });
  await new Promise<void>((resolve) => shutdown.onDrain(async () => {
    await worker.close();
    resolve();
  }));
  shutdown.dispose();
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
