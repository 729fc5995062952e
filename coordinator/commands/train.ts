import { selectBackend } from '../../shared/backend/select-backend.ts';
import { compileComputeOptions } from '../../shared/config/compute-options.ts';
import { compileTrainingOptions, type CompiledTrainingOptions } from '../../shared/config/training-options.ts';
import { limitImageSet, loadFashionMnist } from '../../shared/data/fashion-mnist.ts';
import { installShutdownSignal } from '../../shared/process/shutdown-signal.ts';
import { pruneCheckpoints, restoreNewestCheckpoint, writeCheckpoint } from '../../shared/train/checkpoint-store.ts';
import { SoloCollective } from '../../shared/train/collective.ts';
import { createSeededModel } from '../../shared/train/seeded-model.ts';
import { TrainingLoop, type TrainingData } from '../../shared/train/training-loop.ts';
import { initialTrainingState, type TrainingState } from '../../shared/train/training-state.ts';
import { CheckpointError, ConfigError } from '../../shared/errors.ts';
import { computeOptionsFromFlags, parseFlags, stringFlag, TRAINING_FLAGS, trainingOptionsFromFlags } from '../cli-flags.ts';
import { epochJson, formatEpochLine } from '../epoch-line.ts';
import { ProgressBar } from '../progress-bar.ts';
import type { TrainableModel } from '../../shared/model/trainable-model.ts';

/** Training images and test images after --limit-train / --limit-test. */
export async function loadTrainingData(options: CompiledTrainingOptions): Promise<TrainingData> {
  const dataset = await loadFashionMnist();
  return {
    train: options.limitTrain ? limitImageSet(dataset.train, options.limitTrain) : dataset.train,
    test: options.limitTest ? limitImageSet(dataset.test, options.limitTest) : dataset.test,
  };
}

async function resumeState(model: TrainableModel, checkpointDir: string | undefined, resume: boolean): Promise<TrainingState> {
  if (!resume) return initialTrainingState();
  if (!checkpointDir) throw new CheckpointError('CHECKPOINT_NO_DIR', '--resume needs --checkpoint-dir');
  const warn = (error: CheckpointError, damaged: string) =>
    process.stderr.write(`warning: skipping damaged checkpoint ${damaged} (${error.code}: ${error.message})\n`);
  const restored = await restoreNewestCheckpoint(checkpointDir, model, warn);
  if (!restored) throw new CheckpointError('CHECKPOINT_NONE', `no checkpoint in ${checkpointDir} to resume from`);
  process.stderr.write(`resuming from ${restored.path}\n`);
  return restored.state;
}

/** `coordinator train`: the seed's program in one process. Resolves to the exit code. */
export async function trainCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('train', argv, { ...TRAINING_FLAGS, 'checkpoint-dir': { type: 'string' }, resume: { type: 'boolean' } });
  // In launch's order, so that a command line with two bad values gets the same error from both.
  const compute = compileComputeOptions(computeOptionsFromFlags(values));
  const options = compileTrainingOptions(trainingOptionsFromFlags(values));
  // One process sends nothing: compression would not change a bit, so asking for it is a mistake.
  if (options.gradCompression !== 'none') {
    throw new ConfigError(`train: --grad-compression ${options.gradCompression} needs a cluster of workers (launch); one process sends no gradients`, {
      option: 'grad-compression',
    });
  }
  const json = values.json === true;
  const checkpointDir = stringFlag(values, 'checkpoint-dir');
  const backend = await selectBackend(compute.backend, { threads: compute.threads });
  process.stderr.write(`backend: ${backend.name}\n`);
  const data = await loadTrainingData(options);
  const model = createSeededModel(options.model, options.seed);
  const state = await resumeState(model, checkpointDir, values.resume === true);
  const shutdown = installShutdownSignal({ log: (line) => process.stderr.write(`\n${line}\n`) });
  const bar = new ProgressBar();
  const loop = new TrainingLoop(model, data, options, new SoloCollective(), {
    stopRequested: () => shutdown.requested,
    onStep: (report) => {
      const done = (report.epoch - 1) * report.stepsPerEpoch + report.step;
      const label = `epoch ${report.epoch}/${options.epochs} step ${report.step}/${report.stepsPerEpoch} loss ${report.loss.toFixed(3)} ${report.examplesPerSec.toFixed(1)} ex/s`;
      bar.update(done, options.epochs * report.stepsPerEpoch, label);
    },
    onEpoch: (record) => {
      bar.clear();
      process.stdout.write(`${json ? epochJson(record, backend.name) : formatEpochLine(record, options.epochs, backend.name)}\n`);
    },
    saveCheckpoint: checkpointDir
      ? async (saved) => {
          await writeCheckpoint(checkpointDir, model, options.resize, saved, options);
          await pruneCheckpoints(checkpointDir);
        }
      : undefined,
  });
  const outcome = await loop.run(state);
  shutdown.dispose();
  model.dispose();
  if (outcome.kind === 'stopped') {
    process.stderr.write(`stopped after step ${outcome.state.globalStep}${checkpointDir ? `; resume with --resume --checkpoint-dir ${checkpointDir}` : ''}\n`);
    return 130;
  }
  return 0;
}
