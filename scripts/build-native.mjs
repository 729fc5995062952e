#!/usr/bin/env node
/**
 * Builds the oneDNN addon (build/Release/onednn_backend.node) with node-gyp from binding.gyp.
 *
 *   node scripts/build-native.mjs             build; exit 1 when oneDNN is missing or the build fails
 *   node scripts/build-native.mjs --optional  for `npm install`: skip (exit 0) without oneDNN's
 *                                             headers, and report a failed build without failing
 *
 * oneDNN comes from the system (Debian/Ubuntu: `apt-get install libdnnl-dev`, which provides
 * /usr/include/dnnl.hpp and libdnnl.so): dnnl.hpp is looked for in /usr/include and
 * /usr/local/include, or only in DNNL_INCLUDE_DIR when that is set (the tests point it at an
 * empty folder to see the script without oneDNN). Node's headers are taken from
 * /usr/include/node when present (Debian's nodejs package), so the build works offline;
 * otherwise node-gyp uses its own header cache or download.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const optional = process.argv.includes('--optional');
const DNNL_HEADER_DIRS = process.env.DNNL_INCLUDE_DIR ? [process.env.DNNL_INCLUDE_DIR] : ['/usr/include', '/usr/local/include'];

function log(message) {
  process.stderr.write(`build-native: ${message}\n`);
}

function finish(ok, message) {
  log(ok || !optional ? message : `${message}; skipped (optional build)`);
  process.exit(ok || optional ? 0 : 1);
}

const header = DNNL_HEADER_DIRS.map((dir) => path.join(dir, 'dnnl.hpp')).find((file) => existsSync(file));
if (!header) {
  finish(false, `oneDNN headers not found (dnnl.hpp in ${DNNL_HEADER_DIRS.join(', ')}); install libdnnl-dev to build the onednn backend`);
}

function resolveNodeGyp() {
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return finish(false, 'node-gyp is not installed (it is a dependency: run npm ci); the onednn backend is unavailable');
  }
}

const nodeGyp = resolveNodeGyp();
const args = [nodeGyp, 'rebuild'];
// Debian's nodejs ships its headers in /usr/include/node; node-gyp expects <nodedir>/include/node.
const systemNodeDir = path.resolve(path.dirname(process.execPath), '..');
if (existsSync(path.join(systemNodeDir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${systemNodeDir}`);
const jobs = process.env.JOBS ?? '2';
args.push(`--jobs=${jobs}`);

log(`using ${header}; running node-gyp ${args.slice(1).join(' ')}`);
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status === 0 && existsSync(path.join(root, 'build', 'Release', 'onednn_backend.node'))) {
  finish(true, 'built build/Release/onednn_backend.node');
}
finish(false, `node-gyp failed (exit ${result.status ?? result.signal}); the onednn backend is unavailable`);
