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
 * 0.17 / 0.06 / 0.10 to 0.51 / 0.32 / 0.29 for 2 / 3 / 4 ranks. Worker launchers should use
 * both: `GLIBC_TUNABLES=... node --initial-old-space-size=512 --import tsx worker/main.ts`.
 */

/** Node flags for a process that runs a ring member. */
export const RING_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=512'];

/** Environment for a process that runs a ring member (glibc malloc tunables). */
export const RING_PROCESS_ENV: Readonly<Record<string, string>> = {
  GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=4294967295',
};
