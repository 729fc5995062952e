/**
 * Pairs incoming `Exchange` streams with this member's all-reduces. The left neighbour may start
 * an all-reduce before this worker does (its gradient was ready first) or after; a stream that
 * comes early is held until the matching all-reduce starts here. Held streams are bounded
 * (RingLimits): at most maxHeldStreams, and their chunks are read into this router only while
 * they fit in maxHeldBytes; past that a held stream is left unread, and once the HTTP/2 window
 * is full flow control stops its sender. Streams are matched by (run, generation, sequence); one that is older
 * than the all-reduce running here, or from another run, means the two workers are out of step:
 * it is refused with INVALID_ARGUMENT and the all-reduce here fails too.
 */
import { status } from '@grpc/grpc-js';
import type { ExchangeChunk__Output } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import type { IncomingExchange } from './incoming-exchange.ts';
import type { RingLimits } from './ring-options.ts';

/** Which all-reduce of which ring a stream or an all-reduce is. */
export interface ExchangeKey {
  runId: string;
  generation: number;
  /** Index of the all-reduce since the ring was formed. */
  sequence: number;
}

/** What the router needs of a running all-reduce. */
export interface RoutedOperation {
  readonly key: ExchangeKey;
  /** Takes over `incoming`, whose opening chunk is `first`. */
  attach(incoming: IncomingExchange, first: ExchangeChunk__Output): void;
  /** Fails the all-reduce with COLLECTIVE_MALFORMED. */
  failMalformed(reason: string): void;
}

/** The key of the all-reduce a chunk belongs to. */
export function keyOfChunk(chunk: ExchangeChunk__Output): ExchangeKey {
  return { runId: chunk.run_id, generation: chunk.generation, sequence: chunk.sequence };
}

/** `run/generation/sequence`, for maps and messages. */
export function describeKey(key: ExchangeKey): string {
  return `${key.runId}/g${key.generation}/#${key.sequence}`;
}

/** <0, 0, >0 like a comparator, or NaN when the keys are of different runs. */
function compareKeys(a: ExchangeKey, b: ExchangeKey): number {
  if (a.runId !== b.runId) return Number.NaN;
  return a.generation !== b.generation ? a.generation - b.generation : a.sequence - b.sequence;
}

/** A stream that came before its all-reduce started here, and what was read off it. */
interface HeldStream {
  incoming: IncomingExchange;
  first: ExchangeChunk__Output;
  /** Chunks read after the first, in order. */
  later: ExchangeChunk__Output[];
  /** Bytes charged for `first` and `later` (see {@link heldBytesOf}). */
  bytes: number;
  /** Whether the sender half-closed it while it was held. */
  ended: boolean;
}

/** Bytes a decoded chunk keeps alive beyond its variable fields: the dozen numbers and the object. */
const CHUNK_OVERHEAD_BYTES = 128;

/** What keeping `chunk` costs, in bytes: its byte and text fields plus a fixed overhead. */
export function heldBytesOf(chunk: ExchangeChunk__Output): number {
  return chunk.payload.byteLength + chunk.alignment.byteLength + 2 * (chunk.run_id.length + chunk.purpose.length) + CHUNK_OVERHEAD_BYTES;
}

/** Routes the incoming streams of one ring member. */
export class ExchangeRouter {
  private current: RoutedOperation | null = null;
  /** Streams that came before their all-reduce started here, by {@link describeKey}. */
  private readonly held = new Map<string, HeldStream>();
  private last: { key: ExchangeKey; failed: boolean } | null = null;
  private heldBytesNow = 0;
  private heldBytesPeak = 0;

  constructor(
    private readonly limits: Pick<RingLimits, 'maxHeldStreams' | 'maxHeldBytes'>,
    /** The largest message grpc-js lets through (a held stream is paused while one might not fit). */
    private readonly messageBytes: number,
  ) {}

  /** Bytes held now for all-reduces that have not started (chunks read off held streams). */
  get heldBytes(): number {
    return this.heldBytesNow;
  }

  /** The most {@link heldBytes} has been since this router was made. */
  get peakHeldBytes(): number {
    return this.heldBytesPeak;
  }

  /** Streams held now for all-reduces that have not started. */
  get heldStreams(): number {
    return this.held.size;
  }

  /** A new stream whose opening chunk is `first`. */
  route(incoming: IncomingExchange, first: ExchangeChunk__Output): void {
    const key = keyOfChunk(first);
    const current = this.current;
    if (current !== null) {
      const order = compareKeys(key, current.key);
      if (order === 0) return current.attach(incoming, first);
      if (!(order > 0)) return this.refuseOutOfStep(incoming, key, current);
    }
    if (this.last !== null && !(compareKeys(key, this.last.key) > 0)) return this.refuseFinished(incoming, key, this.last);
    this.hold(incoming, key, first);
  }

