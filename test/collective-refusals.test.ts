/**
 * A ring member tells its owner (RingOptions.onRefused, counted in
 * `fmnist_collective_refused_messages_total{reason}`) why it refused a neighbour's call or stream.
 */
import test from 'ava';
import { CollectiveError } from '../shared/errors.ts';
import type { RefusalReason } from '../worker/collective/refusal-reason.ts';
import { RingMember } from '../worker/collective/ring-allreduce.ts';
import { startRing } from './helpers/ring.ts';

test('a Ping with the wrong token is refused as unauthenticated', async (t) => {
  const refused: RefusalReason[][] = [[], []];
  const members = await Promise.all(
    [0, 1].map((rank) => RingMember.start({ rank, worldSize: 2, authToken: `token-${rank}`, onRefused: (reason) => refused[rank].push(reason) })),
  );
  t.teardown(() => Promise.all(members.map((member) => member.close())).then(() => undefined));
  const peers = members.map((member) => member.address);
  const results = await Promise.allSettled(members.map((member) => member.connect(peers)));
  t.true(
    results.every((result) => result.status === 'rejected' && result.reason instanceof CollectiveError && result.reason.code === 'COLLECTIVE_UNAUTHENTICATED'),
  );
  t.deepEqual(refused, [['unauthenticated'], ['unauthenticated']], "each member refused its left neighbour's Ping once");
});

test('chunks of another step are refused as malformed, and each rank counts its own refusal', async (t) => {
  const refused: RefusalReason[] = [];
  const members = await startRing(2, { timeoutMs: 10_000, onRefused: (reason) => refused.push(reason) });
  t.teardown(() => Promise.all(members.map((member) => member.close())).then(() => undefined));
  const results = await Promise.allSettled(
    members.map((member, rank) => member.allReduceSum(new Float32Array(100), { runId: 'r', generation: 0, step: rank })),
  );
  t.true(results.every((result) => result.status === 'rejected'));
  t.true(refused.length >= 1 && refused.length <= 2, refused.join());
  t.true(
    refused.every((reason) => reason === 'malformed_chunk'),
    refused.join(),
  );
});
