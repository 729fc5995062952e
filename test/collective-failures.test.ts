/**
 * How the ring fails: wrong tokens are refused with UNAUTHENTICATED, chunks that do not fit are
 * refused with INVALID_ARGUMENT and fail the all-reduce on both ends, a neighbour that goes away
 * or never comes fails the others within the timeout, and calls that do not fit the member's
 * state say so. Every failure is a CollectiveError with a stable code.
 */
import test from 'ava';
import { startRing, TEST_TOKEN } from './helpers/ring.ts';
import { credentials, Metadata, Server, ServerCredentials, status, type ServiceError } from '@grpc/grpc-js';
import type { CollectiveClient } from '../proto/generated/fmnist/cluster/v1/Collective.ts';
import type { ExchangeChunk } from '../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import { CollectiveError, ConfigError } from '../shared/errors.ts';
import { loadClusterProto } from '../shared/grpc/cluster-proto.ts';
import { RingMember } from '../worker/collective/ring-allreduce.ts';

const TOKEN = TEST_TOKEN;

function client(address: string): CollectiveClient {
  const { Collective } = loadClusterProto().fmnist.cluster.v1;
  return new Collective(address, credentials.createInsecure());
}

function bearer(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

function ping(target: CollectiveClient, metadata: Metadata): Promise<{ error: ServiceError | null; rank?: number }> {
  return new Promise((resolve) => target.Ping({ from_rank: 0 }, metadata, (error, reply) => resolve({ error, rank: reply?.rank })));
}

/** Resolves with the final status of a client-streaming Exchange after writing `chunks`. */
function exchange(target: CollectiveClient, metadata: Metadata, chunks: ExchangeChunk[]): Promise<ServiceError | null> {
  return new Promise((resolve) => {
    const call = target.Exchange(metadata, (error) => resolve(error));
    for (const chunk of chunks) call.write(chunk);
    call.end();
  });
}

/** The rejection of `promise` as a CollectiveError (fails the test when it resolves). */
async function collectiveFailure(promise: Promise<unknown>): Promise<CollectiveError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CollectiveError) return error;
    throw error;
  }
  throw new Error('expected a CollectiveError, the call succeeded');
}

/**
 * A stand-in for rank 0 of a ring of two: answers Ping as rank 0 and accepts whatever is streamed
 * to it, so that the test can play rank 0's sending side itself.
 */
