/**
 * chooseCollective: the ranks of one host id sum through shared memory, ranks on several hosts
 * with more than one on some host through the hierarchical all-reduce, one rank per host or a
 * forced `grpc` through the flat ring; each to the bits its order of additions gives.
 */
import test from 'ava';
import { hostPlacement } from '../worker/collective/host-placement.ts';
import type { RingMember } from '../worker/collective/ring-allreduce.ts';
import { chooseCollective, type CollectiveChoice } from '../worker/collective-choice.ts';
import { HierarchicalAllReduce } from '../worker/collective/hierarchical-allreduce.ts';
import { hierarchicalOrderSum, ringOrderSum, startRing } from './helpers/ring.ts';
import { seededValues } from './helpers/seeded-values.ts';

const LENGTH = 4099;

/** Chooses on every rank of `ring` with `hosts`, sums seeded values, returns the lines, the sums and the results' bits. */
async function sumWith(t: import('ava').ExecutionContext, ring: RingMember[], hosts: string[], transport: CollectiveChoice['transport'], step: number) {
  const scope = `test/${process.pid}/${Math.random()}`;
  const addresses = ring.map((member) => member.address);
  const chosen = await Promise.all(
    ring.map((member, rank) => chooseCollective(member, { transport, hosts, addresses, rank, scope, weights: LENGTH, timeoutMs: 60_000 })),
  );
  t.teardown(() => Promise.all(chosen.map((c) => c.close())));
  const inputs = ring.map((_, rank) => seededValues(LENGTH, rank + 7 * step + 1, 10));
  const data = inputs.map((values) => values.slice());
  await Promise.all(chosen.map((c, rank) => c.sum.allReduceSum(data[rank], { runId: 'choice', generation: 0, step })));
  return { lines: chosen.map((c) => c.line), sums: chosen.map((c) => c.sum), inputs, results: data.map((result) => new Uint32Array(result.buffer)) };
}

function bitsOf(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer);
}

test('placement: hosts grouped by id, ranks ascending, each host led by its lowest rank', (t) => {
  t.deepEqual(hostPlacement(['a', 'a', 'b', 'b'], 3), { hostCount: 2, hostSizes: [2, 2], local: [2, 3], leaders: [0, 2] });
  t.deepEqual(hostPlacement(['a', 'a', 'a', 'b'], 1), { hostCount: 2, hostSizes: [3, 1], local: [0, 1, 2], leaders: [0, 3] });
  // Interleaved ids: a host's ranks need not be contiguous; hosts are ordered by their leader.
  t.deepEqual(hostPlacement(['b', 'a', 'b', 'c', 'a'], 4), { hostCount: 3, hostSizes: [2, 2, 1], local: [1, 4], leaders: [0, 1, 3] });
  t.deepEqual(hostPlacement(['x'], 0), { hostCount: 1, hostSizes: [1], local: [0], leaders: [0] });
});

test('one host id: shared memory; one rank per host, or grpc forced: the flat ring; to the ring-order sum', async (t) => {
  const ring = await startRing(3);
  t.teardown(() => Promise.all(ring.map((member) => member.close())));
  for (const [hosts, transport, kind] of [
    [['a', 'a', 'a'], 'auto', 'shared memory'],
    [['a', 'b', 'c'], 'auto', 'gRPC ring'],
    [['a', 'a', 'a'], 'grpc', 'gRPC ring'],
    [['a', 'a', 'b'], 'grpc', 'gRPC ring'],
  ] as const) {
    const chosen = await sumWith(t, ring, [...hosts], transport, 0);
    t.deepEqual(
      chosen.sums.map((sum, rank) => sum === ring[rank]),
      [kind !== 'shared memory', kind !== 'shared memory', kind !== 'shared memory'],
      `${hosts.join()} ${transport}`,
    );
    t.true(chosen.lines.every((line) => line.startsWith(kind)));
    const expected = bitsOf(ringOrderSum(chosen.inputs));
    for (const result of chosen.results) t.deepEqual(result, expected);
  }
});

test('ranks on several hosts, some sharing one: hierarchical, to the host-then-leaders sum on every rank', async (t) => {
  const ring = await startRing(5);
  t.teardown(() => Promise.all(ring.map((member) => member.close())));
  let step = 0;
  for (const hosts of [
    ['a', 'a', 'b', 'b', 'c'],
    ['a', 'b', 'a', 'b', 'a'],
    ['a', 'a', 'a', 'a', 'b'],
  ]) {
    step += 1;
    const chosen = await sumWith(t, ring, hosts, 'auto', step);
    t.true(chosen.sums.every((sum) => sum instanceof HierarchicalAllReduce));
    t.true(chosen.lines.every((line) => line.startsWith('hierarchical')));
    const expected = bitsOf(hierarchicalOrderSum(chosen.inputs, hosts));
    for (const result of chosen.results) t.deepEqual(result, expected, hosts.join());
  }
});
