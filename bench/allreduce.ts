/**
 * `npm run bench -- allreduce [--ranks 2,3,4] [--elements 11178378] [--repeats 5]
 * [--chunk-bytes 1048576] [--tcp-bytes N] [--untuned]`
 *
 * Beside each ring, in the same run, PyTorch's gloo `all_reduce` of the same size among the
 * same number of processes (bench/pytorch_allreduce.py, Debian's python3-torch), measured the
 * same way; the table's ours/gloo is the ratio of the two median times (target: <= 1). And the
 * shared-memory all-reduce (worker/collective/shm-allreduce.ts) among as many processes, the
 * transport for ranks of one host: shm/gloo; and from 3 ranks the hierarchical all-reduce
 * (worker/collective/hierarchical-allreduce.ts) with the ranks split over two host ids (the first
 * half, rounded up, on one): shared memory within each, the gRPC ring between the two leaders:
 * hier/gloo.
 *
 * Ring all-reduce (sum) of one ResNet-18 gradient (11,178,378 float32) among 2, 3 and 4 worker
 * processes on loopback, beside the raw TCP throughput between two Node processes measured in
 * the same run (before and after the rings, to bracket the machine's noise). Figures follow
 * nccl-tests: time = the slowest rank's all-reduce time (median over repeats), algbw =
 * bytes / time, busbw = algbw * 2(n-1)/n, the traffic each rank's link carries; busbw / TCP says
 * how much of what the loopback gives the ring uses. TCP there is one way (one process only
 * sends, the other only receives); a ring rank does both, so the table also compares with TCP
 * both ways at once between two processes, measured after the rings.
 *
 * Every process (ring ranks and TCP ends alike) starts with the settings of worker/process-tuning.env
 * unless `--untuned` is given.
 */
import { fork, spawn } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { RING_NODE_FLAGS, RING_PROCESS_ENV } from '../worker/process-tuning.ts';
import type { AllReduceTimings } from '../worker/collective/ring-allreduce.ts';
import { RingProcessHandle } from '../test/helpers/ring-process-handle.ts';
import { PYTHON } from '../test/helpers/pytorch.ts';
import type { ShmMemberRequest } from '../test/helpers/shm-member-process.ts';

const RESNET18_PARAMETERS = 11_178_378;
const TCP_WRITE_BYTES = 4 << 20;

interface BenchOptions {
  ranks: number[];
  elements: number;
  repeats: number;
  chunkBytes: number;
  tcpBytes: number;
  /** How every child process starts. */
  launch: { nodeFlags: readonly string[]; env: NodeJS.ProcessEnv };
}

interface RingFigures {
  ranks: number;
  /** Per repeat, the slowest rank's all-reduce time (ms). */
  timesMs: number[];
  medianMs: number;
  algbw: number;
  busbw: number;
  rank0: AllReduceTimings;
  /** CPU time per byte of the gradient (ns/B): median over repeats of the ranks' mean CPU time in the call. */
  cpuNsPerByte: number;
  /** The same all-reduce by PyTorch's gloo, or why it could not run. */
  gloo: GlooFigures | { unavailable: string };
  /** The same all-reduce through shared memory, or why it could not run. */
  shm: GlooFigures | { unavailable: string };
  /** The same all-reduce as two hosts (hierarchical), or why it did not run (fewer than 3 ranks). */
  hierarchical: GlooFigures | { unavailable: string };
}

/** A peer transport's figures (gloo, or our shared memory). */
interface GlooFigures {
  /** Per repeat, the slowest rank's all-reduce time (ms). */
  timesMs: number[];
  medianMs: number;
}

const PYTORCH_ALLREDUCE = fileURLToPath(new URL('./pytorch_allreduce.py', import.meta.url));
const SHM_MEMBER = fileURLToPath(new URL('../test/helpers/shm-member-process.ts', import.meta.url));

