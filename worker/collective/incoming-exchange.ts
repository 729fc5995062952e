/**
 * The receiving end of one `Exchange` call (the left neighbour's stream of chunks), wrapped so
 * that it is answered exactly once and its consumer can change: first the router reads the
 * opening chunk to learn which all-reduce the stream belongs to, then that all-reduce reads the
 * rest.
 */
import { status, type sendUnaryData, type ServerReadableStream } from '@grpc/grpc-js';
import type { ExchangeChunk__Output } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import type { ExchangeSummary } from '../../proto/generated/fmnist/cluster/v1/ExchangeSummary.ts';
import type { RefusalReason, RefusalSink } from './refusal-reason.ts';

/** What the current consumer of the stream is told. */
export interface ExchangeListener {
  /** One chunk, in arrival order. */
  chunk(message: ExchangeChunk__Output): void;
  /** The sender half-closed the stream: it has sent everything it meant to. */
  end(): void;
  /** The stream broke off before it was answered (sender cancelled, deadline, connection lost). */
  lost(reason: string): void;
}

/** One incoming `Exchange` call. */
export class IncomingExchange {
  private answered = false;
  private listener: ExchangeListener;

  constructor(
    private readonly call: ServerReadableStream<ExchangeChunk__Output, ExchangeSummary>,
    private readonly callback: sendUnaryData<ExchangeSummary>,
    first: ExchangeListener,
    private readonly onRefused: RefusalSink = () => {},
    /** Called once, when the call is answered or breaks off (e.g. to release its quota). */
    private readonly onSettled: () => void = () => {},
  ) {
    this.listener = first;
    call.on('data', (message: ExchangeChunk__Output) => this.listener.chunk(message));
    call.on('end', () => this.listener.end());
    call.on('cancelled', () => this.breakOff('the sender cancelled the stream or its connection closed'));
    call.on('error', (error: Error) => this.breakOff(error.message));
  }

  /** `host:port` of the sender, for messages. */
  get peer(): string {
    return this.call.getPeer();
  }

  /**
   * Whether the sender is known to be gone: the call was cancelled or is past its deadline. A
   * cancelled stream also ends, and gRPC may report the end before the cancellation.
   */
  get isBroken(): boolean {
    return this.call.cancelled || Number(this.call.getDeadline()) <= Date.now();
  }

  /** Whether a reply (success or error) has been sent. */
  get isAnswered(): boolean {
    return this.answered;
  }

  /** Hands the stream to a new consumer, from the next event on. */
  listen(listener: ExchangeListener): void {
    this.listener = listener;
  }

  /** Stops reading: HTTP/2 flow control then holds the sender back. */
  hold(): void {
    this.call.pause();
  }

  /** Reads on after {@link hold}. */
  release(): void {
    this.call.resume();
  }

  /**
   * Hands the current listener what was read off the stream before it took over (the router
   * keeps a held stream's chunks), as if they arrived now, then reads on.
   */
  replay(messages: readonly ExchangeChunk__Output[], ended: boolean): void {
    for (const message of messages) this.listener.chunk(message);
    if (ended) this.listener.end();
    this.release();
  }

  /** Answers the call with success. */
  succeed(summary: ExchangeSummary): void {
    if (this.answer()) this.callback(null, summary);
  }

  /** Answers the call with an error status (sender sees it as the call's status). */
  reject(code: status, details: string): void {
    if (this.answer()) this.callback({ code, details });
  }

  /** Refuses the stream for `reason` (counted once, like the answer) with an error status. */
  refuse(reason: RefusalReason, code: status, details: string): void {
    if (!this.answer()) return;
    this.onRefused(reason);
    this.callback({ code, details });
  }

  private answer(): boolean {
    if (this.answered) return false;
    this.answered = true;
    this.onSettled();
    return true;
  }

  private breakOff(reason: string): void {
    if (this.answered) return;
    this.answered = true;
    this.onSettled();
    this.listener.lost(reason);
  }
}
