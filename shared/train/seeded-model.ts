import { deriveSeed, Prng, SeedStream } from '../data/prng.ts';
import { ResNet18 } from '../model/resnet18.ts';

/** The run's initial model: every process with the same seed builds bit-identical weights. */
export function createSeededResNet18(seed: number): ResNet18 {
  return ResNet18.create(new Prng(deriveSeed(seed, SeedStream.weightInit)));
}
