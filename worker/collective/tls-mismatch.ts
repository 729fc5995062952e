/**
 * Tells a right neighbour that will never complete a TLS handshake with us (it speaks plaintext,
 * or one side's certificate is not of the other's CA) from one that is not up yet. grpc-js
 * retries a failed handshake like a refused connection, so a member waiting for its neighbour
 * would wait out the whole connect timeout on a configuration mistake. While it waits, this
 * pings without waiting for a connection, which fails at once with the channel's last error;
 * that error is OpenSSL's text (grpc-js gives no code for it), so a handshake failure is
 * recognised by its words, and only after several in a row. Should the words change, the wait
 * ends at the connect timeout as before.
 */
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import type { CollectiveClient } from '../../proto/generated/fmnist/cluster/v1/Collective.ts';
import { collectiveError } from './collective-status.ts';

/** What OpenSSL and Node say about a handshake that failed (wrong protocol, untrusted or missing certificate). */
const HANDSHAKE_FAILURE = /SSL routines|certificate|handshake|alert/i;
const PROBE_EVERY_MS = 500;
/** Consecutive handshake failures that make it a mismatch rather than a neighbour restarting. */
const FAILURES_TO_BELIEVE = 3;

export interface TlsMismatchWatch {
  /** Rejects with COLLECTIVE_TLS_MISMATCH (peerRank: the neighbour) once the handshakes keep failing. */
  readonly mismatch: Promise<never>;
  stop(): void;
}

/** Probes `client`'s channel until stop() with the Ping the member sends (its rank, its token). */
export function watchForTlsMismatch(
  client: CollectiveClient,
  ping: { fromRank: number; metadata: Metadata },
  peer: string,
  peerRank: number,
): TlsMismatchWatch {
  let stopped = false;
  let failures = 0;
  let timer: NodeJS.Timeout | undefined;
  let reject!: (error: Error) => void;
  const mismatch = new Promise<never>((_, fail) => (reject = fail));
  mismatch.catch(() => {});
  const probe = () => {
    client.Ping({ from_rank: ping.fromRank }, ping.metadata, { deadline: new Date(Date.now() + PROBE_EVERY_MS * 4) }, (error: ServiceError | null) => {
      if (stopped) return;
      failures = error?.code === status.UNAVAILABLE && HANDSHAKE_FAILURE.test(error.details) ? failures + 1 : 0;
      if (failures >= FAILURES_TO_BELIEVE) {
        reject(collectiveError('COLLECTIVE_TLS_MISMATCH', `${peer}: no TLS handshake (${error!.details.trim()})`, { cause: error, peerRank }));
        return;
      }
      timer = setTimeout(probe, PROBE_EVERY_MS);
    });
  };
  timer = setTimeout(probe, PROBE_EVERY_MS);
  return {
    mismatch,
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
