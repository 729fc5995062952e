/**
 * The ring across real processes: each rank is its own `node --import tsx` child
 * (test/helpers/ring-member-process.ts). A full ResNet-18 gradient comes out bit-identical
 * on every rank and equal to the ring-order sum computed here; a rank killed in the middle of an
 * all-reduce makes the others fail as having lost it, a frozen one makes them time out.
 */
import test from 'ava';
import { ringOrderSum } from './helpers/ring.ts';
import type { RingOptions } from '../worker/collective/ring-allreduce.ts';
import { digestValues, type RingProcessReply } from './helpers/ring-member-process.ts';
import { RingProcessHandle } from './helpers/ring-process-handle.ts';
import { seededValues } from './helpers/seeded-values.ts';

const RESNET18_PARAMETERS = 11_178_378;

/** Forks `worldSize` rank processes and forms their ring. */
async function startRingProcesses(worldSize: number, options: Partial<RingOptions> = {}): Promise<RingProcessHandle[]> {
  const processes = Array.from({ length: worldSize }, () => RingProcessHandle.fork());
  try {
    const started = await Promise.all(
      processes.map((p, rank) => p.request({ type: 'start', options: { rank, worldSize, authToken: 'process-test', ...options } }, 'started')),
    );
    const peers = started.map((reply) => reply.address);
    await Promise.all(processes.map((p) => p.request({ type: 'connect', peers }, 'connected')));
    return processes;
  } catch (error) {
    await stopAll(processes);
    throw error;
  }
}

async function stopAll(processes: RingProcessHandle[]): Promise<void> {
  await Promise.all(processes.map((p) => p.stop()));
}

/** Tells every rank to all-reduce `length` values seeded `seed + rank`; resolves once all have begun. */
async function beginAllReduce(processes: RingProcessHandle[], length: number, seed: number): Promise<void> {
  processes.forEach((p, rank) => p.send({ type: 'all-reduce', length, seed: seed + rank, tag: { runId: 'proc', generation: 0, step: 0 } }));
  const started = await Promise.all(processes.map((p) => p.next()));
  for (const reply of started) if (reply.type !== 'all-reduce-started') throw new Error(JSON.stringify(reply));
}

test.serial('three rank processes reduce a full ResNet-18 gradient to the same bits', async (t) => {
  const processes = await startRingProcesses(3);
  try {
    await beginAllReduce(processes, RESNET18_PARAMETERS, 100);
    const replies = await Promise.all(processes.map((p) => p.next()));
    const expected = digestValues(ringOrderSum([0, 1, 2].map((rank) => seededValues(RESNET18_PARAMETERS, 100 + rank))));
    for (const reply of replies) {
      t.is(reply.type, 'all-reduced', JSON.stringify(reply));
      if (reply.type !== 'all-reduced') continue;
      t.is(reply.sha256, expected);
      t.like(reply.timings[0], { bytesSent: Math.round(((2 * 2) / 3) * RESNET18_PARAMETERS * 4) });
    }
  } finally {
    await stopAll(processes);
  }
});

test.serial('three rank processes reduce small vectors exactly, values shipped back', async (t) => {
  const processes = await startRingProcesses(3, { chunkBytes: 4096 });
  try {
    const length = 30_011;
    processes.forEach((p, rank) => p.send({ type: 'all-reduce', length, seed: 7 + rank, tag: { runId: 'small', generation: 4, step: 2 }, returnValues: true }));
    const replies = await Promise.all(processes.map(async (p) => (await p.next(), p.next())));
    const inputs = [0, 1, 2].map((rank) => seededValues(length, 7 + rank));
    const exact = inputs[0].map((_, i) => inputs[0][i] + inputs[1][i] + inputs[2][i]);
    for (const reply of replies) {
      if (reply.type !== 'all-reduced' || reply.values === undefined) return t.fail(JSON.stringify(reply));
      const buffer = Buffer.from(reply.values, 'base64');
      const values = new Float32Array(buffer.buffer, buffer.byteOffset, length);
      t.is(reply.sha256, digestValues(ringOrderSum(inputs)));
      t.true(values.every((value, i) => Math.abs(value - exact[i]) <= 2 * 2 ** -24 * 3));
    }
  } finally {
    await stopAll(processes);
  }
});

