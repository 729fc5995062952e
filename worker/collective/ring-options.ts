/**
 * Options of a ring member, checked once: {@link compileRingOptions} fills the defaults and
 * throws a ConfigError naming the bad value; everything after it trusts a
 * {@link CompiledRingOptions}.
 */
import { endianness } from 'node:os';
import { ConfigError } from '../../shared/errors.ts';
import { dialableHost } from '../../shared/net/host-port.ts';
import { messageLimit } from './grpc-tuning.ts';
import type { RefusalSink } from './refusal-reason.ts';
import type { RingTls } from './ring-tls.ts';

/** What a worker passes to `RingMember.start`. Ranks and peers come from the rendezvous. */
export interface RingOptions {
  /** This worker's rank, 0 .. worldSize-1. */
  rank: number;
  /** Number of workers in the ring (N), >= 1. */
  worldSize: number;
  /** Interface the gRPC server listens on. @default '127.0.0.1' */
  listenHost?: string;
  /** TCP port of the gRPC server; 0 picks a free one. @default 0 */
  port?: number;
  /**
   * Host that peers dial to reach this worker, as published in `address`.
   * @default listenHost, or '127.0.0.1' when listenHost is a wildcard ('0.0.0.0', '::')
   */
  advertiseHost?: string;
  /**
   * Shared secret of the run. When set, every call must carry it (`authorization: Bearer
   * <token>`) and calls without it fail with UNAUTHENTICATED; this member sends it too.
   * @default undefined (no authentication)
   */
  authToken?: string;
  /**
   * Mutual TLS (ring-tls.ts): the server asks every peer for a certificate from `ca`, and the
   * channel to the right neighbour presents `cert`. Every rank of a ring must use it or none:
   * a TLS member and a plaintext one cannot talk. The certificate must name the address this
   * member advertises (a subject alternative name), since that is what its left neighbour dials.
   * @default undefined (plaintext)
   */
  tls?: RingTls;
  /**
   * Largest payload of one gRPC message, in bytes: a multiple of 4, 4 KiB .. 64 MiB. All ranks
   * must use the same value (the receiver checks chunk boundaries). The gRPC message size limits
   * are raised to fit it.
   * @default 1048576 (1 MiB)
   */
  chunkBytes?: number;
  /**
   * Longest one all-reduce may take, in ms, counted from this rank's call;
   * it must cover the wait for the slowest rank to arrive. Past it the call fails with
   * CollectiveError COLLECTIVE_TIMEOUT.
   * @default 30000
   */
  timeoutMs?: number;
  /**
   * Longest `connect` may wait for the right neighbour to answer, in ms (its server may still be
   * starting, and a first connection on a busy machine takes a while).
   * @default the larger of timeoutMs and 10000
   */
  connectTimeoutMs?: number;
  /** Told of every call or stream this member refuses, with the reason (for metrics). @default ignore */
  onRefused?: RefusalSink;
  /**
   * What a neighbour, or a stranger, may make this member hold (see {@link RingLimits}); each
   * field has its own default.
   */
  limits?: Partial<RingLimits>;
}

/**
 * Caps on what incoming calls may make a member hold. Past a cap a call is refused with
 * RESOURCE_EXHAUSTED (or DEADLINE_EXCEEDED for a silent stream) and counted by reason; a ring
 * whose neighbours behave never reaches them.
 */
export interface RingLimits {
  /**
   * Streams held for all-reduces that have not started here (the left neighbour was early). A
   * well-behaved left neighbour is at most one all-reduce ahead, plus a leftover of the previous
   * ring. @default 4
   */
  maxHeldStreams: number;
  /**
   * Bytes of chunks this member reads off held streams and keeps until their all-reduce starts,
   * in bytes; once the next message might not fit, a held stream is left unread (HTTP/2 flow
   * control holds its sender back). At least one message ({@link messageLimit}).
   * @default 8 messages of chunkBytes plus header (8.03 MiB for 1 MiB chunks)
   */
  maxHeldBytes: number;
  /**
   * Exchange streams one peer host may have open here at once (also the HTTP/2
   * MAX_CONCURRENT_STREAMS of each connection). A left neighbour has one, or two while its next
   * all-reduce starts before the last one's answer is read. @default 8
   */
  maxStreamsPerPeer: number;
  /**
   * Longest an Exchange stream may stay open before its first chunk, in ms: a client that opens
   * a stream and never sends is answered DEADLINE_EXCEEDED rather than kept. @default timeoutMs
   */
  firstChunkTimeoutMs: number;
  /** Ping calls answered per second from each peer host, with a burst of as many. @default 50 */
  maxPingsPerSecond: number;
}

