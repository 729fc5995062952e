/**
 * The hierarchical all-reduce across processes, as workers choose it (worker/collective-choice.ts):
 * two "hosts" on this machine by host id, shared memory within each, the gRPC ring among their
 * leaders. Every rank ends with the same bits: the exact sum of integers, and for floats the sum
 * in the placement's order (host, then leaders); `grpc` forces the flat ring. A rank killed
 * under it fails every other rank with a typed error naming whom to blame, instead of a hang.
 */
import test, { type ExecutionContext } from 'ava';
import type { CollectiveChoice } from '../worker/collective-choice.ts';
import { digestValues, testValues } from './helpers/ring-member-process.ts';
import { RingProcessHandle } from './helpers/ring-process-handle.ts';
import { hierarchicalOrderSum, ringOrderSum, TEST_TOKEN } from './helpers/ring.ts';

/** Odd, and several 16 KiB chunks per leader's segment. */
const LENGTH = 30_011;
/** Far longer than the test's other waits: a COLLECTIVE_TIMEOUT here would mean a failure went unnoticed. */
const TIMEOUT_MS = 600_000;

/** `worldSize` ranks in their own processes, servers started (not connected). */
async function startRanks(t: ExecutionContext, worldSize: number): Promise<{ ranks: RingProcessHandle[]; addresses: string[] }> {
  const ranks = Array.from({ length: worldSize }, () => RingProcessHandle.fork());
  t.teardown(() => Promise.all(ranks.map((rank) => rank.stop())));
  const options = (rank: number) => ({ rank, worldSize, authToken: TEST_TOKEN, chunkBytes: 16 << 10, timeoutMs: TIMEOUT_MS });
  const started = await Promise.all(ranks.map((p, rank) => p.request({ type: 'start', options: options(rank) }, 'started')));
  return { ranks, addresses: started.map((s) => s.address) };
}

let scopes = 0;
/** Chooses on every rank for `hosts` (a fresh segment scope each time); the log lines. */
async function choose(ranks: RingProcessHandle[], addresses: string[], hosts: string[], transport: CollectiveChoice['transport'] = 'auto'): Promise<string[]> {
  scopes += 1;
  const choice = { transport, hosts, addresses, scope: `test/${process.pid}/${scopes}`, weights: LENGTH, timeoutMs: TIMEOUT_MS };
  const chosen = await Promise.all(ranks.map((p) => p.request({ type: 'choose', choice }, 'chosen')));
  return chosen.map((c) => c.line);
}

/** One all-reduce on every rank; each rank's result. */
async function allReduce(ranks: RingProcessHandle[], step: number, integers: boolean): Promise<Float32Array[]> {
  const tag = { runId: 'hierarchical', generation: 0, step };
  const replies = await Promise.all(
    ranks.map(async (p, rank) => {
      p.send({ type: 'all-reduce', length: LENGTH, seed: 100 * step + rank + 1, integers, tag, returnValues: true });
      await p.next(); // all-reduce-started
      return p.next();
    }),
  );
  return replies.map((reply) => {
    if (reply.type !== 'all-reduced') throw new Error(`all-reduce failed: ${JSON.stringify(reply)}`);
    const bytes = Buffer.from(reply.values!, 'base64');
    return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  });
}

/** The inputs `allReduce(ranks, step, integers)` gives its ranks. */
function inputsOf(worldSize: number, step: number, integers: boolean): Float32Array[] {
  return Array.from({ length: worldSize }, (_, rank) => testValues(LENGTH, 100 * step + rank + 1, integers));
}

function exactSum(inputs: Float32Array[]): Float32Array {
  return Float32Array.from(inputs[0], (_, i) => inputs.reduce((sum, values) => sum + values[i], 0));
}

test.serial('hosts A,A,B,B and A,A,A,B: the exact sum of integers and the placement-order sum of floats, the same bits on every rank', async (t) => {
  const { ranks, addresses } = await startRanks(t, 4);
  let step = 0;
  for (const hosts of [
    ['A', 'A', 'B', 'B'],
    ['A', 'A', 'A', 'B'],
  ]) {
    const lines = await choose(ranks, addresses, hosts);
    t.true(
      lines.every((line) => line.startsWith('hierarchical')),
      lines.join('\n'),
    );
    step += 1;
    const exact = digestValues(exactSum(inputsOf(4, step, true)));
    t.deepEqual((await allReduce(ranks, step, true)).map(digestValues), [exact, exact, exact, exact], `${hosts.join()} integers`);
    step += 1;
    const expected = digestValues(hierarchicalOrderSum(inputsOf(4, step, false), hosts));
    t.deepEqual((await allReduce(ranks, step, false)).map(digestValues), [expected, expected, expected, expected], `${hosts.join()} floats`);
  }
  // The flag: the flat ring over the same placement, its own order of additions.
  const lines = await choose(ranks, addresses, ['A', 'A', 'B', 'B'], 'grpc');
  t.true(lines.every((line) => line.startsWith('gRPC ring')));
  step += 1;
  const flat = digestValues(ringOrderSum(inputsOf(4, step, false)));
  t.deepEqual((await allReduce(ranks, step, false)).map(digestValues), [flat, flat, flat, flat], 'grpc forced');
});

/**
 * Kills rank `victim` after one all-reduce under `hosts` (the others' segments and rings stay
 * as they were), then starts another on the others; their errors by rank (the victim's undefined).
 */
async function killBeforeAllReduce(t: ExecutionContext, hosts: string[], victim: number) {
  const { ranks, addresses } = await startRanks(t, hosts.length);
  await choose(ranks, addresses, hosts);
  await allReduce(ranks, 1, true);
  ranks[victim].child.kill('SIGKILL');
  await ranks[victim].exited();
  const tag = { runId: 'hierarchical', generation: 0, step: 2 };
  return Promise.all(
    ranks.map(async (p, rank) => {
      if (rank === victim) return undefined;
      p.send({ type: 'all-reduce', length: LENGTH, seed: rank + 1, tag });
      await p.next(); // all-reduce-started
      const reply = await p.next();
      if (reply.type !== 'failed') throw new Error(`rank ${rank} did not fail: ${reply.type}`);
      return { code: reply.error.code, peerRank: reply.error.peerRank };
    }),
  );
}

test.serial('a killed rank that does not lead: its leader sees it lost, and the other host that leader lost', async (t) => {
  // Hosts A,A,B; rank 1 dies. Its leader (0) sees it gone and closes its side of the leaders'
  // ring on giving up, so rank 2, alone on B, loses rank 0.
  const errors = await killBeforeAllReduce(t, ['A', 'A', 'B'], 1);
  t.deepEqual(errors, [{ code: 'COLLECTIVE_PEER_LOST', peerRank: 1 }, undefined, { code: 'COLLECTIVE_PEER_LOST', peerRank: 0 }]);
});

test.serial('a killed leader: the other leader loses it in their ring, then aborts its own host', async (t) => {
  // Hosts A,A,B; rank 2 (B's leader, alone there) dies. Rank 0 loses it in the leaders' ring
  // and gives up the all-reduce for rank 1, which names rank 0.
  const errors = await killBeforeAllReduce(t, ['A', 'A', 'B'], 2);
  t.deepEqual(errors, [{ code: 'COLLECTIVE_PEER_LOST', peerRank: 2 }, { code: 'COLLECTIVE_PEER_ABORTED', peerRank: 0 }, undefined]);
});
