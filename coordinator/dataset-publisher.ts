import { loadFashionMnist } from '../shared/data/fashion-mnist.ts';
import type { DatasetVersions } from '../shared/run/train-job.ts';
import type { ShardStore } from '../shared/shards/shard-store.ts';

/**
 * Loads Fashion-MNIST from disk (validated) and stores its training and test sets as shards in
 * Redis, once per dataset version; later calls for the same version store nothing.
 * `onStored` is told the bytes each store wrote (for the shard bytes metric).
 */
export async function publishDataset(shards: ShardStore, onStored: (bytes: number) => void = () => {}): Promise<DatasetVersions> {
  const dataset = await loadFashionMnist();
  const versions = { train: `${dataset.version}-train`, test: `${dataset.version}-test` };
  onStored((await shards.store(versions.train, dataset.train)).bytes);
  onStored((await shards.store(versions.test, dataset.test)).bytes);
  return versions;
}
