/**
 * scripts/build-native.mjs without what it needs: `--optional` (npm install) skips with exit 0
 * and says why on one line; `npm run build:native` fails with exit 1. The script runs from a
 * copy in a temporary folder, whose parent it takes as the repository root: whatever it does,
 * the checkout's build/ (shared by every worktree) is never touched.
 */
import { spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { REPO_ROOT } from './helpers/cli.ts';

interface ScriptRun {
  code: number | null;
  stderrLines: string[];
  /** What the script left in its (temporary) repository root besides itself. */
  rootEntries: string[];
}

/** Runs a copy of the script with DNNL_INCLUDE_DIR set to `includeDir`. */
async function runScript(t: import('ava').ExecutionContext, includeDir: string, args: string[]): Promise<ScriptRun> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'fmnist-build-native-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(path.join(root, 'scripts'));
  const script = path.join(root, 'scripts', 'build-native.mjs');
  await copyFile(path.join(REPO_ROOT, 'scripts', 'build-native.mjs'), script);
  const { NODE_PATH: _, ...env } = process.env;
  const child = spawn(process.execPath, [script, ...args], { cwd: root, env: { ...env, DNNL_INCLUDE_DIR: includeDir }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const rootEntries = (await readdir(root)).filter((entry) => entry !== 'scripts');
  return { code, stderrLines: stderr.trim().split('\n'), rootEntries };
}

async function emptyDir(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fmnist-no-dnnl-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('without oneDNN headers, --optional skips with exit 0 and one line naming where it looked', async (t) => {
  const includeDir = await emptyDir(t);
  const run = await runScript(t, includeDir, ['--optional']);
  t.is(run.code, 0);
  t.is(run.stderrLines.length, 1, run.stderrLines.join('\n'));
  t.true(run.stderrLines[0].startsWith('build-native: '));
  t.true(run.stderrLines[0].includes(includeDir), run.stderrLines[0]);
  t.deepEqual(run.rootEntries, [], 'nothing was built');
});

test('without oneDNN headers, a build that was asked for fails with exit 1 and the same line', async (t) => {
  const includeDir = await emptyDir(t);
  const run = await runScript(t, includeDir, []);
  t.is(run.code, 1);
  t.is(run.stderrLines.length, 1, run.stderrLines.join('\n'));
  t.true(run.stderrLines[0].includes(includeDir), run.stderrLines[0]);
  t.deepEqual(run.rootEntries, []);
});

test('with the headers but no node-gyp to build with, --optional still exits 0 and the build fails with 1, each with one line', async (t) => {
  const includeDir = await emptyDir(t);
  await writeFile(path.join(includeDir, 'dnnl.hpp'), '// a stand-in: only its presence is checked\n');
  const optional = await runScript(t, includeDir, ['--optional']);
  t.is(optional.code, 0);
  t.is(optional.stderrLines.length, 1, optional.stderrLines.join('\n'));
  t.true(optional.stderrLines[0].startsWith('build-native: '));
  const strict = await runScript(t, includeDir, []);
  t.is(strict.code, 1);
  t.is(strict.stderrLines.length, 1, strict.stderrLines.join('\n'));
  t.deepEqual([...optional.rootEntries, ...strict.rootEntries], []);
});
