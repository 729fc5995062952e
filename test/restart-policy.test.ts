import test from 'ava';
import { isRecoverable, restartBackoffMs, restartDue } from '../shared/run/restart-policy.ts';
import { validateRunConfig, type RunRecord } from '../shared/run/run-state.ts';

function failedRun(code: string, restarts: number, maxRestarts: number): RunRecord {
  const cause = { code: 'COLLECTIVE_PEER_LOST', rank: 0, peerRank: 1 };
  return {
    id: 'run-20260101-000000-abcd',
    config: validateRunConfig({ workers: 2, backend: 'wasm', maxRestarts }),
    state: 'failed',
    generation: restarts,
    createdAt: 0,
    updatedAt: 0,
    failure: { code, rank: 0 },
    history: [],
    cancelRequested: false,
    restarts: Array.from({ length: restarts }, (_, i) => ({ generation: i + 1, at: i, cause })),
  };
}

test('a lost, hung or unreachable peer and a vanished job are recoverable; a bad config, dataset, checkpoint or bug is not', (t) => {
  for (const code of ['COLLECTIVE_PEER_LOST', 'COLLECTIVE_PEER_HUNG', 'COLLECTIVE_TIMEOUT', 'RUN_JOB_FAILED', 'RUN_RENDEZVOUS_TIMEOUT']) {
    t.true(isRecoverable({ code }), code);
  }
  for (const code of [
    'CONFIG_INVALID',
    'DATASET_CHECKSUM',
    'CHECKPOINT_CORRUPT',
    'CHECKPOINT_WRITE_FAILED',
    'BACKEND_UNAVAILABLE',
    'COLLECTIVE_MALFORMED',
    'UNEXPECTED',
  ]) {
    t.false(isRecoverable({ code }), code);
  }
  t.false(isRecoverable(undefined), 'a failure nobody typed is not guessed at');
});

test('a recoverable failure is restarted while restarts are left, and never with maxRestarts 0', (t) => {
  t.true(restartDue(failedRun('COLLECTIVE_PEER_LOST', 0, 3)));
  t.true(restartDue(failedRun('COLLECTIVE_PEER_LOST', 2, 3)));
  t.false(restartDue(failedRun('COLLECTIVE_PEER_LOST', 3, 3)), 'past --max-restarts the failure is final');
  t.false(restartDue(failedRun('COLLECTIVE_PEER_LOST', 0, 0)), "--max-restarts 0: today's behaviour");
  t.false(restartDue(failedRun('CONFIG_INVALID', 0, 3)));
  t.false(restartDue({ ...failedRun('COLLECTIVE_PEER_LOST', 0, 3), state: 'interrupted' }), 'an interrupted run waits for resume');
});

test('the first restart is immediate, later ones back off exponentially up to a minute', (t) => {
  const delays = Array.from({ length: 9 }, (_, k) => restartBackoffMs(k));
  t.deepEqual(delays, [0, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
});
