import { sgdUpdate } from '../backend/sgd-update.ts';
import type { TrainableModel } from '../model/trainable-model.ts';

/**
 * Plain SGD (no momentum, no weight decay): p <- p - lr * g, with `gradients` flattened in the
 * canonical parameter order. Every worker applies the same update to the same weights, so
 * their replicas stay bit-identical.
 */
export function applySgd(model: TrainableModel, gradients: Float32Array, learningRate: number): void {
  if (gradients.length !== model.params.trainableCount) {
    throw new RangeError(`gradient buffer has ${gradients.length} values, the model ${model.params.trainableCount}`);
  }
  let offset = 0;
  for (const { variable } of model.params.trainable) {
    sgdUpdate(variable, gradients.subarray(offset, offset + variable.size), learningRate);
    offset += variable.size;
  }
}
