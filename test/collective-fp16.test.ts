/**
 * The compressed all-reduce (`--grad-compression fp16`, AllReduceTag.float16Values) on real gRPC
 * rings on loopback and on shared memory: the leading values are summed as defined (each rank's
 * rounded to binary16, every partial sum of the ring order rounded again), bit-identical on
 * every rank and on both transports; the values after them stay exact float32 sums; the bytes
 * sent halve; without it nothing changes.
 */
import test from 'ava';
import { CollectiveError } from '../shared/errors.ts';
import { roundToHalfScalar } from '../worker/collective/float16.ts';
import type { RingMember } from '../worker/collective/ring-allreduce.ts';
import { ShmAllReduce } from '../worker/collective/shm-allreduce.ts';
import { ringOrderSum, startRing } from './helpers/ring.ts';
import { seededValues } from './helpers/seeded-values.ts';

function bits(values: Float32Array): Uint32Array {
  return new Uint32Array(values.buffer, values.byteOffset, values.length);
}

function rounded(value: number): number {
  const one = Float32Array.of(value);
  roundToHalfScalar(one);
  return one[0];
}

/**
 * The compressed result, computed independently of the ring: in segment k (ring-plan.ts's split)
 * value i < float16Values is fp16(...fp16(fp16(x_k) + fp16(x_k+1)) + ... + fp16(x_k-1)), each
 * sum a float32 sum; the rest is the float32 ring-order sum.
 */
function fp16RingOrderSum(inputs: Float32Array[], float16Values: number): Float32Array {
  const n = inputs.length;
  const out = ringOrderSum(inputs);
  const length = inputs[0].length;
  for (let k = 0; k < n; k += 1) {
    const end = Math.min(Math.floor(((k + 1) * length) / n), float16Values);
    for (let i = Math.floor((k * length) / n); i < end; i += 1) {
      let sum = rounded(inputs[k][i]);
      for (let s = 1; s < n; s += 1) sum = rounded(Math.fround(sum + rounded(inputs[(k + s) % n][i])));
      out[i] = sum;
    }
  }
  return out;
}

/** Bytes rank r of N sends in float32: at ring step g (2(N-1) of them) segment (r - g) mod N. */
function float32BytesSent(length: number, worldSize: number, rank: number): number {
  const start = (k: number) => Math.floor((k * length) / worldSize);
  let bytes = 0;
  for (let g = 0; g < 2 * (worldSize - 1); g += 1) {
    const k = (((rank - g) % worldSize) + worldSize) % worldSize;
    bytes += (start(k + 1) - start(k)) * 4;
  }
  return bytes;
}

async function allReduce(members: RingMember[], inputs: Float32Array[], step: number, float16Values?: number) {
  const data = inputs.map((values) => values.slice());
  const timings = await Promise.all(members.map((member, rank) => member.allReduceSum(data[rank], { runId: 'fp16', generation: 0, step, float16Values })));
  return { data, timings };
}

/** Inputs shaped like a training step's buffer: gradients, then figures no binary16 can hold. */
function stepInputs(worldSize: number, length: number, gradients: number, seed: number): Float32Array[] {
  return Array.from({ length: worldSize }, (_, rank) => {
    const values = seededValues(length, seed * 10 + rank, 0.05);
    for (let i = gradients; i < length; i += 1) values[i] = 1000.1234 * (rank + 1) + i; // loss sums, counts
    return values;
  });
}

for (const worldSize of [2, 3]) {
  test.serial(`${worldSize} ranks on a gRPC ring sum the first values in binary16 as defined, bit-identically, the rest exactly`, async (t) => {
    // Small chunks, so that some chunk straddles the end of the binary16 values at an odd count.
    const members = await startRing(worldSize, { chunkBytes: 4096 });
    t.teardown(() => Promise.all(members.map((member) => member.close())));
    const cases = [
      { length: 5, float16Values: 3 },
      { length: 1025 + 8, float16Values: 1025 + 3 },
      { length: 100_003, float16Values: 99_998 },
      { length: 100_003, float16Values: 100_003 },
      { length: 4097, float16Values: 777 },
    ];
    for (const [step, { length, float16Values }] of cases.entries()) {
      const inputs = stepInputs(worldSize, length, float16Values, step + 1);
      const { data } = await allReduce(members, inputs, step, float16Values);
      const expected = fp16RingOrderSum(inputs, float16Values);
      const exact = ringOrderSum(inputs);
      for (const [rank, result] of data.entries()) {
        t.deepEqual(bits(result), bits(expected), `rank ${rank}, length ${length}, ${float16Values} in binary16`);
        t.deepEqual(bits(result.subarray(float16Values)), bits(exact.subarray(float16Values)), 'the values after them are float32 sums');
      }
      t.notDeepEqual(bits(data[0].subarray(0, float16Values)), bits(exact.subarray(0, float16Values)), 'compression did round');
    }
  });
}

