import test from 'ava';
import type { Redis } from 'ioredis';
import { RunStore } from '../shared/run/run-store.ts';
import {
  canTransition,
  newRunId,
  RUN_STATES,
  RUN_TRANSITIONS,
  type EpochEntry,
  type RunConfig,
  validateRunConfig,
  runFailureOf,
  type RunEvent,
  type RunState,
} from '../shared/run/run-state.ts';
import type { StepSample } from '../shared/run/step-samples.ts';
import { CollectiveError, ConfigError, RunError } from '../shared/errors.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

const CONFIG: RunConfig = { workers: 2, epochs: 3, batchSize: 256, lr: 0.05, resize: 32, seed: 7, backend: 'cpu', checkpointEvery: 50, limitTrain: 4096 };

let redis: TestRedis;
let client: Redis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  client = redis.connect('run-store-test');
});
test.after.always(() => redis?.close());

function newStore(label: string, options: ConstructorParameters<typeof RunStore>[2] = {}): RunStore {
  return new RunStore(client, uniquePrefix(label), options);
}

/** Legal moves that take a fresh (queued) run to `state`. */
const PATH_TO: Record<RunState, RunState[]> = {
  queued: [],
  running: ['running'],
  completed: ['running', 'completed'],
  failed: ['running', 'failed'],
  cancelled: ['running', 'cancelled'],
  interrupted: ['running', 'interrupted'],
};

async function expectRunError(t: import('ava').ExecutionContext, promise: Promise<unknown>, code: string): Promise<void> {
  const error = await t.throwsAsync(promise);
  t.true(error instanceof RunError, `${error?.name}: ${error?.message}`);
  t.is((error as RunError).code, code);
}

test('a new run is queued at generation 0 with its config', async (t) => {
  const store = newStore('create');
  const run = await store.create(CONFIG);
  t.regex(run.id, /^run-\d{8}-\d{6}-[0-9a-f]{4}$/);
  t.is(run.state, 'queued');
  t.is(run.generation, 0);
  t.deepEqual(run.config, validateRunConfig(CONFIG));
  t.is(run.config.model, 'resnet18', 'training defaults are filled in');
  t.deepEqual(run.history, []);
  t.false(run.cancelRequested);
  t.deepEqual(await store.get(run.id), run);
});

test('every pair of states moves exactly when the transition table allows it', async (t) => {
  const store = newStore('table');
  let legal = 0;
  for (const from of RUN_STATES) {
    for (const to of RUN_STATES) {
      const run = await store.create(CONFIG);
      for (const step of PATH_TO[from]) await store.transition(run.id, step);
      if (canTransition(from, to)) {
        legal += 1;
        t.is((await store.transition(run.id, to)).state, to, `${from} -> ${to}`);
      } else {
        await expectRunError(t, store.transition(run.id, to), 'RUN_BAD_TRANSITION');
        t.is((await store.get(run.id)).state, from, `${from} stays after a refused move to ${to}`);
      }
    }
  }
  t.is(legal, Object.values(RUN_TRANSITIONS).flat().length);
});

test('of two connections racing for the same move, exactly one wins', async (t) => {
  const other = redis.connect('run-store-racer');
  const prefix = uniquePrefix('race');
  const [storeA, storeB] = [new RunStore(client, prefix), new RunStore(other, prefix)];
  for (let round = 0; round < 20; round += 1) {
    const run = await storeA.create(CONFIG);
    const start = await Promise.allSettled([storeA.transition(run.id, 'running'), storeB.transition(run.id, 'running')]);
    t.is(start.filter((r) => r.status === 'fulfilled').length, 1, `round ${round}: one start wins`);
    const loser = start.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    t.is((loser.reason as RunError).code, 'RUN_BAD_TRANSITION');

    const end = await Promise.allSettled([storeA.transition(run.id, 'completed'), storeB.transition(run.id, 'failed', { error: 'boom' })]);
    const winners = end.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<RunStore['get']>>> => r.status === 'fulfilled');
    t.is(winners.length, 1, `round ${round}: one end wins`);
    t.is((await storeA.get(run.id)).state, winners[0].value.state);
  }
  const events = await storeA.readEvents((await storeA.list({ limit: 1 }))[0].id);
  t.deepEqual(
    events.map((e) => e.type),
    ['created', 'state', 'state'],
  );
});

