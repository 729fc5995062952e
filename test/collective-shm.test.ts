/**
 * The shared-memory all-reduce (worker/collective/shm-allreduce.ts): the ranks of one host sum
 * to the gRPC ring's bits, the segment's name is gone once every rank has mapped it (or the
 * join failed), and a rank whose process dies fails its peers' all-reduce instead of hanging it.
 */
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { CollectiveError } from '../shared/errors.ts';
import { ShmAllReduce } from '../worker/collective/shm-allreduce.ts';
import { ringOrderSum, startRing } from './helpers/ring.ts';
import { seededValues } from './helpers/seeded-values.ts';

let groups = 0;
/** A name no other test (or run) uses. */
function uniqueName(): string {
  groups += 1;
  return `/fmnist-test-${process.pid}-${groups}-${Math.random().toString(36).slice(2, 8)}`;
}

async function joinAll(worldSize: number, capacity: number, name = uniqueName()): Promise<ShmAllReduce[]> {
  return Promise.all(Array.from({ length: worldSize }, (_, rank) => ShmAllReduce.join({ name, rank, worldSize, capacity, timeoutMs: 60_000 })));
}

function bits(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

for (const worldSize of [2, 3, 4]) {
  test(`${worldSize} ranks on shared memory sum odd lengths to the ring-order sum, bit-identical on every rank`, async (t) => {
    // One group, calls of different lengths up to its capacity, as a training step makes.
    const groupsOfRanks = await joinAll(worldSize, 65_537);
    for (const length of [1, worldSize - 1 || 1, 5, 1001, 65_537]) {
      const inputs = groupsOfRanks.map((_, rank) => seededValues(length, rank + 1, 1e3));
      const data = inputs.map((values) => values.slice());
      await Promise.all(groupsOfRanks.map((group, rank) => group.allReduceSum(data[rank])));
      const expected = bits(ringOrderSum(inputs));
      for (const result of data) t.deepEqual(bits(result), expected, `length ${length}`);
    }
    await Promise.all(groupsOfRanks.map((group) => group.close()));
    const error = await t.throwsAsync(ShmAllReduce.join({ name: uniqueName(), rank: 0, worldSize, capacity: 0 }), { instanceOf: CollectiveError });
    t.is(error?.code, 'COLLECTIVE_BAD_ARGUMENT');
  });
}

test('shared memory and the gRPC ring give the same bits, call after call', async (t) => {
  const length = 10_007;
  const shm = await joinAll(3, length);
  const ring = await startRing(3);
  t.teardown(async () => {
    await Promise.all([...shm, ...ring].map((member) => member.close()));
  });
  for (let step = 0; step < 3; step += 1) {
    const inputs = [0, 1, 2].map((rank) => seededValues(length, 10 * step + rank + 1, 50));
    const viaShm = inputs.map((values) => values.slice());
    const viaRing = inputs.map((values) => values.slice());
    await Promise.all(shm.map((group, rank) => group.allReduceSum(viaShm[rank])));
    await Promise.all(ring.map((member, rank) => member.allReduceSum(viaRing[rank], { runId: 'shm-vs-ring', generation: 0, step })));
    for (let rank = 0; rank < 3; rank += 1) t.deepEqual(bits(viaShm[rank]), bits(viaRing[0]), `step ${step} rank ${rank}`);
  }
});

test('the segment is unlinked once every rank has mapped it, and after a join that failed', async (t) => {
  const name = uniqueName();
  const pair = await joinAll(2, 16, name);
  t.false(existsSync(`/dev/shm${name}`), 'unlinked after the join');
  await Promise.all(pair.map((group) => group.close()));
  const lonely = uniqueName();
  const error = await t.throwsAsync(ShmAllReduce.join({ name: lonely, rank: 0, worldSize: 2, capacity: 16, timeoutMs: 200 }), { instanceOf: CollectiveError });
  t.is(error?.code, 'COLLECTIVE_TIMEOUT');
  t.false(existsSync(`/dev/shm${lonely}`), 'unlinked after the failed join');
});

test('a rank whose process is killed fails its peer with COLLECTIVE_PEER_LOST instead of a hang', async (t) => {
  const name = uniqueName();
  const length = 1000;
  const child = fork(
    fileURLToPath(new URL('./helpers/shm-member-process.ts', import.meta.url)),
    [JSON.stringify({ name, rank: 1, worldSize: 2, capacity: length })],
    {
      execArgv: ['--import', 'tsx'],
    },
  );
  t.teardown(() => child.kill('SIGKILL'));
  const joinedChild = new Promise((resolve) => child.once('message', resolve));
  // The timeout is far longer than the test's other waits: a COLLECTIVE_TIMEOUT here would
  // mean the death went unnoticed.
  const group = await ShmAllReduce.join({ name, rank: 0, worldSize: 2, capacity: length, timeoutMs: 600_000 });
  await joinedChild;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  const error = await t.throwsAsync(group.allReduceSum(new Float32Array(length)), { instanceOf: CollectiveError });
  t.is(error?.code, 'COLLECTIVE_PEER_LOST');
  t.is(group.state, 'failed');
  await group.close();
});
