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
  await fs.mkdir(dir, { recursive: true });
  const finalPath = path.join(dir, checkpointName(state.globalStep));
  const tmpPath = path.join(dir, `.tmp-${checkpointName(state.globalStep)}-${process.pid}-${Date.now()}`);
  await fs.mkdir(tmpPath);
  const { specs, bytes } = serializeWeights(model);
  const modelJson = {
    format: 'layers-model',
    generatedBy: `TensorFlow.js tfjs-layers v${tf.version_core}`,
    convertedBy: null,
    modelTopology: modelTopology(model, imageSize),
    weightsManifest: [{ paths: [WEIGHTS_FILE], weights: specs }],
  };
  const saved: SavedState<C> = { state, config, imageSize };
  await writeFileSynced(path.join(tmpPath, WEIGHTS_FILE), bytes);
  await writeFileSynced(path.join(tmpPath, MODEL_FILE), JSON.stringify(modelJson));
  await writeFileSynced(path.join(tmpPath, STATE_FILE), JSON.stringify(saved, null, 2));
  await fs.rm(finalPath, { recursive: true, force: true });
  await fs.rename(tmpPath, finalPath);
  return finalPath;
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
  const weightsFile = path.join(checkpointPath, WEIGHTS_FILE);
  const bytes = await fs.readFile(weightsFile);
  const needed = specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1), 0) * 4;
  if (bytes.byteLength !== needed) {
    throw new CheckpointError('CHECKPOINT_TRUNCATED', `${weightsFile} holds ${bytes.byteLength} bytes, the manifest needs ${needed}`, { file: weightsFile });
  }
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const byName = new Map(model.params.all().map((entry) => [entry.name, entry]));
  assignValues(
    specs.map((spec) => byName.get(spec.name)!),
    values,
  );
  return (await readJson(path.join(checkpointPath, STATE_FILE))) as SavedState<C>;
}
