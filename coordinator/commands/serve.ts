import { installShutdownSignal } from '../../shared/process/shutdown-signal.ts';
import { DEFAULT_METRICS_PORT, METRICS_FLAGS, metricsOptionsFromFlags, parseFlags } from '../cli-flags.ts';
import { CLUSTER_FLAGS, openClusterSession } from '../cluster-session.ts';
import { CoordinatorService } from '../coordinator-service.ts';

/** `coordinator serve`: the long-running coordinator, until SIGINT/SIGTERM. */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('serve', argv, { ...CLUSTER_FLAGS, ...METRICS_FLAGS, 'no-resume-lost': { type: 'boolean' } });
  const metrics = metricsOptionsFromFlags(values, DEFAULT_METRICS_PORT);
  const session = await openClusterSession(values, process.env, { waitForRedis: true });
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} ${line}\n`);
  // --no-resume-lost: a running run whose workers all stopped beating stays as it is, for `resume --force`.
  const service = new CoordinatorService(session.client, log, metrics, values['no-resume-lost'] !== true);
  const dataset = await service.start();
  log(`serving on ${session.client.target.displayUrl} (prefix ${session.client.keys.prefix}); dataset ${dataset.train}, ${dataset.test}`);
  if (service.metricsServer) log(`metrics on ${service.metricsServer.url}/metrics, Prometheus service discovery on ${service.metricsServer.url}/sd`);
  const shutdown = installShutdownSignal({ exitCode: 0, log });
  await new Promise<void>((resolve) => shutdown.onDrain(() => resolve()));
  await service.close();
  await session.close();
  shutdown.dispose();
  return 0;
}
