/**
 * A ring member survives hostile peers, and what they can make it hold is bounded (RingLimits):
 * garbage on its port, a stream that never sends, more streams than a host may open, early
 * streams past the held caps, a flood of Pings, messages over the size limit. Each gets a gRPC
 * status (or a closed connection), refusals are counted by reason, and a real ring beside them
 * still sums exactly. Memory figures are logged; the bounds asserted are structural (held bytes
 * against the cap), never times.
 */
import test, { type ExecutionContext } from 'ava';
import http2 from 'node:http2';
import net from 'node:net';
import { status } from '@grpc/grpc-js';
import { ConfigError } from '../shared/errors.ts';
import { messageLimit } from '../worker/collective/grpc-tuning.ts';
import type { RefusalReason } from '../worker/collective/refusal-reason.ts';
import { RingMember, type RingOptions } from '../worker/collective/ring-allreduce.ts';
import { compileRingOptions } from '../worker/collective/ring-options.ts';
import { bearer, exchangeStatus, pingStatus, rawClient } from './helpers/hostile-client.ts';
import { ringOrderSum, startRing, TEST_TOKEN } from './helpers/ring.ts';
import { seededValues } from './helpers/seeded-values.ts';

const CHUNK_BYTES = 4096;

/** Counts of each refusal reason a member reported. */
function refusalCounter(): { counts: Partial<Record<RefusalReason, number>>; onRefused: (reason: RefusalReason) => void } {
  const counts: Partial<Record<RefusalReason, number>> = {};
  return { counts, onRefused: (reason) => void (counts[reason] = (counts[reason] ?? 0) + 1) };
}

async function lone(t: ExecutionContext, options: Partial<RingOptions> = {}): Promise<RingMember> {
  const member = await RingMember.start({ rank: 1, worldSize: 2, authToken: TEST_TOKEN, chunkBytes: CHUNK_BYTES, ...options });
  t.teardown(() => member.close());
  return member;
}

async function ring(t: ExecutionContext, options: Partial<RingOptions> = {}): Promise<RingMember[]> {
  const members = await startRing(2, { chunkBytes: CHUNK_BYTES, ...options });
  t.teardown(() => Promise.all(members.map((member) => member.close())).then(() => undefined));
  return members;
}

/** One all-reduce over `members`, checked bit for bit against the ring's own order of sums. */
async function exactSum(t: ExecutionContext, members: RingMember[], step: number, generation = 0): Promise<void> {
  const inputs = members.map((_, rank) => seededValues(3001, step * 10 + rank));
  const expected = ringOrderSum(inputs);
  const buffers = inputs.map((values) => values.slice());
  await Promise.all(members.map((member, rank) => member.allReduceSum(buffers[rank], { runId: 'hostile', generation, step })));
  for (const buffer of buffers) t.deepEqual(buffer, expected);
}

/** Waits (event-loop turns, not a time bound) until `ready()` holds. */
async function until(ready: () => boolean): Promise<void> {
  while (!ready()) await new Promise((resolve) => setTimeout(resolve, 10));
}

function memory(): { rssMiB: number; heapUsedMiB: number } {
  const { rss, heapUsed } = process.memoryUsage();
  return { rssMiB: Math.round(rss / 2 ** 20), heapUsedMiB: Math.round(heapUsed / 2 ** 20) };
}

test('limits get defaults from the chunk size and the timeout, and bad values are ConfigErrors', (t) => {
  const compiled = compileRingOptions({ rank: 0, worldSize: 2, chunkBytes: CHUNK_BYTES, timeoutMs: 5000 });
  t.deepEqual(compiled.limits, {
    maxHeldStreams: 4,
    maxHeldBytes: 8 * messageLimit(CHUNK_BYTES),
    maxStreamsPerPeer: 8,
    firstChunkTimeoutMs: 5000,
    maxPingsPerSecond: 50,
  });
  for (const limits of [
    { maxHeldStreams: 0 },
    { maxHeldBytes: messageLimit(CHUNK_BYTES) - 1 },
    { maxStreamsPerPeer: 1 },
    { firstChunkTimeoutMs: 0 },
    { maxPingsPerSecond: 0.5 },
  ]) {
    t.throws(() => compileRingOptions({ rank: 0, worldSize: 2, chunkBytes: CHUNK_BYTES, limits }), { instanceOf: ConfigError }, JSON.stringify(limits));
  }
});

test('garbage bytes on the port close that connection only: the ring still pings and sums exactly', async (t) => {
  const members = await ring(t);
  const [host, port] = [members[1].address.slice(0, members[1].address.lastIndexOf(':')), Number(members[1].address.split(':').pop())];
  for (const garbage of [Buffer.from(seededValues(4096, 7).buffer), Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.alloc(64, 0xff)])]) {
    await new Promise<void>((resolve) => {
      const socket = net.connect(port, host, () => socket.end(garbage));
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.resume();
    });
  }
  const client = rawClient(members[1].address);
  t.teardown(() => client.close());
  t.is(await pingStatus(client, bearer(TEST_TOKEN)), status.OK);
  await exactSum(t, members, 1);
});

