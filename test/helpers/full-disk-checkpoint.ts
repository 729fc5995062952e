/**
 * Child process of the full-disk checkpoint test: run inside a mount namespace whose `dir` is a
 * small tmpfs (a disk that really fills up). Writes checkpoint 1, fills the disk but for less
 * than a checkpoint, tries checkpoint 2, then frees the space and tries again; prints one JSON
 * line saying what each step found.
 */
import { open, readdir, rm, truncate } from 'node:fs/promises';
import path from 'node:path';
import { selectBackend } from '../../shared/backend/select-backend.ts';
import { CheckpointError } from '../../shared/errors.ts';
import { flattenValues } from '../../shared/model/parameter-set.ts';
import { readCheckpoint, writeCheckpoint } from '../../shared/train/checkpoint-store.ts';
import { createSeededModel } from '../../shared/train/seeded-model.ts';
import { initialTrainingState } from '../../shared/train/training-state.ts';

/** Writes pages to `file` until the disk refuses one; returns the bytes written. */
async function fillDisk(file: string): Promise<number> {
  const handle = await open(file, 'w');
  const page = new Uint8Array(4096).fill(1);
  let written = 0;
  try {
    for (;;) {
      await handle.write(page);
      written += page.length;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
  return written;
}

const [dir] = process.argv.slice(2);
await selectBackend('cpu');
const checkpoints = path.join(dir, 'run');
const model = createSeededModel('tiny-cnn', 1);
await writeCheckpoint(checkpoints, model, 28, { ...initialTrainingState(), globalStep: 1 }, {});
const before = Array.from(flattenValues(model.params.all()));

const filler = path.join(dir, 'filler');
const filled = await fillDisk(filler);
// One page free: the temporary folder fits, the weights do not.
await truncate(filler, filled - 4096);
const other = createSeededModel('tiny-cnn', 2);
let failure: { code: string; errno?: string; file?: string } | undefined;
try {
  await writeCheckpoint(checkpoints, other, 28, { ...initialTrainingState(), globalStep: 2 }, {});
} catch (error) {
  if (!(error instanceof CheckpointError)) throw error;
  failure = { code: error.code, errno: error.errno, file: error.file };
}
const afterFailure = (await readdir(checkpoints)).sort();
const restored = createSeededModel('tiny-cnn', 3);
await readCheckpoint(path.join(checkpoints, 'ckpt-000000001'), restored);
const restoredEqual = Array.from(flattenValues(restored.params.all())).every((v, i) => Object.is(v, before[i]));

await rm(filler);
const retried = path.basename(await writeCheckpoint(checkpoints, other, 28, { ...initialTrainingState(), globalStep: 2 }, {}));
process.stdout.write(`${JSON.stringify({ failure, afterFailure, restoredEqual, retried, afterRetry: (await readdir(checkpoints)).sort() })}\n`);