test('a transition with an expected source refuses when the run is elsewhere', async (t) => {
  const store = newStore('from');
  const run = await store.create(CONFIG);
  await expectRunError(t, store.transition(run.id, 'cancelled', { from: 'running' }), 'RUN_BAD_TRANSITION');
  t.is((await store.get(run.id)).state, 'queued');
  await expectRunError(t, store.transition(run.id, 'completed', { from: 'queued' }), 'RUN_BAD_TRANSITION');
  t.is((await store.transition(run.id, 'cancelled', { from: 'queued' })).state, 'cancelled');
});

test('resuming an interrupted run bumps the generation and clears the error and cancel request', async (t) => {
  const store = newStore('resume');
  const run = await store.create(CONFIG);
  await store.transition(run.id, 'running');
  await store.requestCancel(run.id);
  t.true(await store.isCancelRequested(run.id));
  const interrupted = await store.transition(run.id, 'interrupted', { error: 'worker 1 stopped answering' });
  t.is(interrupted.error, 'worker 1 stopped answering');

  const resumed = await store.transition(run.id, 'queued');
  t.is(resumed.generation, 1);
  t.is(resumed.error, undefined);
  t.false(resumed.cancelRequested);
  t.false(await store.isCancelRequested(run.id));
});

test('a failed run keeps its typed failure, its state event carries it, and a resume clears it', async (t) => {
  const store = newStore('failure');
  const run = await store.create(CONFIG);
  await store.transition(run.id, 'running');
  const failure = { code: 'COLLECTIVE_PEER_LOST', rank: 0, peerRank: 1 };
  const failed = await store.transition(run.id, 'failed', { error: 'rank 0: left neighbour rank 1 broke off', failure });
  t.deepEqual(failed.failure, failure);
  const events = await store.readEvents(run.id);
  const last = events.at(-1)!;
  t.deepEqual(last.type === 'state' ? last.failure : undefined, failure);
  const resumed = await store.transition(run.id, 'queued');
  t.is(resumed.failure, undefined);
  t.is(resumed.error, undefined);
});

test('runFailureOf keeps the code, the recording rank and the lost peer of a typed error', (t) => {
  const lost = new CollectiveError('COLLECTIVE_PEER_LOST', 'right neighbour gone', { peerRank: 2 });
  t.deepEqual(runFailureOf(lost, 1), { code: 'COLLECTIVE_PEER_LOST', rank: 1, peerRank: 2 });
  t.deepEqual(runFailureOf(new CollectiveError('COLLECTIVE_TIMEOUT', 'slow'), 0), { code: 'COLLECTIVE_TIMEOUT', rank: 0 });
  t.deepEqual(runFailureOf(new RunError('RUN_NOT_FOUND', 'gone')), { code: 'RUN_NOT_FOUND' });
  t.deepEqual(runFailureOf(new TypeError('oops'), 3), { code: 'UNEXPECTED', rank: 3 });
});

test('an unknown run id is RUN_NOT_FOUND for every operation', async (t) => {
  const store = newStore('unknown');
  const id = 'run-20000101-000000-0000';
  const entry: EpochEntry = { epoch: 1, loss: 1, trainAcc: 0.5, testAcc: 0.5, examplesPerSec: 100, seconds: 1 };
  await expectRunError(t, store.get(id), 'RUN_NOT_FOUND');
  await expectRunError(t, store.transition(id, 'running'), 'RUN_NOT_FOUND');
  await expectRunError(t, store.appendEpoch(id, entry), 'RUN_NOT_FOUND');
  await expectRunError(t, store.setProgress(id, { epoch: 1, step: 1, stepsPerEpoch: 2, loss: 1, examplesPerSec: 1 }), 'RUN_NOT_FOUND');
  await expectRunError(t, store.requestCancel(id), 'RUN_NOT_FOUND');
  await expectRunError(t, store.isCancelRequested(id), 'RUN_NOT_FOUND');
  t.is(await client.exists(store.keys.run(id), store.keys.runHistory(id)), 0, 'nothing was written for it');
});

