/**
 * Options of a ring member, checked once: {@link compileRingOptions} fills the defaults and
 * throws a ConfigError naming the bad value; everything after it trusts a
 * {@link CompiledRingOptions}.
 */
import { endianness } from 'node:os';
import { ConfigError } from '../../shared/errors.ts';
import { dialableHost } from '../../shared/net/host-port.ts';
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
}

export const DEFAULT_CHUNK_BYTES = 1 << 20;
export const DEFAULT_TIMEOUT_MS = 30_000;
const MIN_CONNECT_TIMEOUT_MS = 10_000;
const MAX_TIMEOUT_MS = 24 * 3600_000;
const MIN_CHUNK_BYTES = 4 << 10;
const MAX_CHUNK_BYTES = 64 << 20;

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
  };
}

function integerIn(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`);
  }
  return value;
}
