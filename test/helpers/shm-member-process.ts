/**
 * One rank of a shared-memory group alone in a process (test/collective-shm.test.ts kills it to
 * see its peers notice): joins with the options given as JSON in argv[2], tells the parent
 * 'joined', then waits for all-reduce requests ({ seed }) and answers 'reduced'.
 */
import { ShmAllReduce, type ShmAllReduceOptions } from '../../worker/collective/shm-allreduce.ts';
import { seededValues } from './seeded-values.ts';

const options = JSON.parse(process.argv[2]!) as ShmAllReduceOptions;
const group = await ShmAllReduce.join(options);
process.send!('joined');
process.on('message', (message: { seed: number }) => {
  void group.allReduceSum(seededValues(options.length, message.seed)).then(() => process.send!('reduced'));
});
