/**
 * Parsing `--backend` values and asking for one backend by name. Its own file because it sets
 * the process-wide backend.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { getThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { BackendError, ConfigError } from '../shared/errors.ts';
import { selectBackend } from '../shared/backend/select-backend.ts';
import { parseBackendChoice } from '../shared/config/compute-options.ts';
import { wasmTrainingKernels } from '../shared/backend/wasm-kernels/index.ts';

function resolves(specifier: string): boolean {
  try {
    import.meta.resolve(specifier);
    return true;
  } catch {
    return false;
  }
}

test('every backend name parses to itself, and an absent or empty value to auto', (t) => {
  for (const name of ['auto', 'tensorflow-gpu', 'tensorflow', 'onednn', 'wasm', 'cpu'] as const) t.is(parseBackendChoice(name), name);
  t.is(parseBackendChoice(' wasm '), 'wasm');
  t.is(parseBackendChoice(undefined), 'auto');
  t.is(parseBackendChoice(''), 'auto');
});

test('an unknown backend name is a ConfigError', (t) => {
  for (const bad of ['webgl', 'WASM', 'tensorflow_gpu', 'gpu']) {
    const error = t.throws(() => parseBackendChoice(bad), { instanceOf: ConfigError });
    t.is(error?.code, 'CONFIG_INVALID');
  }
});

test.serial('asking for tensorflow without tfjs-node installed is a BackendError naming it', async (t) => {
  if (resolves('@tensorflow/tfjs-node')) {
    t.log('@tensorflow/tfjs-node is installed here; checking that it starts instead');
    t.is((await selectBackend('tensorflow')).tfName, 'tensorflow');
    return;
  }
  const before = tf.getBackend();
  const error = await t.throwsAsync(selectBackend('tensorflow'), { instanceOf: BackendError });
  t.is(error?.code, 'BACKEND_UNAVAILABLE');
  t.deepEqual(
    error?.tried.map((attempt) => [attempt.name, attempt.code]),
    [['tensorflow', 'BACKEND_MISSING']],
  );
  t.is(tf.getBackend(), before, 'a failed request leaves the current backend alone');
});

test.serial('asking for wasm starts it with the training kernels and reports the build', async (t) => {
  const selection = await selectBackend('wasm', { threads: 2 });
  t.deepEqual(selection.tried, [{ name: 'wasm' }]);
  t.is(tf.getBackend(), 'wasm');
  for (const config of wasmTrainingKernels) t.is(tf.getKernel(config.kernelName, 'wasm'), config);
  t.is(selection.threads, getThreadsCount());
});

test.serial('asking for cpu switches to it', async (t) => {
  const selection = await selectBackend('cpu');
  t.deepEqual({ name: selection.name, tried: selection.tried }, { name: 'cpu', tried: [{ name: 'cpu' }] });
  t.is(tf.getBackend(), 'cpu');
});
