/**
 * Which transport a generation's ranks all-reduce over, decided alike on every rank from what
 * the rendezvous returned (every rank's host id and ring address), and the ring connected to
 * match: shared memory when every rank is on one host; the hierarchical all-reduce (shared
 * memory within each host, a gRPC ring among the hosts' leaders) when the ranks are on several
 * hosts and some host holds more than one; the flat gRPC ring when every host holds one rank,
 * without the collective addon, or always with `--collective-transport grpc`.
 */
import { createHash } from 'node:crypto';
import { HierarchicalAllReduce } from './collective/hierarchical-allreduce.ts';
import { hostPlacement, type HostPlacement } from './collective/host-placement.ts';
import type { AllReduceTag, RingMember } from './collective/ring-allreduce.ts';
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
  /** Every rank's ring address (`host:port`), by rank. */
  addresses: readonly string[];
  rank: number;
  /** Names the run's generation in the segments' names (prefix, run id, generation). */
  scope: string;
  /** Most float32 values one all-reduce carries: the model's weights. */
  weights: number;
  timeoutMs: number;
}

/** This rank's ring member, not connected yet (chooseCollective connects it to the ring it needs, if any). */
export type ChoiceRing = Pick<RingMember, 'connect' | 'allReduceSum' | 'close'>;

/** The chosen transport. */
export interface ChosenCollective {
  sum: SumAllReduce;
  /** Releases what the choice made (shared memory); the ring member stays the caller's to close. */
  close(): Promise<void>;
  /** Which transport and why, for the log. */
  line: string;
}

/** Chooses the transport, connects `ring` as it needs, and joins this host's shared memory if it takes part. */
export async function chooseCollective(ring: ChoiceRing, choice: CollectiveChoice): Promise<ChosenCollective> {
  const flat = async (why: string): Promise<ChosenCollective> => {
    await ring.connect(choice.addresses);
    return { sum: ring, close: async () => {}, line: why };
  };
  const placement = hostPlacement(choice.hosts, choice.rank);
  if (choice.hosts.length < 2) return flat('a ring of one');
  if (choice.transport === 'grpc') return flat('gRPC ring (--collective-transport grpc)');
  if (placement.hostCount === choice.hosts.length) return flat(`gRPC ring (${placement.hostCount} ranks on as many hosts)`);
  if (collectiveAddon() === null) return flat('gRPC ring (the collective addon is not built: no shared memory)');
  if (placement.hostCount === 1) {
    const group = await joinHost(choice, placement);
    const sum = { allReduceSum: (data: Float32Array, tag: AllReduceTag) => group.allReduceSum(data, tag) };
    return { sum, close: () => group.close(), line: `shared memory (${choice.hosts.length} ranks on host ${choice.hosts[0]})` };
  }
  return chooseHierarchical(ring, choice, placement);
}

/** Shared memory within each host with more than one rank, the ring among the hosts' leaders. */
async function chooseHierarchical(ring: ChoiceRing, choice: CollectiveChoice, placement: HostPlacement): Promise<ChosenCollective> {
  const { local, leaders, hostSizes } = placement;
  const leads = local[0] === choice.rank;
  const group = local.length > 1 ? await joinHost(choice, placement) : null;
  try {
    if (leads) await ring.connect(choice.addresses, leaders);
  } catch (error) {
    // The host's other ranks would wait for this leader until their timeout.
    group?.abort();
    await group?.close();
    throw error;
  }
  const role = leads ? 'this rank leads its host' : `rank ${local[0]} leads this rank's host`;
  return {
    sum: new HierarchicalAllReduce(group, leads ? ring : null),
    close: async () => group?.close(),
    line:
      `hierarchical: shared memory within each host (${hostSizes.join(' + ')} ranks on ${hostSizes.length} hosts), ` +
      `gRPC ring among the leaders (ranks ${leaders.join(', ')}); ${role}`,
  };
}

/** Joins the shared-memory group of this rank's host (one segment per host and generation). */
function joinHost(choice: CollectiveChoice, { local }: HostPlacement): Promise<ShmAllReduce> {
  const host = choice.hosts[choice.rank];
  const name = `/fmnist-${createHash('sha256').update(`${choice.scope}\n${host}`).digest('hex').slice(0, 32)}`;
  return ShmAllReduce.join({
    name,
    rank: local.indexOf(choice.rank),
    worldSize: local.length,
    capacity: choice.weights + CAPACITY_SLACK,
    timeoutMs: choice.timeoutMs,
    ranks: local,
  });
}
