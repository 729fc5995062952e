/**
 * Process start-up settings that make the ring faster; they cannot be changed from inside a
 * running process, so whoever launches a worker (or a benchmark child) passes them.
 *
 * Every byte the ring moves is copied into fresh Buffers several times by grpc-js and Node's
 * HTTP/2 (serialise, frame, socket read, message reassembly): ~4 allocations per byte per hop.
 * Measured on the 2-core development VM, all-reduce of 44.7 MB between 2 processes:
 * - V8 counts those Buffers against a small initial old-generation limit and runs a full
 *   mark-compact every ~40 ms (17 per 3 all-reduces); starting with a 512 MB old space brings
 *   that to 1-2 and the all-reduce from ~300 to ~190 ms.
 * - glibc returns freed 1 MiB blocks to the kernel and page-faults them back in on the next
 *   allocation, which is costly on a VM; keeping them (no mmap for blocks < 256 MiB, no trim)
 *   takes another ~25% off.
 * Together, `npm run bench -- allreduce` (busbw / raw TCP, same run, quiet machine) went from
 * 0.17 / 0.06 / 0.10 to 0.51 / 0.32 / 0.29 for 2 / 3 / 4 ranks.
 *
 * The settings themselves live in process-tuning.env, the one place that both package.json's
 * `worker` script (a shell line that sources it and execs node, so no launcher process sits
 * between npm and the worker and signals reach the worker as before) and the TypeScript
 * launchers (`launch --local`, the benchmarks) read.
 */
import { readFileSync } from 'node:fs';
import { parseEnv } from 'node:util';

const { WORKER_NODE_FLAGS = '', ...environment } = parseEnv(readFileSync(new URL('./process-tuning.env', import.meta.url), 'utf8'));

/** Node flags for a process that runs a ring member (WORKER_NODE_FLAGS of process-tuning.env). */
export const RING_NODE_FLAGS: readonly string[] = WORKER_NODE_FLAGS.split(/\s+/).filter((flag) => flag !== '');

/** Environment for a process that runs a ring member (glibc malloc tunables): the other keys of process-tuning.env. */
export const RING_PROCESS_ENV: Readonly<Record<string, string>> = environment as Record<string, string>;