  /** `operation` starts: it takes its waiting stream, and older waiting streams are refused. */
  begin(operation: RoutedOperation): void {
    this.current = operation;
    for (const [id, stream] of this.held) {
      const { incoming, first } = stream;
      const order = compareKeys(keyOfChunk(first), operation.key);
      if (order > 0) continue;
      this.release(id, stream);
      // Its sender gave up while it waited here (deadline): nothing more will come on it.
      if (incoming.isBroken) continue;
      if (order === 0) {
        operation.attach(incoming, first);
        incoming.replay(stream.later, stream.ended);
      } else {
        this.refuseOutOfStep(incoming, keyOfChunk(first), operation);
      }
    }
  }

  /** `operation` is over; streams for it that come later are refused. */
  end(operation: RoutedOperation, failed: boolean): void {
    if (this.current === operation) this.current = null;
    this.last = { key: operation.key, failed };
  }

  /**
   * A new ring (connect): forget the previous ring's history. Waiting streams stay: a neighbour
   * that connected first may already have started the new ring's first all-reduce. A leftover of
   * the old ring is refused when an all-reduce starts (or dropped, once its sender gave up).
   */
  reset(): void {
    this.last = null;
  }

  /** Refuses every waiting stream (shutdown). */
  refuseAllWaiting(code: status, details: string): void {
    for (const [id, stream] of this.held) {
      this.release(id, stream);
      stream.incoming.refuse('shutting_down', code, details);
    }
  }

  private hold(incoming: IncomingExchange, key: ExchangeKey, first: ExchangeChunk__Output): void {
    const id = describeKey(key);
    if (this.held.has(id)) {
      incoming.refuse('duplicate_stream', status.INVALID_ARGUMENT, `a stream for all-reduce ${id} is already waiting here`);
      return;
    }
    if (this.held.size >= this.limits.maxHeldStreams) {
      incoming.refuse('held_streams_full', status.RESOURCE_EXHAUSTED, `${this.held.size} streams already wait here for later all-reduces`);
      return;
    }
    const stream: HeldStream = { incoming, first, later: [], bytes: 0, ended: false };
    if (!this.charge(stream, first)) return;
    this.held.set(id, stream);
    this.pauseIfFull();
    incoming.listen({
      chunk: (chunk) => {
        // Once released (refused, or handed to an all-reduce that would not take it), a stream's
        // chunks are no longer held here and must not be charged.
        if (this.held.get(id) !== stream) return;
        if (this.charge(stream, chunk)) {
          stream.later.push(chunk);
          this.pauseIfFull();
        } else {
          this.release(id, stream);
        }
      },
      end: () => void (stream.ended = true),
      lost: () => this.release(id, stream),
    });
  }

  /** Adds `chunk` to the held bytes, or refuses the stream when it does not fit (false). */
  private charge(stream: HeldStream, chunk: ExchangeChunk__Output): boolean {
    const bytes = heldBytesOf(chunk);
    if (this.heldBytesNow + bytes > this.limits.maxHeldBytes) {
      stream.incoming.refuse('held_bytes_full', status.RESOURCE_EXHAUSTED, `held streams would keep more than ${this.limits.maxHeldBytes} bytes here`);
      return false;
    }
    stream.bytes += bytes;
    this.heldBytesNow += bytes;
    this.heldBytesPeak = Math.max(this.heldBytesPeak, this.heldBytesNow);
    return true;
  }

  /**
   * Stops reading every held stream once the next message might not fit the held bytes (a paused
   * stream delivers no chunk until its all-reduce starts), so that a sender which keeps sending
   * is held back by flow control rather than refused. Only a chunk bigger than any our senders
   * make (long run id or purpose) can still find no room; that stream is refused.
   */
  private pauseIfFull(): void {
    if (this.limits.maxHeldBytes - this.heldBytesNow >= this.messageBytes + CHUNK_OVERHEAD_BYTES) return;
    for (const { incoming } of this.held.values()) incoming.hold();
  }

  /** Forgets a held stream and the bytes charged for it. */
  private release(id: string, stream: HeldStream): void {
    if (this.held.get(id) !== stream) return;
    this.held.delete(id);
    this.heldBytesNow -= stream.bytes;
    stream.bytes = 0;
  }

  private refuseOutOfStep(incoming: IncomingExchange, key: ExchangeKey, current: RoutedOperation): void {
    const reason = `stream for all-reduce ${describeKey(key)} while ${describeKey(current.key)} runs here`;
    incoming.refuse('out_of_step', status.INVALID_ARGUMENT, reason);
    current.failMalformed(`left neighbour is out of step: ${reason}`);
  }

  private refuseFinished(incoming: IncomingExchange, key: ExchangeKey, last: { key: ExchangeKey; failed: boolean }): void {
    if (compareKeys(key, last.key) === 0 && last.failed) {
      incoming.refuse('already_over', status.ABORTED, `all-reduce ${describeKey(key)} already failed here`);
      return;
    }
    incoming.refuse('already_over', status.INVALID_ARGUMENT, `stream for all-reduce ${describeKey(key)}, but ${describeKey(last.key)} is already over here`);
  }
}
