import { deriveSeed, Prng, SeedStream } from '../data/prng.ts';
import { ResNet18 } from '../model/resnet18.ts';
import { TinyCnn } from '../model/tiny-cnn.ts';
import type { ModelKind, TrainableModel } from '../model/trainable-model.ts';

/** The run's initial model: every process with the same seed builds bit-identical weights. */
export function createSeededModel(kind: ModelKind, seed: number): TrainableModel {
  const rng = new Prng(deriveSeed(seed, SeedStream.weightInit));
  return kind === 'tiny-cnn' ? TinyCnn.create(rng) : ResNet18.create(rng);
}