test.serial('compressed sums: shared memory gives the gRPC ring bits, call after call', async (t) => {
  const length = 10_007;
  const float16Values = length - 6;
  const name = `/fmnist-test-fp16-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const shm = await Promise.all([0, 1, 2].map((rank) => ShmAllReduce.join({ name, rank, worldSize: 3, capacity: length, timeoutMs: 60_000 })));
  const ring = await startRing(3, { chunkBytes: 4096 });
  t.teardown(() => Promise.all([...shm, ...ring].map((member) => member.close())));
  for (let step = 0; step < 3; step += 1) {
    const inputs = stepInputs(3, length, float16Values, 10 + step);
    const viaShm = inputs.map((values) => values.slice());
    await Promise.all(shm.map((group, rank) => group.allReduceSum(viaShm[rank], { float16Values })));
    const viaRing = (await allReduce(ring, inputs, step, float16Values)).data;
    const expected = bits(fp16RingOrderSum(inputs, float16Values));
    for (let rank = 0; rank < 3; rank += 1) {
      t.deepEqual(bits(viaShm[rank]), bits(viaRing[rank]), `step ${step} rank ${rank}`);
      t.deepEqual(bits(viaRing[rank]), expected, `step ${step} rank ${rank}`);
    }
  }
  const error = await t.throwsAsync(shm[0].allReduceSum(new Float32Array(4), { float16Values: 5 }), { instanceOf: CollectiveError });
  t.is(error?.code, 'COLLECTIVE_BAD_ARGUMENT');
});

test.serial('the bytes each rank sends and receives halve with binary16 gradients (the figures after them stay 4 bytes each)', async (t) => {
  const members = await startRing(2);
  t.teardown(() => Promise.all(members.map((member) => member.close())));
  const gradients = 1_000_000;
  const inputs = stepInputs(2, gradients + 5, gradients, 3);
  const plain = (await allReduce(members, inputs, 0)).timings;
  const compressed = (await allReduce(members, inputs, 1, gradients)).timings;
  for (let rank = 0; rank < 2; rank += 1) {
    // Each rank sends one segment per phase: the whole vector once, L values.
    t.is(plain[rank].bytesSent, (gradients + 5) * 4);
    t.is(plain[rank].bytesReceived, (gradients + 5) * 4);
    // Binary16 gradients, the 5 figures in float32, and at most 2 padding bytes per chunk.
    const least = gradients * 2 + 5 * 4;
    t.true(
      compressed[rank].bytesSent >= least && compressed[rank].bytesSent <= least + 2 * compressed[rank].chunksSent,
      `rank ${rank}: ${compressed[rank].bytesSent}`,
    );
    t.is(compressed[rank].bytesReceived, compressed[(rank + 1) % 2].bytesSent);
    t.is(compressed[rank].chunksSent, plain[rank].chunksSent, 'the same chunks, each half the bytes');
  }
});

test.serial('without compression (float16Values 0 or absent) the sums are the plain float32 ring-order sums', async (t) => {
  const members = await startRing(3, { chunkBytes: 4096 });
  t.teardown(() => Promise.all(members.map((member) => member.close())));
  const inputs = stepInputs(3, 20_001, 20_000, 5);
  const expected = bits(ringOrderSum(inputs));
  for (const [step, float16Values] of [undefined, 0].entries()) {
    const { data, timings } = await allReduce(members, inputs, step, float16Values);
    for (const result of data) t.deepEqual(bits(result), expected);
    for (const [rank, timing] of timings.entries()) t.is(timing.bytesSent, float32BytesSent(20_001, 3, rank), 'float32 on the wire');
  }
  const error = await t.throwsAsync(members[0].allReduceSum(new Float32Array(4), { runId: 'fp16', generation: 0, step: 9, float16Values: 5 }), {
    instanceOf: CollectiveError,
  });
  t.is(error?.code, 'COLLECTIVE_BAD_ARGUMENT');
});

test.serial('ranks that disagree on the binary16 values refuse each other (COLLECTIVE_MALFORMED) instead of misreading the payload', async (t) => {
  const members = await startRing(2, { timeoutMs: 30_000 });
  t.teardown(() => Promise.all(members.map((member) => member.close())));
  const inputs = stepInputs(2, 1000, 990, 7);
  const results = await Promise.allSettled(
    members.map((member, rank) => member.allReduceSum(inputs[rank], { runId: 'fp16', generation: 0, step: 0, float16Values: rank === 0 ? 990 : 0 })),
  );
  const codes = results.map((result) => (result.status === 'rejected' && result.reason instanceof CollectiveError ? result.reason.code : result.status));
  t.true(codes.includes('COLLECTIVE_MALFORMED'), codes.join(', '));
  t.false(codes.includes('fulfilled'), codes.join(', '));
});
