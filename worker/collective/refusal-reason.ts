/**
 * Why a ring member refused an incoming call or stream, as a bounded set of labels for the
 * `fmnist_collective_refused_messages_total{reason}` counter. A refusal is a message this member
 * would not take (the sender is wrong or out of step), not a failure notice it sends on
 * because its own all-reduce gave up.
 */
export const REFUSAL_REASONS = [
  /** Missing or wrong bearer token (Exchange or Ping). */
  'unauthenticated',
  /** A chunk that does not fit the all-reduce: run, step, sizes, offsets, order (chunk-check.ts). */
  'malformed_chunk',
  /** A stream for an older all-reduce than the one running, or of another run. */
  'out_of_step',
  /** A stream for an all-reduce that is already over here. */
  'already_over',
  /** A second stream for the same all-reduce. */
  'duplicate_stream',
  /** A stream that ended before its first chunk, or before its last one. */
  'ended_early',
  /** A stream that came, or was still waiting, while the member shut down. */
  'shutting_down',
  /** A stream for a later all-reduce while RingLimits.maxHeldStreams were already held. */
  'held_streams_full',
  /** A held stream sent more than RingLimits.maxHeldBytes leave room for. */
  'held_bytes_full',
  /** A stream past RingLimits.maxStreamsPerPeer open streams from its host. */
  'too_many_streams',
  /** A stream that sent no chunk within RingLimits.firstChunkTimeoutMs. */
  'silent_stream',
  /** A Ping past RingLimits.maxPingsPerSecond. */
  'ping_rate',
  /** A connection to a TLS ring that did not complete the handshake: plaintext, a certificate of another CA, or none. */
  'tls_handshake',
] as const;

export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Where a ring member reports its refusals (e.g. to a metrics counter). */
export type RefusalSink = (reason: RefusalReason) => void;
