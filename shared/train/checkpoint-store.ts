import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { CheckpointError } from '../errors.ts';
import { assignValues, flattenValues } from '../model/parameter-set.ts';
import type { TrainableModel } from '../model/trainable-model.ts';
import type { TrainingState } from './training-state.ts';

/**
 * Checkpoints on disk. Each is a folder `ckpt-<globalStep>` holding a tfjs-layers model
 * (`model.json` + `weights.bin`, readable by `tf.loadLayersModel`) and `training-state.json`.
 * A folder is written under a temporary name and renamed into place, so a folder with the
 * final name is always complete: a crash leaves at most a `.tmp-*` folder, which is ignored.
 * A failed write (a full disk) removes its temporary folder and leaves older checkpoints as they
 * were. `training-state.json` holds the SHA-256 of `weights.bin`, so a checkpoint damaged after
 * it was written (a bad disk, a partial copy) is found on read and resume falls back to the one
 * before it ({@link restoreNewestCheckpoint}).
 */
const PREFIX = 'ckpt-';
const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';
const STATE_FILE = 'training-state.json';

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
}

interface SavedState<C> {
  state: TrainingState;
  config: C;
  /** Side of the square images the model was trained on. */
  imageSize: number;
  /** SHA-256 (hex) of weights.bin; absent in checkpoints written before it was recorded. */
  weightsSha256?: string;
}

/** Topology JSON per model and image size; building a mirror allocates a whole model, so do it once. */
const topologyCache = new Map<string, unknown>();

function modelTopology(model: TrainableModel, imageSize: number): unknown {
  const key = `${model.kind}:${imageSize}`;
  let topology = topologyCache.get(key);
  if (!topology) {
    const mirror: tfl.LayersModel = model.buildLayersMirror(imageSize);
    topology = mirror.toJSON(undefined, false);
    mirror.dispose();
    topologyCache.set(key, topology);
  }
  return topology;
}

function checkpointName(globalStep: number): string {
  return `${PREFIX}${String(globalStep).padStart(9, '0')}`;
}

