/**
 * The failures of the ring, as CollectiveError codes, and their translation to and from gRPC
 * status codes at the boundary (a receiver replies with a status; a sender turns the status it
 * gets back into a CollectiveError).
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { CollectiveError } from '../../shared/errors.ts';

/** Every `code` a CollectiveError from the ring can carry. */
export type CollectiveCode =
  /** The all-reduce (or connect) ran past `timeoutMs`: a peer hung, or arrived too late. */
  | 'COLLECTIVE_TIMEOUT'
  /** A neighbour could not be reached or its stream broke off (process died, connection lost). */
  | 'COLLECTIVE_PEER_LOST'
  /** A neighbour gave up this all-reduce because of a failure of its own. */
  | 'COLLECTIVE_PEER_ABORTED'
  /** A chunk did not fit the all-reduce (run, generation, step, size, offset, order): ours or theirs. */
  | 'COLLECTIVE_MALFORMED'
  /** A call was refused for a missing or wrong shared token. */
  | 'COLLECTIVE_UNAUTHENTICATED'
  /** A peer's rank or ring size is not the one the rendezvous gave. */
  | 'COLLECTIVE_PEER_MISMATCH'
  /** The right neighbour does not complete a TLS handshake with us: it speaks plaintext, or one side's certificate is not the other's CA's. */
  | 'COLLECTIVE_TLS_MISMATCH'
  /** Any other transport failure (e.g. a message over the size limit). */
  | 'COLLECTIVE_TRANSPORT'
  /** The call does not fit the member's state: not connected, another all-reduce running, closed. */
  | 'COLLECTIVE_NOT_CONNECTED'
  | 'COLLECTIVE_BUSY'
  | 'COLLECTIVE_CLOSED'
  /** The caller's arguments are invalid (peer list, tag). */
  | 'COLLECTIVE_BAD_ARGUMENT';

/** A CollectiveError with one of the ring's codes, about the peer of rank `details.peerRank` when one is to blame. */
export function collectiveError(code: CollectiveCode, message: string, details: { cause?: unknown; peerRank?: number } = {}): CollectiveError {
  return new CollectiveError(code, message, details);
}

const CODE_OF_STATUS: Partial<Record<status, CollectiveCode>> = {
  [status.INVALID_ARGUMENT]: 'COLLECTIVE_MALFORMED',
  [status.UNAUTHENTICATED]: 'COLLECTIVE_UNAUTHENTICATED',
  [status.DEADLINE_EXCEEDED]: 'COLLECTIVE_TIMEOUT',
  [status.ABORTED]: 'COLLECTIVE_PEER_ABORTED',
  [status.UNAVAILABLE]: 'COLLECTIVE_PEER_LOST',
  [status.CANCELLED]: 'COLLECTIVE_PEER_LOST',
  [status.FAILED_PRECONDITION]: 'COLLECTIVE_PEER_MISMATCH',
};

/**
 * The CollectiveError for a failed call to `peer` of rank `peerRank` (e.g. 'rank 2 at
 * 10.0.0.3:7000'). A deadline blames no one peer (any rank down the ring may be the slow one),
 * like the all-reduce's own timeout.
 */
export function errorFromStatus(error: ServiceError, peer: string, peerRank: number): CollectiveError {
  const code = CODE_OF_STATUS[error.code] ?? 'COLLECTIVE_TRANSPORT';
  const blamed = code === 'COLLECTIVE_TIMEOUT' ? undefined : peerRank;
  return collectiveError(code, `${peer}: ${status[error.code] ?? error.code} ${error.details}`, { cause: error, peerRank: blamed });
}

/**
 * The status a receiver ends its left neighbour's stream with when its own all-reduce failed for
 * a reason other than that stream's chunks: UNAVAILABLE when it is shutting down, ABORTED ("I
 * gave up on this all-reduce") otherwise.
 */
export function statusForFailure(error: CollectiveError): { code: status; details: string } {
  const code = error.code === 'COLLECTIVE_CLOSED' ? status.UNAVAILABLE : status.ABORTED;
  return { code, details: `${error.code}: ${error.message}` };
}
