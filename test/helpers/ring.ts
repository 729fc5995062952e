import { RingMember, type RingOptions } from '../../worker/collective/ring-allreduce.ts';

/** The token the test rings share. */
export const TEST_TOKEN = 'ring-test-token';

/** N members on loopback port 0, connected into a ring (closed again if connecting fails). */
export async function startRing(worldSize: number, options: Partial<RingOptions> = {}): Promise<RingMember[]> {
  const members = await Promise.all(Array.from({ length: worldSize }, (_, rank) => RingMember.start({ rank, worldSize, authToken: TEST_TOKEN, ...options })));
  const peers = members.map((member) => member.address);
  try {
    await Promise.all(members.map((member) => member.connect(peers)));
  } catch (error) {
    await Promise.all(members.map((member) => member.close()));
    throw error;
  }
  return members;
}

/**
 * The ring's result, computed independently: segment k = [floor(kL/N), floor((k+1)L/N)) is
 * summed in float32 starting with rank k's values and adding rank k+1's, k+2's ... in ring order.
 */
export function ringOrderSum(inputs: Float32Array[]): Float32Array {
  const n = inputs.length;
  const length = inputs[0].length;
  const out = new Float32Array(length);
  for (let k = 0; k < n; k += 1) {
    const end = Math.floor(((k + 1) * length) / n);
    for (let i = Math.floor((k * length) / n); i < end; i += 1) {
      let sum = inputs[k][i];
      for (let s = 1; s < n; s += 1) sum = Math.fround(sum + inputs[(k + s) % n][i]);
      out[i] = sum;
    }
  }
  return out;
}

/**
 * The hierarchical all-reduce's result, computed independently: each host's ranks (ascending)
 * summed in ring order among them, then the host sums (hosts ordered by their lowest rank)
 * summed in ring order among the hosts.
 */
export function hierarchicalOrderSum(inputs: Float32Array[], hosts: readonly string[]): Float32Array {
  const byHost = new Map<string, Float32Array[]>();
  inputs.forEach((values, rank) => byHost.set(hosts[rank], [...(byHost.get(hosts[rank]) ?? []), values]));
  return ringOrderSum([...byHost.values()].map((group) => ringOrderSum(group)));
}
