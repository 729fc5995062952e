/**
 * One ring all-reduce on one rank, from start to success or failure. It streams its chunks to
 * the right neighbour over one `Exchange` call and applies the left neighbour's stream as it
 * arrives; every received chunk is applied and, unless it was the last ring step, queued to go
 * on to the right neighbour at once, so all ring steps are in flight together.
 *
 * It succeeds when every expected chunk has been applied here and the right neighbour has
 * acknowledged the whole stream (so no chunk still refers to the caller's array). It fails on
 * the first problem, tells both neighbours (cancels its stream, answers the left one with a
 * status), and never waits longer than its timeout.
 */
import { status, type ClientWritableStream, type ServiceError } from '@grpc/grpc-js';
import type { ExchangeChunk, ExchangeChunk__Output } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import type { CollectiveError } from '../../shared/errors.ts';
import { checkChunk, type AcceptedChunk, type ChunkExpectation } from './chunk-check.ts';
import { collectiveError, errorFromStatus, statusForFailure } from './collective-status.ts';
import type { ExchangeKey, RoutedOperation } from './exchange-router.ts';
import { chunkPayload, halfValuesIn, splitPayload } from './chunk-payload.ts';
import { addHalfInto, halfToFloat, roundToHalf } from './float16.ts';
import { addInto, copyInto, type PayloadReader } from './float32-chunks.ts';
import type { IncomingExchange } from './incoming-exchange.ts';
import type { RefusalReason } from './refusal-reason.ts';
import type { RingPlan, RingWindow } from './ring-plan.ts';

/** Names one all-reduce; every rank passes the same tag for the same call. */
export interface AllReduceTag {
  /** Training run id. */
  runId: string;
  /** Ring generation from the rendezvous, 0 .. 2^32-1. */
  generation: number;
  /** Training step, 0 .. 2^32-1. */
  step: number;
  /** What is reduced (e.g. 'gradients'); checked to be the same on both ends. @default '' */
  purpose?: string;
  /**
   * The reduced vector is the part [offset, offset + length) of a vector of `total` values, and
   * each value is summed in the order the whole vector would give it (ring-plan.ts), so a bucket
   * reduced alone gives the bits of one all-reduce of the whole. Every rank passes the same.
   * @default the vector is the whole
   */
  window?: RingWindow;
  /**
   * True while the caller still computes on this thread between its yields to the event loop
   * (a bucket reduced during the backward pass): a transport that would block the thread while it
   * waits for its peers polls instead. @default never
   */
  computing?: () => boolean;
  /**
   * Values at the start of the vector summed in binary16 (`--grad-compression fp16`): each rank
   * rounds its own to binary16, every float32 partial sum of them is rounded to binary16 again
   * (so they travel as binary16, 2 bytes each, exactly), and the result holds binary16 values.
   * The values after them are summed in float32 as always. Checked to be the same on both ends.
   * @default 0
   */
  float16Values?: number;
}

/** Where the time of one all-reduce went on this rank, for metrics. All times in ms. */
export interface AllReduceTimings {
  /** From the call to the result. */
  totalMs: number;
  /** Until the left neighbour's first chunk was here: mostly waiting for slower ranks. */
  firstChunkMs: number;
  /** From the call until the last reduce-scatter chunk was added here. */
  reduceScatterMs: number;
  /** From the end of reduce-scatter here until the last all-gather chunk was copied here. */
  allGatherMs: number;
  /** From the last chunk here until the right neighbour acknowledged everything sent to it. */
  acknowledgeMs: number;
  /** Time spent adding and copying received values (part of the phases above). */
  applyMs: number;
  /** Payload bytes sent to the right neighbour. */
  bytesSent: number;
  /** Payload bytes received from the left neighbour. */
  bytesReceived: number;
  chunksSent: number;
  chunksReceived: number;
}

/** Opens the stream to the right neighbour; `done` gets its final status (null: acknowledged). */
export type OpenExchange = (deadline: Date, done: (error: ServiceError | null) => void) => ClientWritableStream<ExchangeChunk>;

