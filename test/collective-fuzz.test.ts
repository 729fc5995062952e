/**
 * Property-based fuzzing (fast-check) of every field of the Exchange messages a peer with the
 * token can send to a ring member (run, generation, step, sequence, purpose, phase, ring step,
 * chunk index, offset, sizes, sender, payload and alignment bytes), and of raw message bytes:
 * every stream gets a gRPC status back, the member never crashes, and a real 2-rank ring that
 * runs all the while never returns a wrong sum: each of its all-reduces is exact or fails with a
 * CollectiveError (a stream out of step fails the one running), and after the storm it sums
 * exactly again.
 */
import test from 'ava';
import fc from 'fast-check';
import { makeGenericClientConstructor, Metadata, credentials, status, type ServiceError } from '@grpc/grpc-js';
import type { ExchangeChunk } from '../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import { CollectiveError } from '../shared/errors.ts';
import { messageLimit } from '../worker/collective/grpc-tuning.ts';
import type { RingMember } from '../worker/collective/ring-allreduce.ts';
import { bearer, exchangeStatus, rawClient } from './helpers/hostile-client.ts';
import { ringOrderSum, startRing, TEST_TOKEN } from './helpers/ring.ts';
import { seededValues } from './helpers/seeded-values.ts';

const CHUNK_BYTES = 4096;
const LENGTH = 3001;
const RUN = 'fuzz-ring';
const MAX_HELD_BYTES = 4 * messageLimit(CHUNK_BYTES);

/** The statuses a member may answer a hostile stream with (never OK, never INTERNAL or UNKNOWN). */
const REFUSED = new Set<status>([
  status.INVALID_ARGUMENT,
  status.ABORTED,
  status.RESOURCE_EXHAUSTED,
  status.DEADLINE_EXCEEDED,
  status.UNAVAILABLE,
  status.CANCELLED,
]);

/** A uint32 field: often the ring's own value or one next to it (to reach deep checks), else any. */
function near(real: number): fc.Arbitrary<number> {
  return fc.oneof(fc.constantFrom(real, real + 1, Math.max(0, real - 1)), fc.nat(8), fc.integer({ min: 0, max: 0xffff_ffff }));
}

const chunkArbitrary: fc.Arbitrary<ExchangeChunk> = fc.record({
  run_id: fc.oneof(fc.constant(RUN), fc.string({ maxLength: 40 })),
  generation: near(0),
  step: near(1),
  sequence: near(1),
  purpose: fc.oneof(fc.constant(''), fc.string({ maxLength: 40 })),
  phase: fc.oneof(fc.constantFrom('PHASE_UNSPECIFIED' as const, 'PHASE_REDUCE_SCATTER' as const, 'PHASE_ALL_GATHER' as const)),
  ring_step: near(0),
  chunk_index: near(0),
  offset: near(0),
  total_elements: near(LENGTH),
  world_size: near(2),
  sender_rank: near(0),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 64 }),
    fc.constantFrom(4, 1500 * 4, CHUNK_BYTES, CHUNK_BYTES + 1, messageLimit(CHUNK_BYTES) + 1).map((n) => new Uint8Array(n)),
  ),
  alignment: fc.uint8Array({ maxLength: 8 }),
});

/**
 * Runs all-reduces on `members` until `stop()`: returns how many were exact and how many failed
 * (each failure a CollectiveError, after which the ring is formed again); throws on a wrong sum.
 */
async function ringUnderFire(members: RingMember[], peers: string[], stop: () => boolean): Promise<{ exact: number; failed: number }> {
  let exact = 0;
  let failed = 0;
  for (let round = 1; !stop(); round += 1) {
    const inputs = members.map((_, rank) => seededValues(LENGTH, round * 10 + rank));
    const buffers = inputs.map((values) => values.slice());
    const results = await Promise.allSettled(members.map((member, rank) => member.allReduceSum(buffers[rank], { runId: RUN, generation: 0, step: 1 })));
    if (results.every((result) => result.status === 'fulfilled')) {
      const expected = ringOrderSum(inputs);
      if (!buffers.every((buffer) => buffer.every((value, i) => Object.is(value, expected[i])))) throw new Error(`round ${round}: a wrong sum`);
      exact += 1;
      continue;
    }
    for (const result of results) if (result.status === 'rejected' && !(result.reason instanceof CollectiveError)) throw result.reason;
    failed += 1;
    await Promise.all(members.map((member) => member.connect(peers)));
  }
  return { exact, failed };
}