test('a stream that never sends is answered DEADLINE_EXCEEDED after the first-chunk timeout, and a running all-reduce completes meanwhile', async (t) => {
  const refusals = refusalCounter();
  const members = await ring(t, { onRefused: refusals.onRefused, limits: { firstChunkTimeoutMs: 1500 } });
  const session = http2.connect(`http://${members[1].address}`);
  t.teardown(() => session.destroy());
  session.on('error', () => {});
  const silent = session.request({
    ':method': 'POST',
    ':path': '/fmnist.cluster.v1.Collective/Exchange',
    'content-type': 'application/grpc',
    te: 'trailers',
    authorization: `Bearer ${TEST_TOKEN}`,
  });
  const silentStatus = new Promise<number>((resolve) => {
    silent.on('response', (headers) => headers['grpc-status'] !== undefined && resolve(Number(headers['grpc-status'])));
    silent.on('trailers', (headers: http2.IncomingHttpHeaders) => resolve(Number(headers['grpc-status'])));
  });
  silent.on('error', () => {});
  await exactSum(t, members, 1);
  await exactSum(t, members, 2);
  t.is(await silentStatus, status.DEADLINE_EXCEEDED);
  t.is(refusals.counts.silent_stream, 1);
});

test('a host past maxStreamsPerPeer open streams is refused RESOURCE_EXHAUSTED', async (t) => {
  const refusals = refusalCounter();
  const member = await lone(t, { onRefused: refusals.onRefused, limits: { maxStreamsPerPeer: 3 } });
  // Separate connections: within one, HTTP/2 itself stops a client at MAX_CONCURRENT_STREAMS.
  const clients = Array.from({ length: 4 }, () => rawClient(member.address));
  t.teardown(() => clients.forEach((client) => client.close()));
  const open = clients.slice(0, 3).map((client) => client.Exchange(bearer(TEST_TOKEN), () => {}));
  t.teardown(() => open.forEach((call) => call.cancel()));
  await until(() => true);
  const extra = await exchangeStatus(clients[3], bearer(TEST_TOKEN), []);
  t.is(extra, status.RESOURCE_EXHAUSTED);
  t.is(refusals.counts.too_many_streams, 1);
});

test('early streams past maxHeldStreams are refused, and the bytes held for them never exceed maxHeldBytes', async (t) => {
  const refusals = refusalCounter();
  const maxHeldBytes = 6 * messageLimit(CHUNK_BYTES);
  const member = await lone(t, { onRefused: refusals.onRefused, limits: { maxHeldStreams: 3, maxHeldBytes } });
  const client = rawClient(member.address);
  t.teardown(() => client.close());
  const before = memory();
  const chunk = { run_id: 'future', generation: 0, step: 0, purpose: '', phase: 'PHASE_REDUCE_SCATTER' as const, payload: Buffer.alloc(CHUNK_BYTES) };
  // Six streams for six later all-reduces, 64 full chunks each: far more than the cap.
  const statuses = Array.from({ length: 6 }, (_, sequence) =>
    exchangeStatus(
      client,
      bearer(TEST_TOKEN),
      Array.from({ length: 64 }, (_, j) => ({ ...chunk, sequence, chunk_index: j })),
      { end: false },
    ),
  );
  // Read until held streams are paused: the next message might no longer fit.
  await until(() => (refusals.counts.held_streams_full ?? 0) === 3 && member.held.bytes + 2 * messageLimit(CHUNK_BYTES) > maxHeldBytes);
  for (let turn = 0; turn < 20; turn += 1) await new Promise((resolve) => setImmediate(resolve));
  t.is(member.held.streams, 3);
  const during = memory();
  t.log(
    `held ${member.held.bytes} bytes now, ${member.held.peakBytes} at most (cap ${maxHeldBytes}); memory before ${JSON.stringify(before)}, holding ${JSON.stringify(during)}`,
  );
  t.true(member.held.peakBytes <= maxHeldBytes);
  t.true(member.held.peakBytes > 0);
  await member.close();
  const codes = await Promise.all(statuses);
  t.is(codes.filter((code) => code === status.RESOURCE_EXHAUSTED).length, 3);
  t.is(codes.filter((code) => code === status.UNAVAILABLE).length, 3, 'the held ones are refused at shutdown');
  t.is(member.held.bytes, 0);
});

test('a flood of Pings is answered within the ping budget and refused past it, and the member stays responsive', async (t) => {
  const refusals = refusalCounter();
  const members = await ring(t, { onRefused: refusals.onRefused, limits: { maxPingsPerSecond: 20 } });
  const client = rawClient(members[1].address);
  t.teardown(() => client.close());
  const before = memory();
  const codes: status[] = [];
  for (let round = 0; round < 10; round += 1) {
    codes.push(...(await Promise.all(Array.from({ length: 500 }, () => pingStatus(client, bearer(TEST_TOKEN))))));
  }
  const after = memory();
  t.log(`5000 pings: ${codes.filter((c) => c === status.OK).length} answered; memory before ${JSON.stringify(before)}, after ${JSON.stringify(after)}`);
  t.true(codes.every((code) => code === status.OK || code === status.RESOURCE_EXHAUSTED));
  t.true(codes.includes(status.OK));
  t.is(refusals.counts.ping_rate, codes.filter((code) => code === status.RESOURCE_EXHAUSTED).length);
  await exactSum(t, members, 1);
});

test('a message over the size limit is refused RESOURCE_EXHAUSTED by grpc-js, and the member still sums', async (t) => {
  const members = await ring(t);
  const client = rawClient(members[1].address);
  t.teardown(() => client.close());
  const huge = { run_id: 'hostile', payload: Buffer.alloc(messageLimit(CHUNK_BYTES) + 1) };
  t.is(await exchangeStatus(client, bearer(TEST_TOKEN), [huge]), status.RESOURCE_EXHAUSTED);
  await exactSum(t, members, 1);
});
