/**
 * chooseCollective: the ranks of one host id sum through shared memory, ranks on several hosts
 * or a forced `grpc` through the ring, and either way to the ring's bits.
 */
import test from 'ava';
import type { RingMember } from '../worker/collective/ring-allreduce.ts';
import { chooseCollective, type CollectiveChoice } from '../worker/collective-choice.ts';
import { ringOrderSum, startRing } from './helpers/ring.ts';
import { seededValues } from './helpers/seeded-values.ts';

const LENGTH = 4099;

/** Chooses on every rank of `ring` with `hosts`, sums seeded values, returns the line and results. */
async function sumWith(t: import('ava').ExecutionContext, ring: RingMember[], hosts: string[], transport: CollectiveChoice['transport'], step: number) {
  const scope = `test/${process.pid}/${Math.random()}`;
  const chosen = await Promise.all(ring.map((member, rank) => chooseCollective(member, { transport, hosts, rank, scope, weights: LENGTH, timeoutMs: 60_000 })));
  t.teardown(() => Promise.all(chosen.map((c) => c.close())));
  const inputs = ring.map((_, rank) => seededValues(LENGTH, rank + 7 * step + 1, 10));
  const data = inputs.map((values) => values.slice());
  await Promise.all(chosen.map((c, rank) => c.sum.allReduceSum(data[rank], { runId: 'choice', generation: 0, step })));
  const expected = new Uint32Array(ringOrderSum(inputs).buffer);
  for (const result of data) t.deepEqual(new Uint32Array(result.buffer), expected);
  return { lines: chosen.map((c) => c.line), usedRing: chosen.map((c, rank) => c.sum === ring[rank]) };
}

test('one host id: shared memory; several, or grpc forced: the ring; the same bits every way', async (t) => {
  const ring = await startRing(3);
  t.teardown(() => Promise.all(ring.map((member) => member.close())));
  const sameHost = await sumWith(t, ring, ['a', 'a', 'a'], 'auto', 0);
  t.deepEqual(sameHost.usedRing, [false, false, false]);
  t.true(sameHost.lines[0].startsWith('shared memory'));
  const twoHosts = await sumWith(t, ring, ['a', 'a', 'b'], 'auto', 1);
  t.deepEqual(twoHosts.usedRing, [true, true, true]);
  const forced = await sumWith(t, ring, ['a', 'a', 'a'], 'grpc', 2);
  t.deepEqual(forced.usedRing, [true, true, true]);
});
