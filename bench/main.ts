/**
 * `npm run bench -- <name> [flags]`: runs bench/<name>.ts, which exports `runBenchmark(argv)`.
 * Every benchmark prints ratios measured side by side in the same run, because these machines
 * are noisy: absolute figures from different runs are not comparable.
 */
const BENCHMARKS = ['step', 'allreduce', 'scaling', 'onednn-kernels'] as const;
type BenchmarkName = (typeof BENCHMARKS)[number];

function isBenchmark(name: string | undefined): name is BenchmarkName {
  return BENCHMARKS.includes(name as BenchmarkName);
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (!isBenchmark(name)) {
    process.stderr.write(`usage: npm run bench -- <${BENCHMARKS.join('|')}> [flags] (got ${JSON.stringify(name ?? '')})\n`);
    process.exitCode = 2;
    return;
  }
  const module = (await import(`./${name}.ts`)) as { runBenchmark(argv: string[]): Promise<void> };
  await module.runBenchmark(rest);
}

await main(process.argv.slice(2));
