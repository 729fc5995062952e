/**
 * Where the ranks of a generation sit, from every rank's host id (the rendezvous): which ranks
 * share this rank's host, and which rank leads each host. Every rank computes it from the same
 * list, so all agree on the groups, the leaders and so on the order of every sum.
 */

/** One rank's view of the placement. */
export interface HostPlacement {
  /** Hosts with at least one rank. */
  hostCount: number;
  /** Ranks per host, hosts ordered by their leader. */
  hostSizes: number[];
  /** The ranks on this rank's host, ascending (this rank among them); the first leads the host. */
  local: number[];
  /** Each host's leader (its lowest rank), ascending: the members of the leaders' ring. */
  leaders: number[];
}

/** The placement seen by `rank`, from `hosts[r]` = rank r's host id. */
export function hostPlacement(hosts: readonly string[], rank: number): HostPlacement {
  // Ranks ascending per host, hosts in the order of their lowest rank (Map keeps insertion order).
  const byHost = new Map<string, number[]>();
  hosts.forEach((host, r) => {
    const ranks = byHost.get(host);
    if (ranks === undefined) byHost.set(host, [r]);
    else ranks.push(r);
  });
  const groups = [...byHost.values()];
  return {
    hostCount: groups.length,
    hostSizes: groups.map((group) => group.length),
    local: byHost.get(hosts[rank])!,
    leaders: groups.map((group) => group[0]),
  };
}
