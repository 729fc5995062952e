import type * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import type { ParameterSet } from './parameter-set.ts';

/**
 * `train`: batch norm normalises with the batch's statistics and updates its running
 * statistics (PyTorch `model.train()`); `eval`: it uses the running statistics.
 */
export type ForwardMode = 'train' | 'eval';

/** The models the trainer knows: the seed's ResNet-18, and a tiny CNN without batch norm for tests. */
export const MODEL_KINDS = ['resnet18', 'tiny-cnn'] as const;
export type ModelKind = (typeof MODEL_KINDS)[number];

/** What the training loop, checkpoints and collectives need of a model. */
export interface TrainableModel {
  readonly kind: ModelKind;
  readonly params: ParameterSet;
  readonly classes: number;
  /**
   * Logits [n, classes] for NHWC images [n, h, w, 1]. In `train` mode batch norm running
   * statistics are updated as a side effect. `onStage` receives each stage's output.
   */
  forward(x: tf.Tensor4D, mode: ForwardMode, onStage?: (output: tf.Tensor) => void): tf.Tensor2D;
  /** The same network as a tfjs-layers model whose weight names equal `params`' names. */
  buildLayersMirror(imageSize: number): tfl.LayersModel;
  dispose(): void;
}
