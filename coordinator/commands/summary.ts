import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { resnet18Architecture } from '../../shared/model/resnet18-architecture.ts';
import { createSeededModel } from '../../shared/train/seeded-model.ts';
import { numberFlag, parseFlags } from '../cli-flags.ts';

export interface ModelSummary {
  input: number[];
  stages: number[][];
  trainableParams: number;
}

/** Runs one image through a fresh model on the cpu backend and records the stage outputs. */
export async function summarizeModel(size: number): Promise<ModelSummary> {
  await tf.setBackend('cpu');
  const model = createSeededModel('resnet18', 0);
  const input: [number, number, number, number] = [1, size, size, resnet18Architecture().inputChannels];
  const stages: number[][] = [];
  tf.tidy(() => void model.forward(tf.zeros(input) as tf.Tensor4D, 'eval', (output) => stages.push(output.shape)));
  const summary = { input, stages, trainableParams: model.params.trainableCount };
  model.dispose();
  return summary;
}

const STAGE_NAMES = ['stage 1 (stem)', 'stage 2', 'stage 3', 'stage 4', 'stage 5', 'global average pool', 'dense'];

export async function summaryCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags('summary', argv, { size: { type: 'string' } });
  const summary = await summarizeModel(numberFlag(values, 'size') ?? 224);
  if (values.json === true) {
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  }
  const lines = [`input ${summary.input.join('x')}`];
  summary.stages.forEach((shape, i) => lines.push(`${(STAGE_NAMES[i] ?? `output ${i}`).padEnd(20)} ${shape.join('x')}`));
  lines.push(`trainable parameters: ${summary.trainableParams.toLocaleString('en-US')}`);
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
