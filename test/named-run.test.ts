/**
 * Named runs (`launch --run-id`) against a real redis-server: created once, found again by a
 * second launch, resumed only when they stopped without a decision, refused with another config.
 */
import test from 'ava';
import type { Redis } from 'ioredis';
import { ensureNamedRun } from '../coordinator/named-run.ts';
import { ConfigError, RunError } from '../shared/errors.ts';
import type { RunConfig, RunState } from '../shared/run/run-state.ts';
import { RunStore } from '../shared/run/run-store.ts';
import { startTestRedis, uniquePrefix, type TestRedis } from './helpers/redis-server.ts';

const CONFIG: RunConfig = { workers: 2, epochs: 1, batchSize: 64, resize: 28, limitTrain: 1024, limitTest: 256, backend: 'auto', model: 'tiny-cnn' };

let redis: TestRedis;
let client: Redis;
test.before(async () => {
  redis = await startTestRedis({ persist: false });
  client = redis.connect('named-run-test');
});
test.after.always(() => redis?.close());

function newStore(label: string): RunStore {
  return new RunStore(client, uniquePrefix(label));
}

/** Legal moves that take a fresh (queued) run to `state`. */
const PATH_TO: Record<Exclude<RunState, 'queued'>, RunState[]> = {
  running: ['running'],
  completed: ['running', 'completed'],
  failed: ['running', 'failed'],
  cancelled: ['running', 'cancelled'],
  interrupted: ['running', 'interrupted'],
};

async function moveTo(runs: RunStore, id: string, state: Exclude<RunState, 'queued'>): Promise<void> {
  for (const step of PATH_TO[state]) await runs.transition(id, step);
}

test('a named run is created once: launching it again attaches to the same run', async (t) => {
  const runs = newStore('named-once');
  const first = await ensureNamedRun(runs, 'fmnist-a', CONFIG, 'resume');
  t.is(first.action, 'created');
  t.is(first.run.id, 'fmnist-a');
  t.is(first.run.state, 'queued');
  const again = await ensureNamedRun(runs, 'fmnist-a', CONFIG, 'resume');
  t.is(again.action, 'attached');
  t.is(again.run.generation, 0);
  t.deepEqual(
    (await runs.list()).map((run) => run.id),
    ['fmnist-a'],
  );
});

test('launchers racing for the same name make one run: one creates, the others attach', async (t) => {
  const runs = newStore('named-race');
  const outcomes = await Promise.all(Array.from({ length: 4 }, () => ensureNamedRun(runs, 'raced', CONFIG, 'attach')));
  t.deepEqual(outcomes.map((o) => o.action).sort(), ['attached', 'attached', 'attached', 'created']);
  t.is((await runs.list()).length, 1);
});

test('--if-exists fail refuses an existing name with RUN_EXISTS', async (t) => {
  const runs = newStore('named-fail');
  await ensureNamedRun(runs, 'taken', CONFIG, 'fail');
  const error = await t.throwsAsync(ensureNamedRun(runs, 'taken', CONFIG, 'fail'), { instanceOf: RunError });
  t.is(error?.code, 'RUN_EXISTS');
});

test('a changed config under an existing name is refused with RUN_CONFIG_MISMATCH, and the run is untouched', async (t) => {
  const runs = newStore('named-mismatch');
  await ensureNamedRun(runs, 'fixed', CONFIG, 'resume');
  await moveTo(runs, 'fixed', 'interrupted');
  const error = await t.throwsAsync(ensureNamedRun(runs, 'fixed', { ...CONFIG, epochs: 2 }, 'resume'), { instanceOf: RunError });
  t.is(error?.code, 'RUN_CONFIG_MISMATCH');
  const run = await runs.get('fixed');
  t.is(run.state, 'interrupted');
  t.is(run.config.epochs, 1);
});

test('--if-exists resume resumes a failed or interrupted run in a new generation', async (t) => {
  const runs = newStore('named-resume');
  for (const state of ['interrupted', 'failed'] as const) {
    const id = `stopped-${state}`;
    await ensureNamedRun(runs, id, CONFIG, 'resume');
    await moveTo(runs, id, state);
    const outcome = await ensureNamedRun(runs, id, CONFIG, 'resume');
    t.is(outcome.action, 'resumed', state);
    t.is(outcome.run.state, 'queued', state);
    t.is(outcome.run.generation, 1, state);
  }
});

test('--if-exists resume leaves running, completed and cancelled runs as they are; attach leaves every state', async (t) => {
  const runs = newStore('named-leave');
  for (const state of ['running', 'completed', 'cancelled'] as const) {
    await ensureNamedRun(runs, state, CONFIG, 'resume');
    await moveTo(runs, state, state);
    const outcome = await ensureNamedRun(runs, state, CONFIG, 'resume');
    t.is(outcome.action, 'attached', state);
    t.is(outcome.run.state, state);
    t.is(outcome.run.generation, 0, state);
  }
  await ensureNamedRun(runs, 'kept', CONFIG, 'attach');
  await moveTo(runs, 'kept', 'interrupted');
  const attached = await ensureNamedRun(runs, 'kept', CONFIG, 'attach');
  t.is(attached.action, 'attached');
  t.is(attached.run.state, 'interrupted');
});

test('two launchers resuming the same interrupted run make one new generation', async (t) => {
  const runs = newStore('named-resume-race');
  await ensureNamedRun(runs, 'again', CONFIG, 'resume');
  await moveTo(runs, 'again', 'interrupted');
  const outcomes = await Promise.all([ensureNamedRun(runs, 'again', CONFIG, 'resume'), ensureNamedRun(runs, 'again', CONFIG, 'resume')]);
  t.deepEqual(outcomes.map((o) => o.action).sort(), ['attached', 'resumed']);
  t.is((await runs.get('again')).generation, 1);
});

test('a run id that cannot name keys, job ids and folders is a ConfigError', async (t) => {
  const runs = newStore('named-bad-id');
  for (const id of ['', '../x', 'a.b', 'with space', '-dash-first', 'x'.repeat(65)]) {
    await t.throwsAsync(ensureNamedRun(runs, id, CONFIG, 'resume'), { instanceOf: ConfigError }, JSON.stringify(id));
  }
  t.deepEqual(await runs.list(), []);
});