export async function runBenchmark(argv: string[]): Promise<void> {
  const options = parseOptions(argv);
  const bytes = options.elements * 4;
  print(
    `all-reduce of ${options.elements} float32 (${(bytes / 1e6).toFixed(1)} MB), chunks of ${options.chunkBytes} B, ${options.repeats} repeats after 1 warm-up`,
  );
  print(
    `machine: ${availableParallelism()} cores, load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const tuning =
    options.launch.nodeFlags.length > 0
      ? `node ${options.launch.nodeFlags.join(' ')}, GLIBC_TUNABLES=${options.launch.env.GLIBC_TUNABLES}`
      : 'none (--untuned)';
  print(`process tuning: ${tuning}`);
  const tcpBefore = await measureTcp(options.tcpBytes, options.launch);
  print(`raw TCP loopback, 2 processes, ${options.tcpBytes} B in ${TCP_WRITE_BYTES} B writes: ${gbps(tcpBefore)} GB/s`);
  const rings: RingFigures[] = [];
  for (const ranks of options.ranks) {
    const figures = await measureRing(ranks, options);
    rings.push(figures);
    print(
      `  n=${ranks}: gRPC ring ${figures.timesMs.map((t) => t.toFixed(0)).join(' ')} ms; gloo ${describeTimes(figures.gloo)}; shared memory ${describeTimes(figures.shm)}; ` +
        `two hosts ${describeTimes(figures.hierarchical)}`,
    );
  }
  const tcpAfter = await measureTcp(options.tcpBytes, options.launch);
  const tcp = (tcpBefore + tcpAfter) / 2;
  print(`raw TCP again: ${gbps(tcpAfter)} GB/s; mean ${gbps(tcp)} GB/s`);
  const duplex = await measureDuplexTcp(options.tcpBytes, options.launch);
  print(`raw TCP both ways at once (each process sends and receives, as a ring rank does): ${gbps(duplex)} GB/s each way`);
  print(
    `load average now ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  printTable(rings, tcp, duplex);
}

function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      ranks: { type: 'string', default: '2,3,4' },
      elements: { type: 'string', default: String(RESNET18_PARAMETERS) },
      repeats: { type: 'string', default: '5' },
      'chunk-bytes': { type: 'string', default: String(1 << 20) },
      'tcp-bytes': { type: 'string' },
      untuned: { type: 'boolean', default: false },
    },
  });
  const elements = positiveInteger('--elements', values.elements);
  return {
    ranks: values.ranks.split(',').map((r) => positiveInteger('--ranks', r)),
    elements,
    repeats: positiveInteger('--repeats', values.repeats),
    chunkBytes: positiveInteger('--chunk-bytes', values['chunk-bytes']),
    tcpBytes: values['tcp-bytes'] === undefined ? 4 * elements * 4 : positiveInteger('--tcp-bytes', values['tcp-bytes']),
    launch: values.untuned ? { nodeFlags: [], env: process.env } : { nodeFlags: RING_NODE_FLAGS, env: { ...process.env, ...RING_PROCESS_ENV } },
  };
}

