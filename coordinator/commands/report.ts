import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RunError } from '../../shared/errors.ts';
import { parseFlags, stringFlag } from '../cli-flags.ts';
import { CLUSTER_FLAGS, openClusterSession } from '../cluster-session.ts';
import { renderRunReport } from '../report/run-report.ts';

/**
 * `coordinator report <run> [--out FILE]`: writes one self-contained HTML page with the run's
 * curves (default `<run>.html` here) and prints its path. `--out -` writes the page itself to
 * stdout, for a container whose file system is thrown away
 * (`docker compose run --rm -T coordinator report <run> --out - > run.html`).
 */
export async function reportCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags('report', argv, { ...CLUSTER_FLAGS, out: { type: 'string' } }, 1);
  const runId = positionals[0];
  if (!runId) throw new RunError('RUN_ID_MISSING', 'report needs a run id (see `coordinator list`)');
  const outFlag = stringFlag(values, 'out') ?? `${runId}.html`;
  const session = await openClusterSession(values, process.env, { readsStateDir: true });
  try {
    const run = await session.client.runs.get(runId);
    const samples = await session.client.runs.stepSamples(runId);
    const page = renderRunReport({ run, samples, generatedAt: new Date() });
    if (outFlag === '-') {
      process.stdout.write(page);
      return 0;
    }
    const out = path.resolve(outFlag);
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, page);
    process.stdout.write(`${values.json === true ? JSON.stringify({ run: runId, out, epochs: run.history.length, stepSamples: samples.length }) : out}\n`);
    return 0;
  } finally {
    await session.close();
  }
}