async function startFakeRankZero(): Promise<{ address: string; server: Server }> {
  const server = new Server();
  server.addService(loadClusterProto().fmnist.cluster.v1.Collective.service, {
    Ping: (_call: unknown, callback: (e: null, r: object) => void) => callback(null, { rank: 0, world_size: 2, unix_time_ms: '0' }),
    Exchange: (call: NodeJS.EventEmitter, callback: (e: null, r: object) => void) => {
      call.on('data', () => {});
      call.on('end', () => callback(null, { chunks_received: 0, bytes_received: '0' }));
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { address: `127.0.0.1:${port}`, server };
}

test('calls without the right token are refused with UNAUTHENTICATED', async (t) => {
  const member = await RingMember.start({ rank: 1, worldSize: 2, authToken: TOKEN });
  const target = client(member.address);
  try {
    t.is((await ping(target, bearer(undefined))).error?.code, status.UNAUTHENTICATED);
    t.is((await ping(target, bearer('not-the-token'))).error?.code, status.UNAUTHENTICATED);
    t.is((await ping(target, bearer(`${TOKEN}x`))).error?.code, status.UNAUTHENTICATED);
    t.deepEqual(await ping(target, bearer(TOKEN)), { error: null, rank: 1 });
    const refused = await exchange(target, bearer('not-the-token'), [{ run_id: 'r' }]);
    t.is(refused?.code, status.UNAUTHENTICATED);
  } finally {
    target.close();
    await member.close();
  }
});

test('members with different tokens cannot form a ring', async (t) => {
  const members = await Promise.all([0, 1].map((rank) => RingMember.start({ rank, worldSize: 2, authToken: `token-${rank}` })));
  try {
    const peers = members.map((member) => member.address);
    for (const member of members) {
      const error = await collectiveFailure(member.connect(peers));
      t.is(error.code, 'COLLECTIVE_UNAUTHENTICATED');
      t.is(member.state, 'listening');
    }
  } finally {
    await Promise.all(members.map((member) => member.close()));
  }
});

const LENGTH = 8;
const TAG = { runId: 'bad', generation: 5, step: 9 };
/** The first chunk rank 0 sends rank 1 in a ring of two: all of segment 0 (values 0..3), reduce-scatter. */
const GOOD_CHUNK: ExchangeChunk = {
  run_id: TAG.runId,
  generation: TAG.generation,
  step: TAG.step,
  sequence: 0,
  purpose: '',
  phase: 'PHASE_REDUCE_SCATTER',
  ring_step: 0,
  chunk_index: 0,
  offset: 0,
  total_elements: LENGTH,
  world_size: 2,
  sender_rank: 0,
  payload: Buffer.alloc(16),
};

const MALFORMED: Array<[string, ExchangeChunk[]]> = [
  ['a payload of the wrong size', [{ ...GOOD_CHUNK, payload: Buffer.alloc(12) }]],
  ['a payload that is not whole float32 values', [{ ...GOOD_CHUNK, payload: Buffer.alloc(15) }]],
  ['a wrong offset', [{ ...GOOD_CHUNK, offset: 1 }]],
  ['another step', [{ ...GOOD_CHUNK, step: TAG.step + 1 }]],
  ['an older generation', [{ ...GOOD_CHUNK, generation: TAG.generation - 1 }]],
  ['another run', [{ ...GOOD_CHUNK, run_id: 'other-run' }]],
  ['a ring step the ring does not have', [{ ...GOOD_CHUNK, ring_step: 1 }]],
  ['no phase', [{ ...GOOD_CHUNK, phase: 'PHASE_UNSPECIFIED' }]],
  ['a chunk index out of order', [{ ...GOOD_CHUNK, chunk_index: 1 }]],
  ['another vector length', [{ ...GOOD_CHUNK, total_elements: LENGTH + 1 }]],
  ['another ring size', [{ ...GOOD_CHUNK, world_size: 3 }]],
  ['a sender that is not the left neighbour', [{ ...GOOD_CHUNK, sender_rank: 1 }]],
  [
    'a good chunk, then an all-gather chunk at the wrong offset',
    [GOOD_CHUNK, { ...GOOD_CHUNK, phase: 'PHASE_ALL_GATHER', offset: 0, payload: Buffer.alloc(16) }],
  ],
  ['a stream that ends early', [GOOD_CHUNK]],
];

for (const [what, chunks] of MALFORMED) {
  test(`a chunk with ${what} is refused with INVALID_ARGUMENT and fails the all-reduce`, async (t) => {
    const fake = await startFakeRankZero();
    const member = await RingMember.start({ rank: 1, worldSize: 2, authToken: TOKEN, timeoutMs: 10_000 });
    const sender = client(member.address);
    try {
      await member.connect([fake.address, member.address]);
      const reduced = collectiveFailure(member.allReduceSum(new Float32Array(LENGTH), TAG));
      const refused = await exchange(sender, bearer(TOKEN), chunks);
      t.is(refused?.code, status.INVALID_ARGUMENT, refused?.details);
      const error = await reduced;
      t.is(error.code, 'COLLECTIVE_MALFORMED');
      t.is(error.peerRank, 0, 'the left neighbour is to blame');
      t.is(member.state, 'connected');
    } finally {
      sender.close();
      await member.close();
      fake.server.forceShutdown();
    }
  });
}

test('ranks that disagree on the step both fail with COLLECTIVE_MALFORMED', async (t) => {
  const members = await startRing(2, { timeoutMs: 10_000 });
  try {
    const failures = await Promise.all(
      members.map((member, rank) => collectiveFailure(member.allReduceSum(new Float32Array(100), { runId: 'r', generation: 0, step: rank }))),
    );
    t.deepEqual(
      failures.map((error) => error.code),
      ['COLLECTIVE_MALFORMED', 'COLLECTIVE_MALFORMED'],
    );
    t.deepEqual(
      failures.map((error) => error.peerRank),
      [1, 0],
      'each names its neighbour as out of step',
    );
  } finally {
    await Promise.all(members.map((member) => member.close()));
  }
});

test('ranks that disagree on the length or the generation fail on every rank', async (t) => {
  const members = await startRing(3, { timeoutMs: 10_000 });
  try {
    const lengths = await Promise.all(
      members.map((member, rank) => collectiveFailure(member.allReduceSum(new Float32Array(rank === 1 ? 101 : 100), { runId: 'r', generation: 0, step: 0 }))),
    );
    t.true(lengths.some((error) => error.code === 'COLLECTIVE_MALFORMED'));
    t.true(
      lengths.every((error) => ['COLLECTIVE_MALFORMED', 'COLLECTIVE_PEER_ABORTED', 'COLLECTIVE_PEER_LOST'].includes(error.code)),
      lengths.map((e) => e.code).join(),
    );
    const peers = members.map((member) => member.address);
    await Promise.all(members.map((member) => member.connect(peers)));
    const generations = await Promise.all(
      members.map((member, rank) => collectiveFailure(member.allReduceSum(new Float32Array(100), { runId: 'r', generation: rank === 2 ? 1 : 2, step: 0 }))),
    );
    t.true(generations.some((error) => error.code === 'COLLECTIVE_MALFORMED'));
    t.true(generations.every((error) => error instanceof CollectiveError));
  } finally {
    await Promise.all(members.map((member) => member.close()));
  }
});

test('a rank that closes during an all-reduce fails it on every rank', async (t) => {
  // A timeout far beyond the test's own (ava's 5 min): only seeing the closed rank can end it.
  const members = await startRing(3, { timeoutMs: 600_000 });
  try {
    const failures = members.map((member) => collectiveFailure(member.allReduceSum(new Float32Array(2_000_001), { runId: 'r', generation: 0, step: 0 })));
    await members[1].close();
    const errors = await Promise.all(failures);
    t.is(errors[1].code, 'COLLECTIVE_CLOSED');
    // Each survivor blames rank 1 or, when the other survivor gave up first, that one.
    for (const rank of [0, 2]) {
      t.true(['COLLECTIVE_PEER_LOST', 'COLLECTIVE_PEER_ABORTED'].includes(errors[rank].code), `rank ${rank}: ${errors[rank].code}`);
      t.true([1, 2 - rank].includes(errors[rank].peerRank!), `rank ${rank} blames rank ${errors[rank].peerRank}`);
    }
    t.true(
      [0, 2].some((rank) => errors[rank].peerRank === 1),
      'a survivor names the closed rank',
    );
  } finally {
    await Promise.all(members.map((member) => member.close()));
  }
});

test('a neighbour that never joins the all-reduce makes it time out', async (t) => {
  // Rank 0 times out after 700 ms; rank 1's timeout is far beyond the test's own, so its failure
  // below can only come from rank 0.
  const timeoutMs = 700;
  const members = await Promise.all([timeoutMs, 600_000].map((ms, rank) => RingMember.start({ rank, worldSize: 2, authToken: TOKEN, timeoutMs: ms })));
  try {
    const peers = members.map((member) => member.address);
    await Promise.all(members.map((member) => member.connect(peers)));
    const started = performance.now();
    const error = await collectiveFailure(members[0].allReduceSum(new Float32Array(1000), { runId: 'r', generation: 0, step: 0 }));
    const elapsed = performance.now() - started;
    t.is(error.code, 'COLLECTIVE_TIMEOUT');
    t.is(error.peerRank, undefined, 'a timeout blames no one peer');
    // Not before its time (a timer never fires early, so load cannot break this); however late
    // a loaded machine lets it fire, the code above says it was the timeout.
    t.true(elapsed >= timeoutMs - 1, `${elapsed} ms`);
    // The neighbour's later call for the same all-reduce fails at once, blaming rank 0: rank 0
    // refuses its stream (ABORTED), or the stream rank 0 had opened breaks off (LOST), whichever it
    // sees first; on a loaded machine the cancellation of that stream can reach rank 1 after the
    // grace it gives an early end, which it then judges as the stream ending short (MALFORMED).
    const late = await collectiveFailure(members[1].allReduceSum(new Float32Array(1000), { runId: 'r', generation: 0, step: 0 }));
    t.true(['COLLECTIVE_PEER_ABORTED', 'COLLECTIVE_PEER_LOST', 'COLLECTIVE_MALFORMED'].includes(late.code), late.code);
    t.is(late.peerRank, 0);
  } finally {
    await Promise.all(members.map((member) => member.close()));
  }
});

test('calls that do not fit the member state fail with their own codes', async (t) => {
  await t.throwsAsync(RingMember.start({ rank: 2, worldSize: 2 }), { instanceOf: ConfigError });
  await t.throwsAsync(RingMember.start({ rank: 0, worldSize: 2, chunkBytes: 4098 }), { instanceOf: ConfigError });
  const member = await RingMember.start({ rank: 0, worldSize: 2 });
  const data = new Float32Array(4);
  const tag = { runId: 'r', generation: 0, step: 0 };
  t.is((await collectiveFailure(member.allReduceSum(data, tag))).code, 'COLLECTIVE_NOT_CONNECTED');
  t.is((await collectiveFailure(member.connect([member.address]))).code, 'COLLECTIVE_BAD_ARGUMENT');
  const other = await RingMember.start({ rank: 1, worldSize: 2 });
  await Promise.all([member.connect([member.address, other.address]), other.connect([member.address, other.address])]);
  t.is((await collectiveFailure(member.allReduceSum(data, { ...tag, generation: -1 }))).code, 'COLLECTIVE_BAD_ARGUMENT');
  const running = member.allReduceSum(data, tag);
  t.is((await collectiveFailure(member.allReduceSum(new Float32Array(4), tag))).code, 'COLLECTIVE_BUSY');
  await Promise.all([running, other.allReduceSum(new Float32Array(4), tag)]);
  const closing = member.close();
  t.is(member.close(), closing);
  await closing;
  t.is(member.state, 'closed');
  t.is((await collectiveFailure(member.allReduceSum(data, tag))).code, 'COLLECTIVE_CLOSED');
  await other.close();
});