/** Everything one all-reduce needs from its ring member. */
export interface OperationSetup {
  plan: RingPlan;
  data: Float32Array;
  tag: AllReduceTag;
  /** Index of this all-reduce since the ring was formed. */
  sequence: number;
  timeoutMs: number;
  openExchange: OpenExchange;
  reader: PayloadReader;
  /** Descriptions of the neighbours for error messages, e.g. 'rank 2 (127.0.0.1:4567)'. */
  leftPeer: string;
  rightPeer: string;
  /**
   * The neighbours' ranks in the run, named by the errors that blame one. Not the plan's ring
   * positions when the ring is a part of the run (the hosts' leaders).
   */
  leftRank: number;
  rightRank: number;
  /** Called once, synchronously, when the operation succeeds or fails. */
  settled(operation: AllReduceOperation, failed: boolean): void;
}

/** How long an early end of the left neighbour's stream waits for a cancellation to show (ms). */
const CANCEL_GRACE_MS = 200;

type OperationState = 'created' | 'running' | 'succeeded' | 'failed';

/** A chunk to send: ring step g, chunk j of the segment sent at that step. */
interface Outgoing {
  g: number;
  j: number;
}

export class AllReduceOperation implements RoutedOperation {
  readonly key: ExchangeKey;
  /** Settles when the all-reduce is over on this rank. */
  readonly result: Promise<AllReduceTimings>;
  private state: OperationState = 'created';
  private resolveResult!: (timings: AllReduceTimings) => void;
  private rejectResult!: (error: CollectiveError) => void;
  private timer: NodeJS.Timeout | undefined;
  private readonly plan: RingPlan;
  private readonly expectation: ChunkExpectation;
  /** Run ranks of the neighbours, named by the errors that blame one of them. */
  private readonly leftRank: number;
  private readonly rightRank: number;

  private outgoing: ClientWritableStream<ExchangeChunk> | null = null;
  private readonly header: ExchangeChunk;
  private readonly forwards: Outgoing[] = [];
  private forwardHead = 0;
  private nextFirstStepChunk = 0;
  private awaitingDrain = false;
  private ended = false;
  private acknowledged = false;
  private chunksSent = 0;
  private bytesSent = 0;

  private incoming: IncomingExchange | null = null;
  private reduceScatterLeft: number;
  private receiveLeft: number;
  private chunksReceived = 0;
  private bytesReceived = 0;

  private startedAt = 0;
  private firstChunkAt = Number.NaN;
  private reduceScatterDoneAt = Number.NaN;
  private receiveDoneAt = Number.NaN;
  private applyMs = 0;

