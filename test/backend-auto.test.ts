/**
 * `selectBackend('auto')` in this process: it must take the first backend of AUTO_ORDER that
 * loads here. What loads is worked out independently of select-backend: tfjs-node(-gpu) when
 * the package resolves, onednn when its addon is built (onednnAvailable), otherwise wasm. On a
 * machine without tfjs-node and without the addon that is wasm. Its own file because it sets
 * the process-wide backend.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { AUTO_ORDER, selectBackend } from '../shared/backend/select-backend.ts';

function resolves(specifier: string): boolean {
  try {
    import.meta.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

async function onednnBuilt(): Promise<boolean> {
  try {
    const { onednnAvailable } = await import('../shared/backend/onednn/register.ts');
    return onednnAvailable();
  } catch {
    return false;
  }
}

test.serial('auto skips the TensorFlow packages that are not installed and takes the first backend that starts', async (t) => {
  const selection = await selectBackend('auto');
  const nodeInstalled = resolves('@tensorflow/tfjs-node-gpu') || resolves('@tensorflow/tfjs-node');
  if (nodeInstalled) {
    t.is(selection.tfName, 'tensorflow');
  } else {
    t.deepEqual(
      selection.tried.slice(0, 2).map((attempt) => attempt.name),
      ['tensorflow-gpu', 'tensorflow'],
    );
    for (const attempt of selection.tried.slice(0, 2)) t.is(attempt.code, 'BACKEND_MISSING', attempt.error);
    t.is(selection.name, (await onednnBuilt()) ? 'onednn' : 'wasm');
  }
  t.deepEqual(
    selection.tried.map((attempt) => attempt.name),
    AUTO_ORDER.slice(0, selection.tried.length),
  );
  t.deepEqual(selection.tried.at(-1), { name: selection.name });
  t.true(selection.tried.slice(0, -1).every((attempt) => attempt.code !== undefined && attempt.error !== undefined));
  t.is(tf.getBackend(), selection.tfName);
  t.true(selection.detail.startsWith(`${selection.name}:`));
});

test.serial('the backend auto picks runs a computation', async (t) => {
  await selectBackend('auto');
  const product = tf.tidy(() =>
    tf
      .matMul(
        tf.tensor2d([
          [1, 2],
          [3, 4],
        ]),
        tf.tensor2d([[5], [6]]),
      )
      .arraySync(),
  );
  t.deepEqual(product, [[17], [39]]);
});
