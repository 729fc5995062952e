import { numberFlag, parseFlags } from '../cli-flags.ts';
import { CLUSTER_FLAGS, openClusterSession } from '../cluster-session.ts';

/** `coordinator list [--json] [--limit N]`: runs, newest first. */
export async function listCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('list', argv, { ...CLUSTER_FLAGS, limit: { type: 'string' } });
  const session = await openClusterSession(values, process.env, { readsStateDir: true });
  try {
    const runs = await session.client.runs.list({ limit: numberFlag(values, 'limit') ?? 20 });
    if (values.json === true) {
      process.stdout.write(
        `${JSON.stringify(runs.map((r) => ({ run: r.id, status: r.state, generation: r.generation, epochs: r.history.length, config: r.config })))}\n`,
      );
      return 0;
    }
    for (const r of runs) {
      const last = r.history.at(-1);
      process.stdout.write(
        `${r.id}  ${r.state.padEnd(11)} ${r.config.workers} worker(s)  epoch ${r.history.length}/${r.config.epochs}${last ? `  test acc ${last.testAcc.toFixed(3)}` : ''}\n`,
      );
    }
    return 0;
  } finally {
    await session.close();
  }
}
