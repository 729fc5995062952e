/**
 * Pairs incoming `Exchange` streams with this member's all-reduces. The left neighbour may start
 * an all-reduce before this worker does (its gradient was ready first) or after; a stream that
 * comes early is held (not read: once the HTTP/2 window is full, flow control stops the sender)
 * until the matching all-reduce starts here. Streams are matched by (run, generation, sequence); one that is older
 * than the all-reduce running here, or from another run, means the two workers are out of step:
 * it is refused with INVALID_ARGUMENT and the all-reduce here fails too.
 */
import { status } from '@grpc/grpc-js';
import type { ExchangeChunk__Output } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import type { IncomingExchange } from './incoming-exchange.ts';

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

/** Routes the incoming streams of one ring member. */
export class ExchangeRouter {
  private current: RoutedOperation | null = null;
  /** Streams that came before their all-reduce started here, by {@link describeKey}. */
  private readonly held = new Map<string, { incoming: IncomingExchange; first: ExchangeChunk__Output }>();
  private last: { key: ExchangeKey; failed: boolean } | null = null;

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
    for (const [id, { incoming, first }] of this.held) {
      const order = compareKeys(keyOfChunk(first), operation.key);
      if (order > 0) continue;
      this.held.delete(id);
      // Its sender gave up while it waited here (deadline): nothing more will come on it.
      if (incoming.isBroken) continue;
      if (order === 0) {
        operation.attach(incoming, first);
        incoming.release();
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
    for (const { incoming } of this.held.values()) incoming.refuse('shutting_down', code, details);
    this.held.clear();
  }

  private hold(incoming: IncomingExchange, key: ExchangeKey, first: ExchangeChunk__Output): void {
    const id = describeKey(key);
    if (this.held.has(id)) {
      incoming.refuse('duplicate_stream', status.INVALID_ARGUMENT, `a stream for all-reduce ${id} is already waiting here`);
      return;
    }
    incoming.hold();
    this.held.set(id, { incoming, first });
    incoming.listen({
      chunk: () => {},
      end: () => {},
      lost: () => this.held.delete(id),
    });
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