/** {@link RingOptions} with every default filled in and every value checked. */
export interface CompiledRingOptions {
  readonly rank: number;
  readonly worldSize: number;
  readonly listenHost: string;
  readonly port: number;
  readonly advertiseHost: string;
  readonly authToken: string | undefined;
  readonly tls: RingTls | undefined;
  readonly chunkBytes: number;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly onRefused: RefusalSink;
  readonly limits: Readonly<RingLimits>;
}

export const DEFAULT_CHUNK_BYTES = 1 << 20;
export const DEFAULT_TIMEOUT_MS = 30_000;
const MIN_CONNECT_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 24 * 3600_000;
const MIN_CHUNK_BYTES = 4 << 10;
const MAX_CHUNK_BYTES = 64 << 20;
const DEFAULT_MAX_HELD_STREAMS = 4;
/** Messages of held streams a member keeps by default (a few chunks of an early neighbour). */
const DEFAULT_HELD_MESSAGES = 8;
const DEFAULT_MAX_STREAMS_PER_PEER = 8;
const DEFAULT_MAX_PINGS_PER_SECOND = 50;

/** Checks `options` and fills defaults; throws ConfigError on the first bad value. */
export function compileRingOptions(options: RingOptions): CompiledRingOptions {
  if (endianness() !== 'LE') throw new ConfigError('the ring all-reduce sends float32 little-endian and needs a little-endian host');
  const worldSize = integerIn('worldSize', options.worldSize, 1, 65_535);
  const rank = integerIn('rank', options.rank, 0, worldSize - 1);
  const listenHost = options.listenHost ?? '127.0.0.1';
  const chunkBytes = integerIn('chunkBytes', options.chunkBytes ?? DEFAULT_CHUNK_BYTES, MIN_CHUNK_BYTES, MAX_CHUNK_BYTES);
  if (chunkBytes % 4 !== 0) throw new ConfigError(`chunkBytes must be a multiple of 4 (float32), got ${chunkBytes}`);
  const timeoutMs = integerIn('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS);
  if (options.authToken === '') throw new ConfigError('authToken must not be empty; leave it undefined to turn authentication off');
  return {
    rank,
    worldSize,
    listenHost,
    port: integerIn('port', options.port ?? 0, 0, 65_535),
    advertiseHost: options.advertiseHost ?? dialableHost(listenHost),
    authToken: options.authToken,
    tls: options.tls,
    chunkBytes,
    timeoutMs,
    connectTimeoutMs: integerIn('connectTimeoutMs', options.connectTimeoutMs ?? Math.max(timeoutMs, MIN_CONNECT_TIMEOUT_MS), 1, MAX_TIMEOUT_MS),
    onRefused: options.onRefused ?? (() => {}),
    limits: compileLimits(options.limits ?? {}, chunkBytes, timeoutMs),
  };
}

function compileLimits(limits: Partial<RingLimits>, chunkBytes: number, timeoutMs: number): RingLimits {
  const message = messageLimit(chunkBytes);
  return {
    maxHeldStreams: integerIn('limits.maxHeldStreams', limits.maxHeldStreams ?? DEFAULT_MAX_HELD_STREAMS, 1, 1024),
    // A held stream's first message is already read when it is held: at least one must fit.
    maxHeldBytes: integerIn('limits.maxHeldBytes', limits.maxHeldBytes ?? DEFAULT_HELD_MESSAGES * message, message, 2 ** 32),
    maxStreamsPerPeer: integerIn('limits.maxStreamsPerPeer', limits.maxStreamsPerPeer ?? DEFAULT_MAX_STREAMS_PER_PEER, 2, 1024),
    firstChunkTimeoutMs: integerIn('limits.firstChunkTimeoutMs', limits.firstChunkTimeoutMs ?? timeoutMs, 1, MAX_TIMEOUT_MS),
    maxPingsPerSecond: integerIn('limits.maxPingsPerSecond', limits.maxPingsPerSecond ?? DEFAULT_MAX_PINGS_PER_SECOND, 1, 1_000_000),
  };
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
