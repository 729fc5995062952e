/**
 * Which address a worker publishes for its ring server when nobody said (`--advertise-host`,
 * WORKER_ADVERTISE_HOST). A worker bound to one interface publishes that interface. A worker
 * bound to every interface (`0.0.0.0`, `::`) must publish an address its peers on other hosts,
 * or in other containers of a compose network, can dial: 127.0.0.1 would point each peer at
 * itself. Like NCCL's default socket interface, it takes the first address of the first
 * interface that is not loopback; name resolution is not needed, which bare machines often lack.
 */
import os from 'node:os';
import { isWildcardHost } from '../shared/net/host-port.ts';

type Interfaces = ReturnType<typeof os.networkInterfaces>;

/**
 * The host to advertise for a ring server listening on `listenHost`: undefined when it listens
 * on one interface (the ring advertises `listenHost` itself); for a wildcard, the first
 * non-internal IPv4 address, else the first non-internal IPv6 address that is not link-local
 * (those need a zone), else the hostname.
 */
export function defaultAdvertiseHost(
  listenHost: string,
  interfaces: Interfaces = os.networkInterfaces(),
  hostname: string = os.hostname(),
): string | undefined {
  if (!isWildcardHost(listenHost)) return undefined;
  const external = Object.values(interfaces).flatMap((addresses) => (addresses ?? []).filter((address) => !address.internal));
  const ipv4 = external.find((address) => address.family === 'IPv4');
  if (ipv4) return ipv4.address;
  const ipv6 = external.find((address) => address.family === 'IPv6' && !address.address.toLowerCase().startsWith('fe80:'));
  return ipv6?.address ?? hostname;
}
