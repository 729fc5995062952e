/** `host:port` strings as gRPC targets, `listen()` and Prometheus targets want them. */

/** Hosts that mean "every interface": a peer cannot dial them. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '']);

/** `host:port` with IPv6 literals bracketed. */
export function joinHostPort(host: string, port: number): string {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
}

/** True for a listen host that means "every interface" ('0.0.0.0', '::'): peers cannot dial it. */
export function isWildcardHost(host: string): boolean {
  return WILDCARD_HOSTS.has(host);
}

/** The host others dial for a server listening on `listenHost`: itself, or loopback for a wildcard. */
export function dialableHost(listenHost: string): string {
  return isWildcardHost(listenHost) ? '127.0.0.1' : listenHost;
}

/**
 * True for a host that names this machine's loopback interface (`localhost`, 127.0.0.0/8,
 * `::1`): what is sent there never crosses a network.
 */
export function isLoopbackHost(host: string): boolean {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  return bare === 'localhost' || bare === '::1' || /^127\.\d+\.\d+\.\d+$/.test(bare);
}