test('epoch history and progress round-trip, a re-written epoch replaces the old one', async (t) => {
  let clock = 1_700_000_000_000;
  const store = newStore('history', { now: () => clock });
  const run = await store.create(CONFIG);
  await store.transition(run.id, 'running');
  const epoch2: EpochEntry = { epoch: 2, loss: 0.41, trainAcc: 0.852, testAcc: 0.861, examplesPerSec: 1234.5, seconds: 48.6 };
  const epoch1: EpochEntry = { epoch: 1, loss: 0.73, trainAcc: 0.731, testAcc: 0.802, examplesPerSec: 1190.25, seconds: 50.4 };
  await store.appendEpoch(run.id, { ...epoch2, loss: 9 });
  await store.appendEpoch(run.id, epoch1);
  await store.appendEpoch(run.id, epoch2);
  clock += 1_500;
  const progress = await store.setProgress(run.id, { epoch: 3, step: 17, stepsPerEpoch: 235, loss: 0.38, examplesPerSec: 1250 });

  const stored = await store.get(run.id);
  t.deepEqual(stored.history, [epoch1, epoch2]);
  t.deepEqual(stored.progress, { epoch: 3, step: 17, stepsPerEpoch: 235, loss: 0.38, examplesPerSec: 1250, updatedAt: 1_700_000_001_500 });
  t.deepEqual(progress, stored.progress);
  t.is(stored.updatedAt, 1_700_000_001_500);
  t.is(stored.createdAt, 1_700_000_000_000);
});

test('writes guarded by a generation are refused once the run moved on', async (t) => {
  const store = newStore('stale');
  const run = await store.create(CONFIG);
  await store.transition(run.id, 'running');
  await store.setProgress(run.id, { epoch: 1, step: 1, stepsPerEpoch: 10, loss: 2, examplesPerSec: 10 }, { generation: 0 });
  await store.transition(run.id, 'interrupted');
  await store.transition(run.id, 'queued');
  await expectRunError(
    t,
    store.setProgress(run.id, { epoch: 1, step: 2, stepsPerEpoch: 10, loss: 2, examplesPerSec: 10 }, { generation: 0 }),
    'RUN_STALE_GENERATION',
  );
  await expectRunError(
    t,
    store.appendEpoch(run.id, { epoch: 1, loss: 1, trainAcc: 0, testAcc: 0, examplesPerSec: 1, seconds: 1 }, { generation: 0 }),
    'RUN_STALE_GENERATION',
  );
  const stored = await store.get(run.id);
  t.is(stored.progress?.step, 1);
  t.deepEqual(stored.history, []);
});

test('an automatic restart appends its cause with the new generation, and a late failure of the old generation is refused', async (t) => {
  let clock = 1_700_000_000_000;
  const store = newStore('restart', { now: () => clock });
  const run = await store.create({ ...CONFIG, maxRestarts: 2 });
  t.deepEqual(run.restarts, []);
  await store.transition(run.id, 'running', { generation: 0 });
  const cause = { code: 'COLLECTIVE_PEER_LOST', rank: 0, peerRank: 1 };
  await store.transition(run.id, 'failed', { failure: cause, generation: 0 });
  clock += 1_000;
  const restarted = await store.transition(run.id, 'queued', { from: 'failed', generation: 0, restartCause: cause });
  t.is(restarted.generation, 1);
  t.deepEqual(restarted.restarts, [{ generation: 1, at: 1_700_000_001_000, cause }]);
  t.is(restarted.failure, undefined, 'the restart clears the failure; the cause lives on in restarts');
  const last = (await store.readEvents(run.id)).at(-1)!;
  t.deepEqual(last.type === 'state' ? [last.from, last.to, last.restart] : undefined, ['failed', 'queued', restarted.restarts[0]]);

  // The other rank of generation 0 fails late: the queued generation 1 must not be failed by it.
  await expectRunError(t, store.transition(run.id, 'failed', { failure: { code: 'COLLECTIVE_CLOSED', rank: 1 }, generation: 0 }), 'RUN_STALE_GENERATION');
  await expectRunError(t, store.transition(run.id, 'queued', { from: 'failed', generation: 0, restartCause: cause }), 'RUN_STALE_GENERATION');
  t.is((await store.get(run.id)).state, 'queued');

  // A second restart appends; a resume by a person is not a restart.
  await store.transition(run.id, 'running', { generation: 1 });
  await store.transition(run.id, 'failed', { failure: { code: 'COLLECTIVE_PEER_HUNG', rank: 1, peerRank: 0 }, generation: 1 });
  await store.transition(run.id, 'queued', { from: 'failed', generation: 1, restartCause: { code: 'COLLECTIVE_PEER_HUNG', rank: 1, peerRank: 0 } });
  await store.transition(run.id, 'running');
  await store.transition(run.id, 'interrupted');
  const resumed = await store.transition(run.id, 'queued');
  t.deepEqual(
    resumed.restarts.map((r) => [r.generation, r.cause.code]),
    [
      [1, 'COLLECTIVE_PEER_LOST'],
      [2, 'COLLECTIVE_PEER_HUNG'],
    ],
  );
  t.is(resumed.generation, 3);
});

