/**
 * Which transport a generation's ranks all-reduce over, decided alike on every rank from what
 * the rendezvous returned: shared memory when every rank is on this host (same host id), the
 * addon is built and the transport is not forced to gRPC; the gRPC ring otherwise (ranks on
 * several hosts use the ring throughout: the hierarchical all-reduce is not built yet).
 */
import { createHash } from 'node:crypto';
import type { AllReduceTag } from './collective/ring-allreduce.ts';
import { collectiveAddon } from './collective/native-collective.ts';
import { ShmAllReduce } from './collective/shm-allreduce.ts';
import type { SumAllReduce } from './ring-collective.ts';
import type { CollectiveTransport } from './worker-options.ts';

/** The values beyond the gradient one all-reduce of a step may carry (stop votes, figures). */
const CAPACITY_SLACK = 4096;

export interface CollectiveChoice {
  transport: CollectiveTransport;
  /** Every rank's host id, by rank. */
  hosts: readonly string[];
  rank: number;
  /** Names the run's generation in the segment's name (prefix, run id, generation). */
  scope: string;
  /** Most float32 values one all-reduce carries: the model's weights. */
  weights: number;
  timeoutMs: number;
}

/** The transport chosen, and a line for the log saying which and why. */
export async function chooseCollective(ring: SumAllReduce, choice: CollectiveChoice): Promise<{ sum: SumAllReduce; close(): Promise<void>; line: string }> {
  const ringOnly = { sum: ring, close: async () => {} };
  if (choice.hosts.length < 2) return { ...ringOnly, line: 'a ring of one' };
  if (choice.transport === 'grpc') return { ...ringOnly, line: 'gRPC ring (--collective-transport grpc)' };
  if (new Set(choice.hosts).size > 1) return { ...ringOnly, line: `gRPC ring (ranks on ${new Set(choice.hosts).size} hosts)` };
  if (collectiveAddon() === null) return { ...ringOnly, line: 'gRPC ring (the collective addon is not built: no shared memory)' };
  const name = `/fmnist-${createHash('sha256').update(choice.scope).digest('hex').slice(0, 32)}`;
  const group = await ShmAllReduce.join({
    name,
    rank: choice.rank,
    worldSize: choice.hosts.length,
    capacity: choice.weights + CAPACITY_SLACK,
    timeoutMs: choice.timeoutMs,
  });
  const sum = { allReduceSum: (data: Float32Array, tag: AllReduceTag) => group.allReduceSum(data, tag.float16Values) };
  return { sum, close: () => group.close(), line: `shared memory (${choice.hosts.length} ranks on host ${choice.hosts[0]})` };
}