  constructor(private readonly setup: OperationSetup) {
    const { plan, tag, sequence } = setup;
    this.plan = plan;
    this.leftRank = setup.leftRank;
    this.rightRank = setup.rightRank;
    this.key = { runId: tag.runId, generation: tag.generation, sequence };
    this.result = new Promise((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    this.expectation = {
      plan,
      key: this.key,
      step: tag.step,
      purpose: tag.purpose ?? '',
      float16Values: tag.float16Values ?? 0,
      // On the wire ranks are ring positions (the chunk's world_size is the ring's size).
      senderRank: (plan.rank + plan.worldSize - 1) % plan.worldSize,
      nextChunk: new Uint32Array(plan.steps),
    };
    this.header = {
      run_id: tag.runId,
      generation: tag.generation,
      step: tag.step,
      sequence,
      purpose: tag.purpose ?? '',
      total_elements: plan.length,
      world_size: plan.worldSize,
      sender_rank: plan.rank,
      float16_values: tag.float16Values ?? 0,
    };
    this.receiveLeft = plan.chunksToReceive();
    this.reduceScatterLeft = 0;
    for (let g = 0; g < plan.worldSize - 1; g += 1) this.reduceScatterLeft += plan.chunkCount(plan.receiveSegment(g));
  }

  /** Opens the stream to the right neighbour and starts sending the first ring step. */
  start(): void {
    this.state = 'running';
    this.startedAt = performance.now();
    const { timeoutMs } = this.setup;
    this.timer = setTimeout(() => this.fail(collectiveError('COLLECTIVE_TIMEOUT', `all-reduce ${this.describe()} not done after ${timeoutMs} ms`)), timeoutMs);
    this.timer.unref();
    // This rank's own share of the compressed values, rounded before any of it is sent or summed.
    roundToHalf(this.setup.data.subarray(0, this.expectation.float16Values));
    this.outgoing = this.setup.openExchange(new Date(Date.now() + timeoutMs), (error) => this.onAcknowledged(error));
    this.outgoing.on('drain', () => {
      this.awaitingDrain = false;
      this.pump();
    });
    this.pump();
  }

  /** Takes over the left neighbour's stream, whose first chunk is `first`. */
  attach(incoming: IncomingExchange, first: ExchangeChunk__Output): void {
    if (this.state !== 'running') {
      incoming.refuse('already_over', status.ABORTED, `all-reduce ${this.describe()} is already over here`);
      return;
    }
    if (this.incoming !== null) {
      incoming.refuse('duplicate_stream', status.INVALID_ARGUMENT, `a second stream for all-reduce ${this.describe()}`);
      this.failMalformed(`a second stream came for all-reduce ${this.describe()}`);
      return;
    }
    this.incoming = incoming;
    incoming.listen({
      chunk: (message) => this.onChunk(message),
      end: () => this.onIncomingEnd(),
      lost: (reason) => this.fail(collectiveError('COLLECTIVE_PEER_LOST', `left neighbour ${this.setup.leftPeer}: ${reason}`, { peerRank: this.leftRank })),
    });
    this.onChunk(first);
  }

  /** Fails with COLLECTIVE_MALFORMED (the left neighbour is out of step). */
  failMalformed(reason: string): void {
    this.fail(collectiveError('COLLECTIVE_MALFORMED', reason, { peerRank: this.leftRank }));
  }

  /**
   * Fails the all-reduce: cancels the stream to the right neighbour and answers the left one
   * with `reply` (by default ABORTED, or UNAVAILABLE when closing; a reply with a `refusal`
   * reason refuses the left neighbour's stream for it). Later calls do nothing.
   */
  fail(error: CollectiveError, reply: { code: status; details: string; refusal?: RefusalReason } = statusForFailure(error)): void {
    if (this.state !== 'running') return;
    this.state = 'failed';
    clearTimeout(this.timer);
    if (!this.acknowledged) this.outgoing?.cancel();
    if (reply.refusal !== undefined) this.incoming?.refuse(reply.refusal, reply.code, reply.details);
    else this.incoming?.reject(reply.code, reply.details);
    this.setup.settled(this, true);
    this.rejectResult(error);
  }

  private describe(): string {
    return `${this.key.runId}/g${this.key.generation}/#${this.key.sequence} (step ${this.setup.tag.step})`;
  }

  // ---- sending ----

  /** Writes queued chunks until gRPC asks to wait ('drain'), then ends the stream when all are out. */
  private pump(): void {
    const call = this.outgoing;
    while (call !== null && this.state === 'running' && !this.awaitingDrain && !this.ended) {
      const next = this.nextToSend();
      if (next === null) {
        if (this.chunksSent === this.plan.chunksToSend()) {
          this.ended = true;
          call.end();
        }
        return;
      }
      if (!call.write(this.message(next))) this.awaitingDrain = true;
    }
  }

  /** Forwards first (later ring steps wait on them downstream), then the first step's chunks. */
  private nextToSend(): Outgoing | null {
    if (this.forwardHead < this.forwards.length) return this.forwards[this.forwardHead++];
    if (this.nextFirstStepChunk < this.plan.chunkCount(this.plan.sendSegment(0))) return { g: 0, j: this.nextFirstStepChunk++ };
    return null;
  }

  private message({ g, j }: Outgoing): ExchangeChunk {
    const { offset, length } = this.plan.chunk(this.plan.sendSegment(g), j);
    // A view of the caller's array when uncompressed, serialised when gRPC gets to this message.
    // Until then the values stay put: the ring only overwrites a range here after it has gone
    // round the ring from this very send, and the all-reduce does not return before the right
    // neighbour has acknowledged every message.
    const payload = chunkPayload(this.setup.data, offset, length, halfValuesIn(offset, length, this.expectation.float16Values));
    this.chunksSent += 1;
    this.bytesSent += payload.byteLength;
    return {
      ...this.header,
      phase: this.plan.phaseOf(g),
      ring_step: this.plan.ringStepOf(g),
      chunk_index: j,
      offset,
      payload,
    };
  }

  private onAcknowledged(error: ServiceError | null): void {
    if (error !== null) {
      this.fail(errorFromStatus(error, `right neighbour ${this.setup.rightPeer}`, this.rightRank));
      return;
    }
    this.acknowledged = true;
    this.finishIfDone();
  }

  // ---- receiving ----

  private onChunk(message: ExchangeChunk__Output): void {
    if (this.state !== 'running') return;
    const accepted = checkChunk(message, this.expectation);
    if (typeof accepted === 'string') {
      const error = collectiveError('COLLECTIVE_MALFORMED', `left neighbour ${this.setup.leftPeer} sent a chunk that does not fit: ${accepted}`, {
        peerRank: this.leftRank,
      });
      this.fail(error, { code: status.INVALID_ARGUMENT, details: accepted, refusal: 'malformed_chunk' });
      return;
    }
    this.apply(accepted, message.payload);
    this.expectation.nextChunk[accepted.g] += 1;
    this.chunksReceived += 1;
    this.bytesReceived += message.payload.byteLength;
    if (accepted.g + 1 < this.plan.steps) {
      this.forwards.push({ g: accepted.g + 1, j: accepted.j });
      this.pump();
    }
    this.countReceived(accepted.g);
  }

  private apply({ g, offset, halves }: AcceptedChunk, payload: Buffer): void {
    const began = performance.now();
    const { data, reader } = this.setup;
    const reduce = g < this.plan.worldSize - 1;
    const parts = splitPayload(payload, halves);
    if (halves > 0) {
      const target = data.subarray(offset, offset + halves);
      if (reduce) addHalfInto(target, reader.readHalves(parts.halves));
      else halfToFloat(reader.readHalves(parts.halves), target);
    }
    if (reduce) addInto(data, offset + halves, reader.read(parts.floats));
    else copyInto(data, offset + halves, parts.floats);
    const now = performance.now();
    this.applyMs += now - began;
    if (Number.isNaN(this.firstChunkAt)) this.firstChunkAt = began;
  }

  private countReceived(g: number): void {
    const now = performance.now();
    if (g < this.plan.worldSize - 1 && --this.reduceScatterLeft === 0) this.reduceScatterDoneAt = now;
    if (--this.receiveLeft === 0) {
      this.receiveDoneAt = now;
      this.acknowledgeIncoming();
      this.finishIfDone();
    }
  }

  /**
   * Answers the left neighbour as soon as every chunk is here, without waiting for its half-close:
   * its all-reduce waits for this answer, and once this rank returns to training its event loop
   * may be blocked by compute for seconds.
   */
  private acknowledgeIncoming(): void {
    this.incoming?.succeed({ chunks_received: this.chunksReceived, bytes_received: String(this.bytesReceived) });
  }

  private onIncomingEnd(): void {
    const incoming = this.incoming!;
    if (this.receiveLeft === 0) {
      this.acknowledgeIncoming();
      return;
    }
    // A cancelled stream also ends, and gRPC may report the end before the cancellation: give
    // the cancellation a moment before taking the early end for the sender's mistake.
    const judge = () => {
      if (incoming.isBroken) {
        this.fail(collectiveError('COLLECTIVE_PEER_LOST', `left neighbour ${this.setup.leftPeer}: its stream broke off`, { peerRank: this.leftRank }));
        return;
      }
      const reason = `stream ended after ${this.chunksReceived} of ${this.chunksReceived + this.receiveLeft} chunks`;
      this.fail(collectiveError('COLLECTIVE_MALFORMED', `left neighbour ${this.setup.leftPeer}: ${reason}`, { peerRank: this.leftRank }), {
        code: status.INVALID_ARGUMENT,
        details: reason,
        refusal: 'ended_early',
      });
    };
    if (incoming.isBroken) judge();
    else setTimeout(judge, CANCEL_GRACE_MS).unref();
  }

  private finishIfDone(): void {
    if (this.state !== 'running' || this.receiveLeft > 0 || !this.acknowledged) return;
    this.state = 'succeeded';
    clearTimeout(this.timer);
    this.setup.settled(this, false);
    const timings = this.timings();
    // The answer to the left neighbour is written over a few event-loop turns (message, then
    // status); resolving first would let the caller's compute hold it back for a whole step.
    setImmediate(() => setImmediate(() => this.resolveResult(timings)));
  }

  private timings(): AllReduceTimings {
    const end = performance.now();
    return {
      totalMs: end - this.startedAt,
      firstChunkMs: this.firstChunkAt - this.startedAt,
      reduceScatterMs: this.reduceScatterDoneAt - this.startedAt,
      allGatherMs: this.receiveDoneAt - this.reduceScatterDoneAt,
      acknowledgeMs: end - this.receiveDoneAt,
      applyMs: this.applyMs,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      chunksSent: this.chunksSent,
      chunksReceived: this.chunksReceived,
    };
  }
}