test('a run config takes maxRestarts from 0 to 100, default 3; a stored config without one reads as 0', async (t) => {
  t.is(validateRunConfig(CONFIG).maxRestarts, 3);
  t.is(validateRunConfig({ ...CONFIG, maxRestarts: 0 }).maxRestarts, 0);
  for (const bad of [-1, 1.5, 101, Number.NaN]) {
    const error = t.throws(() => validateRunConfig({ ...CONFIG, maxRestarts: bad }));
    t.true(error instanceof ConfigError);
    t.is((error as ConfigError).option, 'max-restarts');
  }
  const store = newStore('old-config');
  const run = await store.create(CONFIG);
  const { maxRestarts: _, ...old } = run.config;
  await client.hset(store.keys.run(run.id), 'config', JSON.stringify(old));
  t.is((await store.get(run.id)).config.maxRestarts, 0, 'a run stored before automatic restarts keeps its behaviour then');
});

test('step samples round-trip in step order, a re-run window replaces its sample, and no event is written', async (t) => {
  const store = newStore('steps');
  const run = await store.create(CONFIG);
  const sample = (globalStep: number, steps: number): StepSample => ({
    globalStep,
    epoch: 1,
    steps,
    examples: 256 * steps,
    seconds: 0.5 * steps,
    loss: 2 / globalStep,
    dataMs: 1,
    computeMs: 400,
    allReduceMs: 90,
    updateMs: 9,
  });
  t.deepEqual(await store.stepSamples(run.id), []);
  const eventsBefore = (await store.readEvents(run.id)).length;
  await store.recordStepSample(run.id, sample(4, 2));
  await store.recordStepSample(run.id, sample(2, 2));
  await store.recordStepSample(run.id, sample(4, 1), { generation: 0 });
  t.deepEqual(await store.stepSamples(run.id), [sample(2, 2), sample(4, 1)]);
  t.is((await store.readEvents(run.id)).length, eventsBefore);

  // A resume moves the run to generation 1.
  await store.transition(run.id, 'running');
  await store.transition(run.id, 'interrupted');
  await store.transition(run.id, 'queued');
  await expectRunError(t, store.recordStepSample(run.id, sample(6, 2), { generation: 0 }), 'RUN_STALE_GENERATION');
  await expectRunError(t, store.recordStepSample('run-00000000-000000-dead', sample(2, 2)), 'RUN_NOT_FOUND');
  t.deepEqual(
    (await store.stepSamples(run.id)).map((s) => s.globalStep),
    [2, 4],
  );
});

test('list returns runs newest first, up to the limit', async (t) => {
  let clock = Date.UTC(2026, 10, 29, 2, 30, 0);
  const store = newStore('list', { now: () => clock });
  const ids: string[] = [];
  for (let i = 0; i < 4; i += 1) {
    ids.push((await store.create({ ...CONFIG, seed: i })).id);
    clock += 1_000;
  }
  t.deepEqual(
    (await store.list()).map((run) => run.id),
    [...ids].reverse(),
  );
  t.deepEqual(
    (await store.list({ limit: 2 })).map((run) => run.config.seed),
    [3, 2],
  );
  t.deepEqual([...ids].sort(), ids, 'ids sort by creation time');
  t.true(ids[0].startsWith('run-20261129-023000-'));
});