function failureCode(reply: RingProcessReply): string {
  return reply.type === 'failed' ? reply.error.code : `no failure: ${reply.type}`;
}

function blamedRank(reply: RingProcessReply): number | undefined {
  return reply.type === 'failed' ? reply.error.peerRank : undefined;
}

test.serial('a rank process killed during an all-reduce makes the others fail as having lost it, not by the timeout', async (t) => {
  // A dead peer is seen within moments; a survivor that waited for the timeout instead would fail
  // with COLLECTIVE_TIMEOUT, after 20 s, far more than a loaded machine needs to notice the loss.
  const processes = await startRingProcesses(3, { timeoutMs: 20_000 });
  try {
    await beginAllReduce(processes, RESNET18_PARAMETERS, 1);
    processes[1].child.kill('SIGKILL');
    const survivors = await Promise.all([processes[0].next(), processes[2].next()]);
    // Each blames the killed rank 1 or, when the other survivor gave up first, that one.
    for (const [i, reply] of survivors.entries()) {
      t.true(['COLLECTIVE_PEER_LOST', 'COLLECTIVE_PEER_ABORTED'].includes(failureCode(reply)), JSON.stringify(reply));
      t.true([1, 2 - 2 * i].includes(blamedRank(reply)!), JSON.stringify(reply));
    }
    t.true(
      survivors.some((reply) => failureCode(reply) === 'COLLECTIVE_PEER_LOST' && blamedRank(reply) === 1),
      'a survivor names the killed rank as lost',
    );
    t.is(await processes[1].exited(), null);
  } finally {
    await stopAll(processes);
  }
});

test.serial('a rank process frozen during an all-reduce makes the others time out', async (t) => {
  const processes = await startRingProcesses(3, { timeoutMs: 2_000 });
  try {
    await beginAllReduce(processes, RESNET18_PARAMETERS, 1);
    processes[2].child.kill('SIGSTOP');
    const survivors = await Promise.all([processes[0].next(), processes[1].next()]);
    // A frozen process keeps its connections open: only the timeout can end this.
    const codes = survivors.map(failureCode);
    t.true(codes.includes('COLLECTIVE_TIMEOUT'), codes.join());
    for (const code of codes) t.true(['COLLECTIVE_TIMEOUT', 'COLLECTIVE_PEER_LOST', 'COLLECTIVE_PEER_ABORTED'].includes(code), code);
  } finally {
    processes[2].child.kill('SIGKILL');
    await stopAll(processes);
  }
});

test.serial('a rank that goes straight back to compute after an all-reduce does not hold its neighbour back', async (t) => {
  // Compute blocks a worker's event loop; the answer that its left neighbour's all-reduce waits
  // for must be on the wire before that, or the neighbour loses a whole step to waiting.
  const busyAfterMs = 1_000;
  const processes = await startRingProcesses(2, { chunkBytes: 1 << 20 });
  try {
    processes.forEach((p, rank) =>
      p.send({ type: 'all-reduce', length: 1_000_000, seed: 7 + rank, tag: { runId: 'busy', generation: 0, step: 0 }, repeats: 3, busyAfterMs }),
    );
    for (const p of processes) t.is((await p.next()).type, 'all-reduce-started');
    const replies = await Promise.all(processes.map((p) => p.next()));
    for (const reply of replies) if (reply.type !== 'all-reduced') return t.fail(JSON.stringify(reply));
    const marks = replies.map((reply) => (reply as Extract<RingProcessReply, { type: 'all-reduced' }>).marks);
    // Whichever rank returns first goes busy at once; the other's all-reduce still waits for its
    // answer. That answer must leave before the busy wait, so the other rank returns while the
    // first one is still busy; an answer held back by the busy event loop would come after it.
    for (let i = 0; i < 3; i += 1) {
      for (const rank of [0, 1]) {
        const mine = marks[rank][i];
        const theirs = marks[1 - rank][i];
        t.true(
          mine.returnedAt < theirs.busyEndedAt,
          `all-reduce ${i}: rank ${rank} returned ${(mine.returnedAt - theirs.busyEndedAt).toFixed(0)} ms after rank ${1 - rank}'s busy wait ended`,
        );
      }
    }
  } finally {
    await stopAll(processes);
  }
});
