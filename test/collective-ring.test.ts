/**
 * The ring all-reduce between real gRPC servers on loopback (port 0), all ranks in this process:
 * sums of odd lengths for 2, 3 and 4 ranks are right to float32 rounding, bit-identical on every
 * rank, and equal to the sum taken in the ring's fixed order.
 */
import test from 'ava';
import { ringOrderSum, startRing, TEST_TOKEN } from './helpers/ring.ts';
import http2 from 'node:http2';
import { FLOW_CONTROL_WINDOW_BYTES } from '../worker/collective/grpc-tuning.ts';
import { RingMember, type AllReduceTag } from '../worker/collective/ring-allreduce.ts';
import { seededValues } from './helpers/seeded-values.ts';

const RESNET18_PARAMETERS = 11_178_378;
const TOKEN = TEST_TOKEN;

async function closeRing(members: RingMember[]): Promise<void> {
  await Promise.all(members.map((member) => member.close()));
}

function inputsFor(worldSize: number, length: number, seed: number): Float32Array[] {
  return Array.from({ length: worldSize }, (_, rank) => seededValues(length, seed * 100 + rank));
}

/** Largest |result - exact| / allowed, where allowed is (N-1) float32 roundings of sum |x|. */
function worstRoundingRatio(result: Float32Array, inputs: Float32Array[]): number {
  let worst = 0;
  for (let i = 0; i < result.length; i += 1) {
    let exact = 0;
    let magnitude = 0;
    for (const values of inputs) {
      exact += values[i];
      magnitude += Math.abs(values[i]);
    }
    const allowed = (inputs.length - 1) * 2 ** -24 * magnitude + Number.MIN_VALUE;
    worst = Math.max(worst, Math.abs(result[i] - exact) / allowed);
  }
  return worst;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** Runs one all-reduce on every rank over copies of `inputs`; returns every rank's result. */
async function allReduce(members: RingMember[], inputs: Float32Array[], tag: AllReduceTag): Promise<Float32Array[]> {
  const data = inputs.map((values) => values.slice());
  await Promise.all(members.map((member, rank) => member.allReduceSum(data[rank], tag)));
  return data;
}

for (const worldSize of [2, 3, 4]) {
  test.serial(`${worldSize} ranks sum odd lengths (some shorter than the ring) bit-identically on every rank`, async (t) => {
    const members = await startRing(worldSize, { chunkBytes: 4096 });
    try {
      const lengths = [1, worldSize - 1, 5, 1025, 100_003].filter((length) => length >= 1);
      for (const [step, length] of lengths.entries()) {
        const inputs = inputsFor(worldSize, length, step + 1);
        const results = await allReduce(members, inputs, { runId: 'odd', generation: 1, step });
        const expected = ringOrderSum(inputs);
        for (const [rank, result] of results.entries()) t.true(sameBits(result, expected), `rank ${rank}, length ${length}`);
        t.true(worstRoundingRatio(results[0], inputs) <= 1, `length ${length}`);
      }
    } finally {
      await closeRing(members);
    }
  });
}

test.serial('four ranks reduce a full ResNet-18 gradient (11,178,378 values) in 1 MiB chunks', async (t) => {
  const members = await startRing(4);
  try {
    const inputs = inputsFor(4, RESNET18_PARAMETERS, 7);
    const results = await allReduce(members, inputs, { runId: 'full', generation: 0, step: 0, purpose: 'gradients' });
    const expected = ringOrderSum(inputs);
    for (const result of results) t.true(sameBits(result, expected));
    t.true(worstRoundingRatio(results[2], inputs) <= 1);
  } finally {
    await closeRing(members);
  }
});

test.serial('the same inputs give the same bits run after run', async (t) => {
  const members = await startRing(3, { chunkBytes: 8192 });
  try {
    const inputs = inputsFor(3, 50_001, 3);
    const first = await allReduce(members, inputs, { runId: 'repeat', generation: 0, step: 0 });
    const second = await allReduce(members, inputs, { runId: 'repeat', generation: 0, step: 1 });
    for (let rank = 0; rank < 3; rank += 1) t.true(sameBits(first[rank], second[rank]));
    t.false(sameBits(first[0], inputs[0]));
  } finally {
    await closeRing(members);
  }
});

test.serial('several all-reduces of one step, one after another, stay apart', async (t) => {
  const members = await startRing(3, { chunkBytes: 4096 });
  try {
    const gradients = inputsFor(3, 9_001, 11);
    const stats = inputsFor(3, 301, 12);
    const tag = { runId: 'multi', generation: 2, step: 40 };
    const results = await Promise.all(
      members.map(async (member, rank) => {
        const g = gradients[rank].slice();
        const s = stats[rank].slice();
        await member.allReduceSum(g, { ...tag, purpose: 'gradients' });
        await member.allReduceSum(s, { ...tag, purpose: 'bn-stats' });
        return { g, s };
      }),
    );
    for (const { g, s } of results) {
      t.true(sameBits(g, ringOrderSum(gradients)));
      t.true(sameBits(s, ringOrderSum(stats)));
    }
  } finally {
    await closeRing(members);
  }
});

test.serial('a rank that starts late is waited for, and its neighbours report the wait', async (t) => {
  const members = await startRing(3, { chunkBytes: 4096 });
  try {
    const inputs = inputsFor(3, 20_001, 5);
    const data = inputs.map((values) => values.slice());
    const tag = { runId: 'late', generation: 0, step: 0 };
    // allReduceSum starts the operation (and its clock) before it returns its promise.
    const early = [0, 1].map((rank) => members[rank].allReduceSum(data[rank], tag));
    const earlyStarted = performance.now();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lateCalled = performance.now();
    const late = members[2].allReduceSum(data[2], tag);
    const timings = await Promise.all([...early, late]);
    for (const result of data) t.true(sameBits(result, ringOrderSum(inputs)));
    // Rank 0's left neighbour is rank 2, which cannot send before it was called: rank 0's report
    // of its wait covers at least that gap, however long a loaded machine made it.
    const gap = lateCalled - earlyStarted;
    t.true(timings[0].firstChunkMs >= gap, `rank 0 first chunk after ${timings[0].firstChunkMs} ms, rank 2 called ${gap} ms in`);
  } finally {
    await closeRing(members);
  }
});

test.serial('a neighbour that connects and starts first is waited for by a member not yet connected', async (t) => {
  const members = await Promise.all([0, 1].map((rank) => RingMember.start({ rank, worldSize: 2, authToken: TOKEN, chunkBytes: 4096 })));
  try {
    const peers = members.map((member) => member.address);
    const inputs = inputsFor(2, 7_001, 4);
    const data = inputs.map((values) => values.slice());
    const tag = { runId: 'connect', generation: 0, step: 0 };
    await members[0].connect(peers);
    const first = members[0].allReduceSum(data[0], tag);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await members[1].connect(peers);
    await Promise.all([first, members[1].allReduceSum(data[1], tag)]);
    for (const result of data) t.true(sameBits(result, ringOrderSum(inputs)));
  } finally {
    await closeRing(members);
  }
});

test.serial('timings count the chunks and bytes each rank sent and received', async (t) => {
  const members = await startRing(2, { chunkBytes: 4096 });
  try {
    const data = inputsFor(2, 10_000, 9);
    const timings = await Promise.all(members.map((member, rank) => member.allReduceSum(data[rank], { runId: 't', generation: 0, step: 0 })));
    for (const timing of timings) {
      // Each rank sends both halves once (5000 values = 5 chunks of <= 1024 each) and receives both.
      t.like(timing, { bytesSent: 40_000, bytesReceived: 40_000, chunksSent: 10, chunksReceived: 10 });
      t.true(timing.totalMs >= timing.reduceScatterMs + timing.allGatherMs);
      t.true(timing.applyMs > 0 && timing.applyMs <= timing.totalMs);
    }
  } finally {
    await closeRing(members);
  }
});

test.serial('a view into a larger buffer is reduced in place and nothing around it changes', async (t) => {
  const members = await startRing(3, { chunkBytes: 4096 });
  try {
    const length = 5_003;
    const inputs = inputsFor(3, length, 21);
    const backings = inputs.map((values) => {
      const backing = new Float32Array(length + 3).fill(-7);
      backing.set(values, 1);
      return backing;
    });
    await Promise.all(members.map((member, rank) => member.allReduceSum(backings[rank].subarray(1, 1 + length), { runId: 'view', generation: 0, step: 0 })));
    for (const backing of backings) {
      t.true(sameBits(backing.subarray(1, 1 + length), ringOrderSum(inputs)));
      t.deepEqual([backing[0], backing[length + 1], backing[length + 2]], [-7, -7, -7]);
    }
  } finally {
    await closeRing(members);
  }
});

test.serial('a ring of one leaves the values alone', async (t) => {
  const [member] = await startRing(1);
  try {
    const values = seededValues(1001, 1);
    const data = values.slice();
    const timings = await member.allReduceSum(data, { runId: 'solo', generation: 0, step: 0 });
    t.true(sameBits(data, values));
    t.is(timings.bytesSent, 0);
  } finally {
    await member.close();
  }
});

test.serial('a member offers its senders the large HTTP/2 receive window', async (t) => {
  const member = await RingMember.start({ rank: 0, worldSize: 2 });
  const session = http2.connect(`http://${member.address}`);
  try {
    // The server's first SETTINGS frame has Node's defaults; the widened window follows it.
    const window = await new Promise<number | undefined>((resolve, reject) => {
      session.on('remoteSettings', (settings: http2.Settings) => {
        if (settings.initialWindowSize === FLOW_CONTROL_WINDOW_BYTES) resolve(settings.initialWindowSize);
      });
      session.on('error', reject);
      setTimeout(() => resolve(session.remoteSettings.initialWindowSize), 2000).unref();
    });
    t.is(window, FLOW_CONTROL_WINDOW_BYTES);
  } finally {
    session.destroy();
    await member.close();
  }
});