function positiveInteger(flag: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} wants a positive integer, got ${JSON.stringify(text)}`);
  return value;
}

/** `ranks` ring members in their own processes, servers started; their addresses. */
async function startMembers(ranks: number, options: BenchOptions): Promise<{ processes: RingProcessHandle[]; peers: string[] }> {
  const processes = Array.from({ length: ranks }, () => RingProcessHandle.fork(options.launch.nodeFlags, options.launch.env));
  const ringOptions = (rank: number) => ({ rank, worldSize: ranks, chunkBytes: options.chunkBytes, authToken: 'bench', timeoutMs: 120_000 });
  try {
    const started = await Promise.all(processes.map((p, rank) => p.request({ type: 'start', options: ringOptions(rank) }, 'started')));
    return { processes, peers: started.map((s) => s.address) };
  } catch (error) {
    await Promise.all(processes.map((p) => p.stop()));
    throw error;
  }
}

async function measureRing(ranks: number, options: BenchOptions): Promise<RingFigures> {
  const { processes, peers } = await startMembers(ranks, options);
  try {
    await Promise.all(processes.map((p) => p.request({ type: 'connect', peers }, 'connected')));
    await allReduceEverywhere(processes, options.elements, 0, 1);
    const replies = await allReduceEverywhere(processes, options.elements, 1, options.repeats);
    const results = replies.map((r) => r.timings);
    const cpuMs = replies[0].cpuMs.map((_, i) => replies.reduce((sum, r) => sum + r.cpuMs[i], 0) / ranks);
    const cpuNsPerByte = (median(cpuMs) * 1e6) / (options.elements * 4);
    const timesMs = results[0].map((_, i) => Math.max(...results.map((perRank) => perRank[i].totalMs)));
    const medianMs = median(timesMs);
    const algbw = (options.elements * 4) / (medianMs / 1000);
    const rank0 = results[0][timesMs.indexOf(medianMs)];
    await Promise.all(processes.map((p) => p.stop()));
    const unavailable = (error: unknown) => ({ unavailable: error instanceof Error ? error.message : String(error) });
    const gloo = await measureGloo(ranks, options).catch(unavailable);
    const shm = await measureShm(ranks, options).catch(unavailable);
    const hierarchical = ranks < 3 ? { unavailable: 'two hosts need 3 ranks or more' } : await measureTwoHosts(ranks, options).catch(unavailable);
    return { ranks, timesMs, medianMs, algbw, busbw: (algbw * 2 * (ranks - 1)) / ranks, rank0, cpuNsPerByte, gloo, shm, hierarchical };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
  }
}

/** PyTorch gloo's all_reduce among `ranks` processes, right after ours with the same size and repeats. */
async function measureGloo(ranks: number, options: BenchOptions): Promise<GlooFigures> {
  const port = await freePort();
  const args = (rank: number) => [
    PYTORCH_ALLREDUCE,
    '--rank',
    String(rank),
    '--world-size',
    String(ranks),
    '--port',
    String(port),
    '--elements',
    String(options.elements),
    '--repeats',
    String(options.repeats),
  ];
  const env = { ...process.env, OMP_NUM_THREADS: '1' };
  const results = await Promise.all(Array.from({ length: ranks }, (_, rank) => runPython(args(rank), env)));
  const perRank = results.map((text) => (JSON.parse(text) as { times_ms: number[] }).times_ms);
  const timesMs = perRank[0].map((_, i) => Math.max(...perRank.map((times) => times[i])));
  return { timesMs, medianMs: median(timesMs) };
}

/** Our shared-memory all-reduce among `ranks` processes (test/helpers/shm-member-process.ts), same size and repeats. */
async function measureShm(ranks: number, options: BenchOptions): Promise<GlooFigures> {
  const name = `/fmnist-bench-${process.pid}-${ranks}`;
  const spawnOptions = { execArgv: ['--import', 'tsx', ...options.launch.nodeFlags], env: options.launch.env };
  const members = Array.from({ length: ranks }, (_, rank) =>
    fork(SHM_MEMBER, [JSON.stringify({ name, rank, worldSize: ranks, capacity: options.elements })], spawnOptions),
  );
  try {
    const next = () =>
      Promise.all(
        members.map(
          (m) =>
            new Promise<unknown>((resolve, reject) => {
              m.once('message', resolve);
              m.once('exit', (code) => reject(new Error(`shared-memory rank exited (${code})`)));
            }),
        ),
      );
    await next(); // joined
    const run = async (repeats: number) => {
      const replies = next();
      members.forEach((m, rank) => m.send({ seed: rank + 1, repeats } satisfies ShmMemberRequest));
      return ((await replies) as Array<{ timesMs: number[] }>).map((r) => r.timesMs);
    };
    await run(1);
    const perRank = await run(options.repeats);
    const timesMs = perRank[0].map((_, i) => Math.max(...perRank.map((times) => times[i])));
    return { timesMs, medianMs: median(timesMs) };
  } finally {
    for (const m of members) m.kill();
  }
}

/**
 * The hierarchical all-reduce among `ranks` processes as the workers choose it for two host ids
 * (the first ceil(ranks/2) ranks on host A), same size and repeats.
 */
async function measureTwoHosts(ranks: number, options: BenchOptions): Promise<GlooFigures> {
  const { processes, peers } = await startMembers(ranks, options);
  try {
    const hosts = Array.from({ length: ranks }, (_, rank) => (rank < Math.ceil(ranks / 2) ? 'A' : 'B'));
    const choice = {
      transport: 'auto' as const,
      hosts,
      addresses: peers,
      scope: `bench/${process.pid}/${ranks}`,
      weights: options.elements,
      timeoutMs: 120_000,
    };
    const chosen = await Promise.all(processes.map((p) => p.request({ type: 'choose', choice }, 'chosen')));
    if (!chosen[0].line.startsWith('hierarchical')) throw new Error(`not hierarchical: ${chosen[0].line}`);
    await allReduceEverywhere(processes, options.elements, 0, 1);
    const perRank = (await allReduceEverywhere(processes, options.elements, 1, options.repeats)).map((r) => r.timings.map((t) => t.totalMs));
    const timesMs = perRank[0].map((_, i) => Math.max(...perRank.map((times) => times[i])));
    return { timesMs, medianMs: median(timesMs) };
  } finally {
    await Promise.all(processes.map((p) => p.stop()));
  }
}

function describeTimes(figures: GlooFigures | { unavailable: string }): string {
  return 'unavailable' in figures ? figures.unavailable : `${figures.timesMs.map((t) => t.toFixed(0)).join(' ')} ms`;
}

/** Runs /usr/bin/python3 with `args`; its stdout's last line, or a rejection saying why it failed. */
function runPython(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', (error) => reject(new Error(`${PYTHON}: ${error.message}`)));
    child.on('close', (code) => {
      const lines = stdout.trim().split('\n');
      if (code === 0) resolve(lines[lines.length - 1]);
      else reject(new Error(`gloo rank exited with ${code}: ${stderr.trim().split('\n').pop() ?? ''}`));
    });
  });
}

/** A loopback port nothing listens on right now, for gloo's rendezvous. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Runs `repeats` all-reduces on every rank; per rank, its timings. */
async function allReduceEverywhere(
  processes: RingProcessHandle[],
  length: number,
  step: number,
  repeats: number,
): Promise<Array<{ timings: AllReduceTimings[]; cpuMs: number[] }>> {
  const tag = { runId: 'bench', generation: 0, step, purpose: 'gradients' };
  processes.forEach((p, rank) => p.send({ type: 'all-reduce', length, seed: rank + 1, tag, repeats }));
  return Promise.all(
    processes.map(async (p) => {
      await p.next(); // all-reduce-started
      const reply = await p.next();
      if (reply.type !== 'all-reduced') throw new Error(`all-reduce failed: ${JSON.stringify(reply)}`);
      return { timings: reply.timings, cpuMs: reply.cpuMs };
    }),
  );
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function printTable(rings: RingFigures[], tcp: number, duplex: number): void {
  print('');
  print('CPU ns/B: CPU time of a rank during one all-reduce (every thread), per byte of the gradient; less load-sensitive than the times');
  print(
    'ranks  time ms  gloo ms  ours/gloo  shm ms  shm/gloo  hier ms  hier/gloo  CPU ns/B  algbw GB/s  busbw GB/s  busbw/TCP  busbw/duplex   rank 0: reduce-scatter / all-gather / apply ms',
  );
  for (const r of rings) {
    const t = r.rank0;
    const glooMs = 'unavailable' in r.gloo ? '-' : r.gloo.medianMs.toFixed(1);
    const ratio = 'unavailable' in r.gloo ? '-' : (r.medianMs / r.gloo.medianMs).toFixed(2);
    const shmMs = 'unavailable' in r.shm ? '-' : r.shm.medianMs.toFixed(1);
    const shmRatio = 'unavailable' in r.shm || 'unavailable' in r.gloo ? '-' : (r.shm.medianMs / r.gloo.medianMs).toFixed(2);
    const hierMs = 'unavailable' in r.hierarchical ? '-' : r.hierarchical.medianMs.toFixed(1);
    const hierRatio = 'unavailable' in r.hierarchical || 'unavailable' in r.gloo ? '-' : (r.hierarchical.medianMs / r.gloo.medianMs).toFixed(2);
    print(
      `${String(r.ranks).padStart(5)}  ${r.medianMs.toFixed(1).padStart(7)}  ${glooMs.padStart(7)}  ${ratio.padStart(9)}  ${shmMs.padStart(6)}  ${shmRatio.padStart(8)}  ${hierMs.padStart(7)}  ${hierRatio.padStart(9)}  ${r.cpuNsPerByte.toFixed(2).padStart(8)}  ${gbps(r.algbw).padStart(10)}  ${gbps(r.busbw).padStart(10)}  ${(r.busbw / tcp).toFixed(3).padStart(9)}  ${(r.busbw / duplex).toFixed(3).padStart(12)}   ` +
        `${t.reduceScatterMs.toFixed(0)} / ${t.allGatherMs.toFixed(0)} / ${t.applyMs.toFixed(0)}`,
    );
  }
}

function gbps(bytesPerSecond: number): string {
  return (bytesPerSecond / 1e9).toFixed(3);
}

function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

// ---- raw TCP between two processes ----

const SELF = fileURLToPath(import.meta.url);

/** Bytes per second from a source process to a sink process over loopback TCP (median of 3). */
function measureTcp(totalBytes: number, launch: BenchOptions['launch']): Promise<number> {
  return medianOfThree(() => tcpOnce(totalBytes, launch));
}

async function medianOfThree(measure: () => Promise<number>): Promise<number> {
  const rates: number[] = [];
  for (let i = 0; i < 3; i += 1) rates.push(await measure());
  return median(rates);
}

async function tcpOnce(totalBytes: number, launch: BenchOptions['launch']): Promise<number> {
  const spawnOptions = { execArgv: ['--import', 'tsx', ...launch.nodeFlags], env: launch.env };
  const sink = fork(SELF, ['tcp-sink'], spawnOptions);
  try {
    const port = await new Promise<number>((resolve) => sink.once('message', (m: { port: number }) => resolve(m.port)));
    const result = new Promise<{ bytes: number; ms: number }>((resolve) => sink.once('message', resolve));
    const source = fork(SELF, ['tcp-source', String(port), String(totalBytes)], spawnOptions);
    const { bytes, ms } = await result;
    await new Promise((resolve) => source.once('exit', resolve));
    if (bytes !== totalBytes) throw new Error(`TCP sink got ${bytes} of ${totalBytes} bytes`);
    return bytes / (ms / 1000);
  } finally {
    sink.kill();
  }
}

/**
 * Bytes per second in each direction when two processes send to each other at the same time,
 * as each ring rank both sends and receives (median of 3; per run, the slower direction).
 */
function measureDuplexTcp(totalBytes: number, launch: BenchOptions['launch']): Promise<number> {
  return medianOfThree(() => duplexTcpOnce(totalBytes, launch));
}

async function duplexTcpOnce(totalBytes: number, launch: BenchOptions['launch']): Promise<number> {
  const spawnOptions = { execArgv: ['--import', 'tsx', ...launch.nodeFlags], env: launch.env };
  const peers = [0, 1].map(() => fork(SELF, ['tcp-peer'], spawnOptions));
  try {
    const ports = await Promise.all(peers.map((peer) => new Promise<number>((resolve) => peer.once('message', (m: { port: number }) => resolve(m.port)))));
    const results = peers.map((peer) => new Promise<{ bytes: number; ms: number }>((resolve) => peer.once('message', resolve)));
    peers.forEach((peer, i) => peer.send({ port: ports[1 - i], total: totalBytes }));
    const received = await Promise.all(results);
    for (const { bytes } of received) if (bytes !== totalBytes) throw new Error(`TCP peer got ${bytes} of ${totalBytes} bytes`);
    return totalBytes / (Math.max(...received.map((r) => r.ms)) / 1000);
  } finally {
    for (const peer of peers) peer.kill();
  }
}

/** A sink and, once told where, a source: both directions of the duplex measurement. */
function runTcpPeer(): void {
  runTcpSink();
  process.once('message', ({ port, total }: { port: number; total: number }) => runTcpSource(port, total, () => {}));
}

/** Counts bytes from the first one received to the end of the stream. */
function runTcpSink(): void {
  const server = net.createServer((socket) => {
    let bytes = 0;
    let first = 0;
    socket.on('data', (chunk: Buffer) => {
      if (bytes === 0) first = performance.now();
      bytes += chunk.length;
    });
    socket.on('end', () => {
      process.send?.({ bytes, ms: performance.now() - first });
      server.close();
    });
  });
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as net.AddressInfo).port }));
}

/** Writes `total` bytes in big writes, respecting backpressure, then calls `done`. */
function runTcpSource(port: number, total: number, done: () => void = () => process.exit(0)): void {
  const block = Buffer.alloc(TCP_WRITE_BYTES, 1);
  const socket = net.connect(port, '127.0.0.1', () => {
    let sent = 0;
    const pump = (): void => {
      while (sent < total) {
        const piece = Math.min(block.length, total - sent);
        sent += piece;
        if (!socket.write(piece === block.length ? block : block.subarray(0, piece))) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end(done);
    };
    pump();
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [role, port, total] = process.argv.slice(2);
  if (role === 'tcp-sink') runTcpSink();
  else if (role === 'tcp-source') runTcpSource(Number(port), Number(total));
  else if (role === 'tcp-peer') runTcpPeer();
}
