import type { EpochRecord } from '../shared/train/training-state.ts';

/** The seed program's figures for one epoch, as a line for people. */
export function formatEpochLine(record: EpochRecord, epochs: number, backend: string): string {
  return (
    `epoch ${record.epoch}/${epochs}: loss ${record.loss.toFixed(3)}, train acc ${record.trainAcc.toFixed(3)}, ` +
    `test acc ${record.testAcc.toFixed(3)}, ${record.examplesPerSec.toFixed(1)} examples/sec on ${backend}`
  );
}

/**
 * The same figures as one JSON object (the `--json` interface), plus `seconds`: the epoch's
 * training time, over which `examplesPerSec` counts the epoch's examples.
 */
export function epochJson(record: EpochRecord, backend: string, extra: Record<string, unknown> = {}): string {
  const { epoch, loss, trainAcc, testAcc, examplesPerSec, seconds } = record;
  return JSON.stringify({ epoch, loss, trainAcc, testAcc, examplesPerSec, seconds, backend, ...extra });
}
