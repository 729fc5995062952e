#!/usr/bin/env node
/**
 * Builds the native addons with node-gyp from binding.gyp: the collective's helpers
 * (build/Release/collective_native.node: only g++ and node-addon-api) and, when oneDNN's
 * headers are there, the oneDNN backend (build/Release/onednn_backend.node).
 *
 *   node scripts/build-native.mjs             build; exit 1 when oneDNN is missing or a build fails
 *   node scripts/build-native.mjs --optional  for `npm install`: without oneDNN's headers build
 *                                             the collective addon alone, and report a failed
 *                                             build without failing (exit 0)
 *
 * oneDNN comes from the system (Debian/Ubuntu: `apt-get install libdnnl-dev`, which provides
 * /usr/include/dnnl.hpp and libdnnl.so): dnnl.hpp is looked for in /usr/include and
 * /usr/local/include, or only in DNNL_INCLUDE_DIR when that is set (the tests point it at an
 * empty folder to see the script without oneDNN). Node's headers are taken from
 * /usr/include/node when present (Debian's nodejs package), so the build works offline;
 * otherwise node-gyp uses its own header cache or download. Whatever happens, the script says
 * so in one line on stderr (plus node-gyp's own output when it runs).
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
const withoutOnednn = header ? '' : `; oneDNN headers not found (dnnl.hpp in ${DNNL_HEADER_DIRS.join(', ')}): install libdnnl-dev for the onednn backend`;

function resolveNodeGyp() {
  try {
    return createRequire(import.meta.url).resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return finish(false, `node-gyp is not installed (it is a dependency: run npm ci); no native addon${withoutOnednn}`);
  }
}

const nodeGyp = resolveNodeGyp();
const args = [nodeGyp, 'rebuild'];
// Debian's nodejs ships its headers in /usr/include/node; node-gyp expects <nodedir>/include/node.
const systemNodeDir = path.resolve(path.dirname(process.execPath), '..');
if (existsSync(path.join(systemNodeDir, 'include', 'node', 'node_api.h'))) args.push(`--nodedir=${systemNodeDir}`);
const jobs = process.env.JOBS ?? '2';
args.push(`--jobs=${jobs}`);
// binding.gyp leaves the oneDNN target out when told so.
if (!header) args.push('--', '-Dwith_onednn=false');

const built = (name) => existsSync(path.join(root, 'build', 'Release', name));
const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
if (result.status !== 0 || !built('collective_native.node')) {
  finish(false, `node-gyp ${args.slice(1).join(' ')} failed (exit ${result.status ?? result.signal}); the native addons are unavailable${withoutOnednn}`);
}
if (!header) finish(false, `built build/Release/collective_native.node only${withoutOnednn}`);
if (!built('onednn_backend.node')) finish(false, 'built build/Release/collective_native.node; onednn_backend.node is missing');
finish(true, `using ${header}; built build/Release/collective_native.node and onednn_backend.node`);
