/**
 * How many Exchange streams each peer host has open on a member's server, so that one host
 * cannot hold an unbounded number (each may hold buffers and a place in the router).
 */

/** Counts open streams per peer host against a cap. */
export class PeerStreams {
  private readonly open = new Map<string, number>();

  constructor(private readonly maxPerPeer: number) {}

  /**
   * Counts a new stream of `peer` (`host:port`, as grpc-js `getPeer()` gives it) and returns the
   * function that releases it (idempotent), or null when its host is at the cap.
   */
  take(peer: string): (() => void) | null {
    const host = hostOf(peer);
    const count = this.open.get(host) ?? 0;
    if (count >= this.maxPerPeer) return null;
    this.open.set(host, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(host) ?? 1) - 1;
      // Hosts without streams leave the map, so it never grows with the hosts that ever called.
      if (left === 0) this.open.delete(host);
      else this.open.set(host, left);
    };
  }
}

/** The host of `host:port` (IPv6 hosts keep their colons; only the last one separates the port). */
export function hostOf(peer: string): string {
  const colon = peer.lastIndexOf(':');
  return colon < 0 ? peer : peer.slice(0, colon);
}
