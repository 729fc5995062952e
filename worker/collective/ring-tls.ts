/**
 * Mutual TLS between ring members. Every member is both a server (to its left neighbour) and a
 * client (of its right one), with one certificate for both roles; each side checks that the
 * other's certificate was signed by the run's CA. Clients check the server's name against the
 * address they dial, which is the one the server advertised: certificates need a subject
 * alternative name for it (IP:10.0.0.3 or DNS:worker-3). Without TLS the ring is plaintext
 * h2c, and a TLS member refuses plaintext peers (the handshake fails, the call is UNAVAILABLE).
 */
import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';

/** PEM contents of a member's certificate, its key and the CA its peers' certificates come from. */
export interface RingTls {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** The server's credentials: TLS that requires a client certificate from the CA, else plaintext. */
export function ringServerCredentials(tls: RingTls | undefined): ServerCredentials {
  if (tls === undefined) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], true);
}

/** The channel's credentials: TLS presenting this member's certificate, else plaintext. */
export function ringChannelCredentials(tls: RingTls | undefined): ChannelCredentials {
  return tls === undefined ? credentials.createInsecure() : credentials.createSsl(tls.ca, tls.key, tls.cert);
}
