/**
 * One rank of a shared-memory group alone in a process: test/collective-shm.test.ts kills it to
 * see its peers notice, and bench/allreduce.ts times the transport with one per rank. Joins with
 * the options given as JSON in argv[2] and tells the parent 'joined'; then, per request
 * ({ seed, repeats }), reduces `capacity` values from that seed `repeats` times, each on a fresh
 * copy, and answers { timesMs } (one time per all-reduce).
 */
import { ShmAllReduce, type ShmAllReduceOptions } from '../../worker/collective/shm-allreduce.ts';
import { seededValues } from './seeded-values.ts';

/** Parent to child, after 'joined'. */
export interface ShmMemberRequest {
  seed: number;
  repeats: number;
}

const options = JSON.parse(process.argv[2]) as ShmAllReduceOptions;
const group = await ShmAllReduce.join(options);
process.send!('joined');
process.on('message', ({ seed, repeats }: ShmMemberRequest) => {
  void reduce(seed, repeats).then((timesMs) => process.send!({ timesMs }));
});
process.on('disconnect', () => void group.close().finally(() => process.exit(0)));

async function reduce(seed: number, repeats: number): Promise<number[]> {
  const original = seededValues(options.capacity, seed);
  const data = new Float32Array(original.length);
  const timesMs: number[] = [];
  for (let i = 0; i < repeats; i += 1) {
    data.set(original);
    const began = performance.now();
    await group.allReduceSum(data);
    timesMs.push(performance.now() - began);
  }
  return timesMs;
}
