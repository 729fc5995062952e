/**
 * Registering the onednn backend: it registers every cpu kernel plus the native ones, applies
 * the thread count, rejects bad options with ConfigError, and (in child processes pointed at a
 * missing or broken addon file) resolves to false without throwing.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { ConfigError } from '../shared/errors.ts';
import { loadAddon } from '../shared/backend/onednn/addon.ts';
import { ONEDNN_BACKEND_NAME, onednnAvailable, registerOnednnBackend } from '../shared/backend/onednn/register.ts';

const run = promisify(execFile);
const REGISTER_MODULE = pathToFileURL(path.resolve('shared/backend/onednn/register.ts')).href;
// The child script lives in a temporary directory, so it imports packages by absolute path.
const TFJS_CORE = pathToFileURL(createRequire(import.meta.url).resolve('@tensorflow/tfjs-core')).href;

/** Runs registerOnednnBackend in a fresh Node process with `env` and returns what it reported. */
async function registerInChild(env: NodeJS.ProcessEnv): Promise<{ registered: boolean; available: boolean; code: string; reason: string; backends: string[] }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'onednn-register-'));
  try {
    const script = path.join(dir, 'child.mts');
    await writeFile(
      script,
      [
        `const tf = await import(${JSON.stringify(TFJS_CORE)});`,
        `const m = await import(${JSON.stringify(REGISTER_MODULE)});`,
        `const registered = await m.registerOnednnBackend({ threads: 1 });`,
        `console.log(JSON.stringify({ registered, available: m.onednnAvailable(), code: m.onednnUnavailableCode(), reason: m.onednnUnavailableReason(), backends: Object.keys(tf.engine().registryFactory) }));`,
      ].join('\n'),
    );
    const { stdout } = await run(process.execPath, ['--import', 'tsx', script], { env: { ...process.env, ...env }, cwd: process.cwd() });
    return JSON.parse(stdout.trim().split('\n').pop()!) as Awaited<ReturnType<typeof registerInChild>>;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test.serial('registration copies every cpu kernel, adds the native ones and applies the thread count', async (t) => {
  t.true(await registerOnednnBackend({ threads: 2 }), 'the addon must be built (CI installs libdnnl-dev)');
  t.true(onednnAvailable());
  t.is(loadAddon()!.threads(), 2);
  t.true(await registerOnednnBackend({ threads: 1 }), 'a second call is harmless');
  t.is(loadAddon()!.threads(), 1);
  const cpu = new Set(tf.getKernelsForBackend('cpu').map((k) => k.kernelName));
  const onednn = new Set(tf.getKernelsForBackend(ONEDNN_BACKEND_NAME).map((k) => k.kernelName));
  t.deepEqual(
    [...cpu].filter((k) => !onednn.has(k)),
    [],
  );
  t.true(onednn.has('OnednnBatchNormTraining'));
  await tf.setBackend(ONEDNN_BACKEND_NAME);
  t.deepEqual(
    tf.tidy(() => tf.add(tf.tensor1d([1, 2]), tf.tensor1d([3, 4])).arraySync()),
    [4, 6],
  );
  await tf.setBackend('cpu');
});

test('bad options are a ConfigError', async (t) => {
  for (const threads of [0, -1, 1.5]) {
    const error = await t.throwsAsync(registerOnednnBackend({ threads }), { instanceOf: ConfigError });
    t.is(error?.code, 'CONFIG_INVALID');
  }
  await t.throwsAsync(registerOnednnBackend({ maxPooledBytes: -1 }), { instanceOf: ConfigError });
});

test('a missing addon resolves to false without registering anything', async (t) => {
  const result = await registerInChild({ ONEDNN_ADDON_PATH: path.join(tmpdir(), 'no-such-dir', 'onednn_backend.node') });
  t.false(result.registered);
  t.false(result.available);
  t.is(result.code, 'ONEDNN_ADDON_MISSING');
  t.true(result.reason.includes(path.join(tmpdir(), 'no-such-dir')), `the reason names the file: ${result.reason}`);
  t.false(result.backends.includes(ONEDNN_BACKEND_NAME));
});

test('an addon that fails to load resolves to false and reports why', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'onednn-broken-'));
  try {
    const broken = path.join(dir, 'onednn_backend.node');
    await writeFile(broken, 'not a shared object');
    const result = await registerInChild({ ONEDNN_ADDON_PATH: broken });
    t.false(result.registered);
    t.false(result.available);
    t.is(result.code, 'ONEDNN_ADDON_LOAD_FAILED', result.reason);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
