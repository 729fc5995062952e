/**
 * `npm run bench -- <name> [flags]`: runs bench/<name>.ts, which exports `runBenchmark(argv)`.
 * `npm run bench` alone runs every benchmark that holds a target, one after another, with its
 * defaults. Every benchmark prints ratios measured side by side in the same run, because these
 * machines are noisy: absolute figures from different runs are not comparable.
 */
const BENCHMARKS = ['step', 'allreduce', 'scaling', 'overlap', 'compression', 'onednn-kernels', 'metrics'] as const;
/** The benchmarks whose figures the issues set targets for. */
const WITH_TARGETS: readonly BenchmarkName[] = ['step', 'allreduce', 'scaling', 'metrics'];
type BenchmarkName = (typeof BENCHMARKS)[number];

function isBenchmark(name: string | undefined): name is BenchmarkName {
  return BENCHMARKS.includes(name as BenchmarkName);
}

async function run(name: BenchmarkName, argv: string[]): Promise<void> {
  const module = (await import(`./${name}.ts`)) as { runBenchmark(argv: string[]): Promise<void> };
  await module.runBenchmark(argv);
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    for (const each of WITH_TARGETS) {
      process.stdout.write(`\n=== npm run bench -- ${each} ===\n`);
      await run(each, []);
    }
    return;
  }
  if (!isBenchmark(name)) {
    process.stderr.write(`usage: npm run bench -- <${BENCHMARKS.join('|')}> [flags] (got ${JSON.stringify(name ?? '')})\n`);
    process.exitCode = 2;
    return;
  }
  await run(name, rest);
}

await main(process.argv.slice(2));