test('fuzzed Exchange fields always get a gRPC status, and the ring beside them never sums wrong', async (t) => {
  const members = await startRing(2, { chunkBytes: CHUNK_BYTES, timeoutMs: 5000, limits: { maxHeldBytes: MAX_HELD_BYTES, firstChunkTimeoutMs: 1000 } });
  t.teardown(() => Promise.all(members.map((member) => member.close())).then(() => undefined));
  const peers = members.map((member) => member.address);
  const client = rawClient(members[1].address);
  t.teardown(() => client.close());
  let done = false;
  const ringRun = ringUnderFire(members, peers, () => done);
  const codes: status[] = [];
  try {
    await fc.assert(
      fc.asyncProperty(fc.array(chunkArbitrary, { minLength: 0, maxLength: 3 }), fc.boolean(), async (chunks, end) => {
        const code = await exchangeStatus(client, bearer(TEST_TOKEN), chunks, { end, deadlineMs: 1500 });
        codes.push(code);
        return REFUSED.has(code);
      }),
      { numRuns: 50, seed: 12 },
    );
  } finally {
    done = true;
  }
  const { exact, failed } = await ringRun;
  t.log(
    `${codes.length} fuzzed streams; ring rounds under fire: ${exact} exact, ${failed} failed and re-formed; held at most ${members[1].held.peakBytes} bytes`,
  );
  t.true(members[1].held.peakBytes <= MAX_HELD_BYTES);
  await Promise.all(members.map((member) => member.connect(peers)));
  const inputs = members.map((_, rank) => seededValues(LENGTH, rank + 1000));
  const buffers = inputs.map((values) => values.slice());
  await Promise.all(members.map((member, rank) => member.allReduceSum(buffers[rank], { runId: RUN, generation: 0, step: 1 })));
  for (const buffer of buffers) t.deepEqual(buffer, ringOrderSum(inputs));
});

test('random bytes as whole messages get a gRPC status and leave the member serving', async (t) => {
  const members = await startRing(2, { chunkBytes: CHUNK_BYTES });
  t.teardown(() => Promise.all(members.map((member) => member.close())).then(() => undefined));
  const identity = (bytes: Buffer) => bytes;
  const Raw = makeGenericClientConstructor(
    {
      Exchange: {
        path: '/fmnist.cluster.v1.Collective/Exchange',
        requestStream: true,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    'Raw',
  );
  const raw = new Raw(members[1].address, credentials.createInsecure());
  t.teardown(() => raw.close());
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${TEST_TOKEN}`);
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 256 }), { minLength: 1, maxLength: 3 }), async (messages) => {
      const code = await new Promise<status>((resolve) => {
        const call = (
          raw as unknown as { Exchange: (m: Metadata, o: object, cb: (e: ServiceError | null) => void) => import('node:stream').Writable }
        ).Exchange(metadata, { deadline: Date.now() + 3000 }, (error) => resolve(error === null ? status.OK : error.code));
        call.on('error', () => {});
        for (const message of messages) call.write(Buffer.from(message));
        call.end();
      });
      return code !== status.OK && code !== status.UNKNOWN;
    }),
    { numRuns: 60, seed: 34 },
  );
  const inputs = members.map((_, rank) => seededValues(LENGTH, rank + 7));
  const buffers = inputs.map((values) => values.slice());
  await Promise.all(members.map((member, rank) => member.allReduceSum(buffers[rank], { runId: RUN, generation: 0, step: 1 })));
  for (const buffer of buffers) t.deepEqual(buffer, ringOrderSum(inputs));
});