test('a bad config is refused with ConfigError before anything is stored', async (t) => {
  const store = newStore('config');
  for (const bad of [{ ...CONFIG, workers: 0 }, { ...CONFIG, lr: -1 }, { ...CONFIG, batchSize: 1.5 }, { ...CONFIG, colour: 'red' } as RunConfig]) {
    const error = await t.throwsAsync(store.create(bad));
    t.true(error instanceof ConfigError);
  }
  t.deepEqual(await store.list(), []);
});

test('a config made invalid in Redis is RUN_RECORD_INVALID when the run is read, not a run a worker trains', async (t) => {
  const store = newStore('bad-record');
  const run = await store.create(CONFIG);
  for (const stored of ['{"workers":0,"epochs":3}', '{"workers":2,"epochs":3,"warp":9}', '{not json', '']) {
    await client.hset(store.keys.run(run.id), 'config', stored);
    const error = await t.throwsAsync(store.get(run.id), { instanceOf: RunError }, stored);
    t.is(error?.code, 'RUN_RECORD_INVALID', stored);
  }
  await client.hset(store.keys.run(run.id), 'config', JSON.stringify(validateRunConfig(CONFIG)));
  t.deepEqual((await store.get(run.id)).config, validateRunConfig(CONFIG), 'a repaired record reads again');
});

test('run ids are unique and sortable', (t) => {
  const at = new Date(Date.UTC(2026, 10, 29, 2, 30, 0));
  const ids = new Set(Array.from({ length: 200 }, () => newRunId(at)));
  t.true(ids.size > 190, `${ids.size} distinct of 200 in one second`);
  t.true(newRunId(at) < newRunId(new Date(at.getTime() + 1_000)));
});

test('tailEvents yields state, progress and epoch events as another client writes them', async (t) => {
  const prefix = uniquePrefix('tail');
  const follower = new RunStore(client, prefix);
  const writer = new RunStore(redis.connect('run-store-writer'), prefix);
  const run = await writer.create(CONFIG);
  const [created] = await follower.readEvents(run.id);
  const controller = new AbortController();
  const seen: RunEvent[] = [];
  // From after the created event, so that the tail's start need not win a race with the writer.
  const following = (async () => {
    for await (const event of follower.tailEvents(run.id, { after: created.id, blockMs: 200, signal: controller.signal })) {
      seen.push(event);
      if (event.type === 'state' && event.to === 'completed') return;
    }
  })();
  await writer.transition(run.id, 'running');
  await writer.setProgress(run.id, { epoch: 1, step: 5, stepsPerEpoch: 10, loss: 1.2, examplesPerSec: 300 });
  await writer.appendEpoch(run.id, { epoch: 1, loss: 1.1, trainAcc: 0.6, testAcc: 0.65, examplesPerSec: 310, seconds: 3 });
  await writer.transition(run.id, 'completed');
  await following;

  t.is(created.type, 'created');
  t.deepEqual(
    seen.map((e) => e.type),
    ['state', 'progress', 'epoch', 'state'],
    'the events after the created one, in order',
  );
  const progress = seen[1];
  t.is(progress.type === 'progress' ? progress.progress.step : -1, 5);
  const all = await follower.readEvents(run.id);
  t.deepEqual(
    all.slice(1).map((e) => e.id),
    seen.map((e) => e.id),
  );
  t.deepEqual(await follower.readEvents(run.id, { after: seen[1].id }), all.slice(3));
});

/** Clients of the test server blocked in a command such as XREAD BLOCK. */
async function blockedClients(): Promise<number> {
  return Number(/blocked_clients:(\d+)/.exec(await client.info('clients'))![1]);
}

// Serial (ava runs serial tests before the others), so that the only blocked client is this test's.
test.serial('tailEvents stops when its signal aborts, even while blocked', async (t) => {
  const store = newStore('abort');
  const run = await store.create(CONFIG);
  const controller = new AbortController();
  const blockMs = 120_000;
  const started = Date.now();
  const events: RunEvent[] = [];
  const tailing = (async () => {
    for await (const event of store.tailEvents(run.id, { blockMs, signal: controller.signal })) events.push(event);
  })();
  while ((await blockedClients()) === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  controller.abort();
  await tailing;
  t.deepEqual(events, []);
  // Generous: the abort ends the tail at once, the block it must not wait out is two minutes.
  t.true(Date.now() - started < blockMs / 2, `ended ${Date.now() - started} ms after it started`);
});