async function writeFileSynced(file: string, data: string | Uint8Array): Promise<void> {
  const handle = await fs.open(file, 'w');
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Weight specs and bytes of every parameter, trainable then running statistics. */
function serializeWeights(model: TrainableModel): { specs: WeightSpec[]; bytes: Uint8Array } {
  const weights = model.params.all();
  const specs = weights.map(({ name, variable }) => ({ name, shape: variable.shape, dtype: 'float32' as const }));
  return { specs, bytes: new Uint8Array(flattenValues(weights).buffer) };
}

/**
 * Writes a checkpoint of `model` and `state` into `dir` atomically and returns its path.
 * `config` is the run's training configuration, stored so that resume needs nothing else.
 */
export async function writeCheckpoint<C>(dir: string, model: TrainableModel, imageSize: number, state: TrainingState, config: C): Promise<string> {
  const finalPath = path.join(dir, checkpointName(state.globalStep));
  const tmpPath = path.join(dir, `.tmp-${checkpointName(state.globalStep)}-${process.pid}-${Date.now()}`);
  try {
    await fs.mkdir(dir, { recursive: true });
    await fs.mkdir(tmpPath);
    await writeFiles(tmpPath, model, imageSize, { state, config, imageSize });
    await replaceFolder(tmpPath, finalPath);
    return finalPath;
  } catch (error) {
    // A full disk must not also leave a half-written folder taking the space that is left.
    await fs.rm(tmpPath, { recursive: true, force: true }).catch(() => {});
    const errno = (error as NodeJS.ErrnoException).code;
    throw new CheckpointError('CHECKPOINT_WRITE_FAILED', `cannot write checkpoint ${finalPath}: ${(error as Error).message}`, {
      cause: error,
      file: finalPath,
      errno,
    });
  }
}

async function writeFiles<C>(folder: string, model: TrainableModel, imageSize: number, saved: SavedState<C>): Promise<void> {
  const { specs, bytes } = serializeWeights(model);
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_core}`,
    convertedBy: null,
    modelTopology: modelTopology(model, imageSize),
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }],
  };
  await writeFileSynced(path.join(folder, WEIGHTS_FILE), bytes);
  await writeFileSynced(path.join(folder, MODEL_FILE), JSON.stringify(modelJson));
  await writeFileSynced(path.join(folder, STATE_FILE), JSON.stringify({ ...saved, weightsSha256: sha256(bytes) }, null, 2));
}

/**
 * Moves the complete folder `from` to `to`. A folder already at `to` (the same step written
 * again after a resume) is moved aside first and removed last, so at every moment one of the
 * two is complete under a name that is not temporary only once it is whole.
 */
async function replaceFolder(from: string, to: string): Promise<void> {
  const aside = `${path.join(path.dirname(to), '.old-')}${path.basename(to)}-${process.pid}`;
  let movedAside = false;
  try {
    await fs.rename(to, aside);
    movedAside = true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await fs.rename(from, to);
  if (movedAside) await fs.rm(aside, { recursive: true, force: true });
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Complete checkpoints in `dir`, oldest first; an absent folder has none. */
export async function listCheckpoints(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  return names
    .filter((n) => n.startsWith(PREFIX))
    .sort()
    .map((n) => path.join(dir, n));
}

/** The newest complete checkpoint in `dir`, or undefined when there is none. */
export async function latestCheckpoint(dir: string): Promise<string | undefined> {
  return (await listCheckpoints(dir)).at(-1);
}

/** Checkpoints kept per run or checkpoint directory (the newest ones); older ones are removed. */
export const CHECKPOINTS_KEPT = 3;

/** Removes all but the newest `keep` checkpoints. */
export async function pruneCheckpoints(dir: string, keep = CHECKPOINTS_KEPT): Promise<void> {
  const all = await listCheckpoints(dir);
  for (const old of all.slice(0, Math.max(0, all.length - keep))) await fs.rm(old, { recursive: true, force: true });
}

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (error) {
    throw new CheckpointError('CHECKPOINT_UNREADABLE', `cannot read ${file}: ${(error as Error).message}`, { cause: error, file });
  }
}

/** Checks that every weight of `model` is in the checkpoint with the same shape, and nothing else. */
function checkSpecsFit(specs: WeightSpec[], model: TrainableModel, file: string): void {
  const expected = new Map(model.params.all().map(({ name, variable }) => [name, variable.shape]));
  const problems: string[] = [];
  for (const spec of specs) {
    const shape = expected.get(spec.name);
    if (!shape) problems.push(`unexpected weight ${spec.name}`);
    else if (shape.join('x') !== spec.shape.join('x')) problems.push(`${spec.name} is ${spec.shape.join('x')}, model needs ${shape.join('x')}`);
    expected.delete(spec.name);
  }
  for (const missing of expected.keys()) problems.push(`missing weight ${missing}`);
  if (problems.length > 0) {
    const shown = problems.slice(0, 3).join('; ') + (problems.length > 3 ? ` (+${problems.length - 3} more)` : '');
    throw new CheckpointError('CHECKPOINT_MISMATCH', `${file} does not fit the model: ${shown}`, { file });
  }
}

/** Loads a checkpoint's weights into `model` and returns its training state and config. */
export async function readCheckpoint<C>(checkpointPath: string, model: TrainableModel): Promise<SavedState<C>> {
  const modelFile = path.join(checkpointPath, MODEL_FILE);
  const manifest = (await readJson(modelFile)) as { weightsManifest?: { weights: WeightSpec[] }[] };
  const specs = manifest.weightsManifest?.flatMap((group) => group.weights) ?? [];
  checkSpecsFit(specs, model, modelFile);
  const saved = (await readJson(path.join(checkpointPath, STATE_FILE))) as SavedState<C>;
  const weightsFile = path.join(checkpointPath, WEIGHTS_FILE);
  const bytes = await readWeightBytes(weightsFile);
  const needed = specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1), 0) * 4;
  if (bytes.byteLength !== needed) {
    throw new CheckpointError('CHECKPOINT_TRUNCATED', `${weightsFile} holds ${bytes.byteLength} bytes, the manifest needs ${needed}`, { file: weightsFile });
  }
  if (saved.weightsSha256 !== undefined && sha256(bytes) !== saved.weightsSha256) {
    throw new CheckpointError('CHECKPOINT_CORRUPT', `${weightsFile} does not match the SHA-256 its checkpoint recorded`, { file: weightsFile });
  }
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const byName = new Map(model.params.all().map((entry) => [entry.name, entry]));
  assignValues(
    specs.map((spec) => byName.get(spec.name)!),
    values,
  );
  return saved;
}

async function readWeightBytes(file: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    throw new CheckpointError('CHECKPOINT_UNREADABLE', `cannot read ${file}: ${(error as Error).message}`, { cause: error, file });
  }
}

/** Damage a checkpoint can have that an older one may not: resume falls back past these. */
const DAMAGE_CODES: ReadonlySet<string> = new Set(['CHECKPOINT_UNREADABLE', 'CHECKPOINT_TRUNCATED', 'CHECKPOINT_CORRUPT']);

/**
 * Loads the newest intact checkpoint in `dir` into `model`: a damaged one (unreadable,
 * truncated, not matching its checksum) is reported through `warn` and the one before it is
 * tried. Every rank reads the same folders, so all ranks fall back alike. A checkpoint that
 * does not fit the model is not damage (every older one would not fit either): it throws, and
 * so does a folder whose every checkpoint is damaged (`CHECKPOINT_NONE_INTACT`, with the newest
 * one's error as its cause), rather than silently start over. Undefined when there is none.
 */
export async function restoreNewestCheckpoint<C>(
  dir: string,
  model: TrainableModel,
  warn: (error: CheckpointError, checkpointPath: string) => void,
): Promise<(SavedState<C> & { path: string }) | undefined> {
  const all = await listCheckpoints(dir);
  let newestDamage: CheckpointError | undefined;
  for (const checkpointPath of [...all].reverse()) {
    try {
      return { ...(await readCheckpoint<C>(checkpointPath, model)), path: checkpointPath };
    } catch (error) {
      if (!(error instanceof CheckpointError) || !DAMAGE_CODES.has(error.code)) throw error;
      warn(error, checkpointPath);
      newestDamage ??= error;
    }
  }
  if (newestDamage) {
    throw new CheckpointError('CHECKPOINT_NONE_INTACT', `every checkpoint in ${dir} is damaged (${all.length})`, { cause: newestDamage, file: dir });
  }
  return undefined;
}
