/**
 * A worker's place in the gradient ring: a gRPC server that receives from the left neighbour, a
 * channel to the right neighbour, and the sum all-reduce over both (reduce-scatter, then
 * all-gather, chunked and pipelined; see ring-plan.ts).
 *
 * ```ts
 * const member = await RingMember.start({ rank, worldSize, authToken });
 * // publish member.address through the rendezvous, get every rank's address back
 * await member.connect(peers);
 * const timings = await member.allReduceSum(gradient, { runId, generation, step });
 * // gradient now holds the sum over ranks, bit-identical on every rank; divide by worldSize
 * await member.close();
 * ```
 */
import { Server, status, type Metadata } from '@grpc/grpc-js';
import type { CollectiveClient } from '../../proto/generated/fmnist/cluster/v1/Collective.ts';
import type { ExchangeChunk__Output } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import type { PingResponse__Output } from '../../proto/generated/fmnist/cluster/v1/PingResponse.ts';
import { AllReduceOperation, type AllReduceTag, type AllReduceTimings } from './allreduce-operation.ts';
import { tokenChecker, tokenMetadata } from './bearer-token.ts';
import { startCollectiveServer } from './collective-server.ts';
import { collectiveError, errorFromStatus } from './collective-status.ts';
import { collectiveClient } from './exchange-codec.ts';
import { ExchangeRouter } from './exchange-router.ts';
import { PayloadReader } from './float32-chunks.ts';
import { channelOptions, MAX_TAG_TEXT_BYTES, messageLimit } from './grpc-tuning.ts';
import type { IncomingExchange } from './incoming-exchange.ts';
import { joinHostPort } from '../../shared/net/host-port.ts';
import { compileRingOptions, type CompiledRingOptions, type RingOptions } from './ring-options.ts';
import { RingPlan, type RingWindow } from './ring-plan.ts';
import { ringChannelCredentials } from './ring-tls.ts';
import { watchForTlsMismatch } from './tls-mismatch.ts';

export type { AllReduceTag, AllReduceTimings } from './allreduce-operation.ts';
export type { CollectiveCode } from './collective-status.ts';
export type { RingLimits, RingOptions } from './ring-options.ts';
export type { RingTls } from './ring-tls.ts';

/**
 * 'listening': the server is up, no ring yet; 'connecting': checking the right neighbour;
 * 'connected': ready for all-reduces; 'closing'/'closed': shut down (every call fails).
 */
export type RingMemberState = 'listening' | 'connecting' | 'connected' | 'closing' | 'closed';

/** How long close() lets calls in flight finish before it cuts the connections (ms). */
const SHUTDOWN_GRACE_MS = 1000;
const MAX_UINT32 = 0xffff_ffff;

/** One worker's member of the all-reduce ring. */
export class RingMember {
  private stateValue: RingMemberState = 'listening';
  private server: Server | null = null;
  private boundAddress = '';
  private client: CollectiveClient | null = null;
  private peers: string[] = [];
  /** Run ranks of the ring formed by connect, in ring order (every rank, or the hosts' leaders). */
  private members: readonly number[] = [];
  /** This member's position in `members`. */
  private position = 0;
  /** All-reduces started on the current ring; the next one's `sequence`. */
  private sequence = 0;
  private running: AllReduceOperation | null = null;
  private closing: Promise<void> | null = null;
  private readonly router: ExchangeRouter;
  private readonly reader = new PayloadReader();
  private readonly isAuthorized: (metadata: Metadata) => boolean;
  private readonly metadata: Metadata;

  private constructor(private readonly options: CompiledRingOptions) {
    this.router = new ExchangeRouter(options.limits, messageLimit(options.chunkBytes));
    this.isAuthorized = tokenChecker(options.authToken);
    this.metadata = tokenMetadata(options.authToken);
  }

  /**
   * Checks `options` (ConfigError when invalid) and starts the member's gRPC server.
   * @throws CollectiveError COLLECTIVE_TRANSPORT when the port cannot be bound
   */
  static async start(options: RingOptions): Promise<RingMember> {
    const member = new RingMember(compileRingOptions(options));
    const { listenHost, port, chunkBytes, advertiseHost, tls, limits } = member.options;
    const started = await startCollectiveServer(
      { host: listenHost, port, chunkBytes, tls, limits },
      {
        isAuthorized: (metadata) => member.isAuthorized(metadata),
        route: (incoming, first) => member.route(incoming, first),
        identity: () => ({ rank: member.rank, world_size: member.worldSize }),
        refused: (reason) => member.options.onRefused(reason),
      },
    );
    member.server = started.server;
    member.boundAddress = joinHostPort(advertiseHost, started.port);
    return member;
  }

  /** `host:port` peers dial to reach this member (publish it through the rendezvous). */
  get address(): string {
    return this.boundAddress;
  }

  get rank(): number {
    return this.options.rank;
  }

  get worldSize(): number {
    return this.options.worldSize;
  }

  get state(): RingMemberState {
    return this.stateValue;
  }

  /**
   * What this member holds for all-reduces that have not started here: streams, bytes now, and
   * the most bytes ever (never above RingLimits.maxHeldBytes).
   */
  get held(): { streams: number; bytes: number; peakBytes: number } {
    return { streams: this.router.heldStreams, bytes: this.router.heldBytes, peakBytes: this.router.peakHeldBytes };
  }

  /**
   * Forms the ring: `peers[k]` is rank k's address (this member's own entry included). Opens the
   * channel to the right neighbour and pings it, checking its rank, ring size and the token.
   * Call it again with the new list for each new generation; all-reduce sequence numbers
   * restart at 0 on every rank. No barrier is needed after it: a neighbour that connected first
   * and already started the new ring's first all-reduce is held until this member joins in.
   *
   * `members` makes the ring of only those ranks (ascending, this one among them), e.g. the
   * hosts' leaders of the hierarchical all-reduce: the ring's size is then their count and this
   * member's place its index there, while Pings still check run ranks and errors still name them.
   * @throws CollectiveError COLLECTIVE_TIMEOUT, _UNAUTHENTICATED, _PEER_MISMATCH, _PEER_LOST, _BAD_ARGUMENT, _BUSY, _CLOSED
   */
  async connect(peers: readonly string[], members: readonly number[] = peers.map((_, rank) => rank)): Promise<void> {
    this.assertOpen();
    if (this.running !== null) throw collectiveError('COLLECTIVE_BUSY', 'cannot re-form the ring during an all-reduce');
    checkPeers(peers, this.worldSize);
    checkMembers(members, this.rank, this.worldSize);
    this.client?.close();
    this.client = null;
    this.stateValue = 'connecting';
    const position = members.indexOf(this.rank);
    try {
      if (members.length > 1) await this.connectRight(peers, members[(position + 1) % members.length]);
    } catch (error) {
      if (this.stateValue === 'connecting') this.stateValue = 'listening';
      throw error;
    }
    this.assertOpen();
    this.peers = [...peers];
    this.members = [...members];
    this.position = position;
    this.sequence = 0;
    this.router.reset();
    this.stateValue = 'connected';
  }

  /**
   * Replaces `data` on this rank by the element-wise sum of every rank's `data` (the caller
   * divides for a mean). Every rank must call it with arrays of the same length, the same tag
   * and in the same order as its other all-reduces. The result is bit-identical on every rank
   * and the same from run to run. With `tag.float16Values` the values before it are summed in
   * binary16 (rounded on every rank, half the bytes; see AllReduceTag). With one rank it returns
   * at once, rounding nothing. `data` must not be touched
   * until the promise settles; after a failure its content is undefined.
   * @returns where the time went on this rank
   * @throws CollectiveError (see {@link CollectiveCode}); the ring should then be re-formed
   */
  async allReduceSum(data: Float32Array, tag: AllReduceTag): Promise<AllReduceTimings> {
    this.assertOpen();
    if (this.stateValue !== 'connected') throw collectiveError('COLLECTIVE_NOT_CONNECTED', 'call connect(peers) before allReduceSum');
    if (this.running !== null) throw collectiveError('COLLECTIVE_BUSY', 'another all-reduce is running on this member');
    checkTag(tag);
    checkData(data);
    checkWindow(data.length, tag.window);
    checkFloat16Values(tag, data);
    if (this.members.length === 1) return idleTimings();
    const operation = this.newOperation(data, tag);
    this.running = operation;
    operation.start();
    this.router.begin(operation);
    return operation.result;
  }

  /**
   * Fails a running all-reduce (COLLECTIVE_CLOSED), refuses waiting streams, closes the channel
   * and stops the server (grace period, then force). Returns the same promise when called again.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.stateValue = 'closing';
    const steps: Array<() => unknown> = [
      () => this.running?.fail(collectiveError('COLLECTIVE_CLOSED', `rank ${this.rank} is closing`)),
      () => this.router.refuseAllWaiting(status.UNAVAILABLE, `rank ${this.rank} is shutting down`),
      () => this.client?.close(),
      () => (this.server === null ? undefined : stopServer(this.server, SHUTDOWN_GRACE_MS)),
    ];
    for (const step of steps) {
      try {
        await step();
      } catch {
        // Each step runs whatever the others did: a half-closed member must not keep a port.
      }
    }
    this.stateValue = 'closed';
  }

  private newOperation(data: Float32Array, tag: AllReduceTag): AllReduceOperation {
    const { chunkBytes, timeoutMs } = this.options;
    const client = this.client!;
    const size = this.members.length;
    const left = this.members[(this.position + size - 1) % size];
    const right = this.members[(this.position + 1) % size];
    return new AllReduceOperation({
      plan: new RingPlan(data.length, size, this.position, chunkBytes / 4, tag.window),
      data,
      tag,
      sequence: this.sequence++,
      timeoutMs,
      openExchange: (deadline, done) => client.Exchange(this.metadata, { deadline }, (error) => done(error)),
      reader: this.reader,
      leftPeer: this.describePeer(left),
      rightPeer: this.describePeer(right),
      leftRank: left,
      rightRank: right,
      settled: (operation, failed) => {
        if (this.running === operation) this.running = null;
        this.router.end(operation, failed);
      },
    });
  }

  private route(incoming: IncomingExchange, first: ExchangeChunk__Output): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') {
      incoming.refuse('shutting_down', status.UNAVAILABLE, `rank ${this.rank} is shutting down`);
      return;
    }
    this.router.route(incoming, first);
  }

  /** Pings `right` (a run rank): it must be that rank of this run's size, whatever ring is formed. */
  private async connectRight(peers: readonly string[], right: number): Promise<void> {
    const client = collectiveClient(peers[right], ringChannelCredentials(this.options.tls), channelOptions(this.options.chunkBytes));
    this.client = client;
    const peer = `right neighbour rank ${right} (${peers[right]})`;
    const pinged = new Promise<PingResponse__Output>((resolve, reject) => {
      const deadline = new Date(Date.now() + this.options.connectTimeoutMs);
      // The neighbour's server may still be starting: wait for it rather than fail at once.
      const metadata = this.metadata.clone();
      metadata.setOptions({ waitForReady: true });
      client.Ping({ from_rank: this.rank }, metadata, { deadline }, (error, response) => {
        if (error !== null) reject(errorFromStatus(error, peer, right));
        else resolve(response!);
      });
    });
    // With TLS, a neighbour that never completes a handshake must not look like one still starting.
    const watch = this.options.tls ? watchForTlsMismatch(client, { fromRank: this.rank, metadata: this.metadata }, peer, right) : undefined;
    const reply = await (watch ? Promise.race([pinged, watch.mismatch]) : pinged).finally(() => watch?.stop());
    if (reply.rank !== right || reply.world_size !== this.worldSize) {
      throw collectiveError(
        'COLLECTIVE_PEER_MISMATCH',
        `${peers[right]} is rank ${reply.rank} of ${reply.world_size}, expected rank ${right} of ${this.worldSize}`,
        { peerRank: right },
      );
    }
  }

  private describePeer(rank: number): string {
    return `rank ${rank} (${this.peers[rank]})`;
  }

  private assertOpen(): void {
    if (this.stateValue === 'closing' || this.stateValue === 'closed') {
      throw collectiveError('COLLECTIVE_CLOSED', `ring member rank ${this.rank} is closed`);
    }
  }
}

function checkPeers(peers: readonly string[], worldSize: number): void {
  if (!Array.isArray(peers) || peers.length !== worldSize || peers.some((p) => typeof p !== 'string' || p === '')) {
    throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `peers must list ${worldSize} addresses (index = rank), got ${JSON.stringify(peers)}`);
  }
}

function checkMembers(members: readonly number[], rank: number, worldSize: number): void {
  const ascending = Array.isArray(members) && members.every((m, i) => Number.isInteger(m) && m >= 0 && m < worldSize && (i === 0 || m > members[i - 1]));
  if (!ascending || !members.includes(rank)) {
    throw collectiveError(
      'COLLECTIVE_BAD_ARGUMENT',
      `members must list ascending ranks below ${worldSize}, rank ${rank} among them, got ${JSON.stringify(members)}`,
    );
  }
}

function checkTag(tag: AllReduceTag): void {
  const isUint32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= MAX_UINT32;
  if (typeof tag.runId !== 'string' || tag.runId === '' || !isUint32(tag.generation) || !isUint32(tag.step)) {
    throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `tag needs a runId and uint32 generation and step, got ${JSON.stringify(tag)}`);
  }
  if (tag.purpose !== undefined && typeof tag.purpose !== 'string') {
    throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `tag.purpose must be a string, got ${JSON.stringify(tag.purpose)}`);
  }
  // The receiver's message limit leaves room for this much header text (grpc-tuning.ts).
  if (Buffer.byteLength(tag.runId) > MAX_TAG_TEXT_BYTES || Buffer.byteLength(tag.purpose ?? '') > MAX_TAG_TEXT_BYTES) {
    throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `tag.runId and tag.purpose must be at most ${MAX_TAG_TEXT_BYTES} UTF-8 bytes each`);
  }
}

function checkFloat16Values(tag: AllReduceTag, data: Float32Array): void {
  const count = tag.float16Values;
  if (count !== undefined && !(Number.isInteger(count) && count >= 0 && count <= data.length)) {
    throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `tag.float16Values must be an integer from 0 to ${data.length}, got ${JSON.stringify(count)}`);
  }
}

function checkData(data: Float32Array): void {
  if (!(data instanceof Float32Array) || data.length > MAX_UINT32) {
    throw collectiveError('COLLECTIVE_BAD_ARGUMENT', 'data must be a Float32Array of at most 2^32-1 values');
  }
}

/** A window must hold the vector: offset + length <= total, all uint32. */
export function checkWindow(length: number, window: RingWindow | undefined): void {
  if (window === undefined) return;
  const isUint32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= MAX_UINT32;
  if (!isUint32(window.offset) || !isUint32(window.total) || window.offset + length > window.total) {
    throw collectiveError('COLLECTIVE_BAD_ARGUMENT', `window ${JSON.stringify(window)} does not hold ${length} values`);
  }
}

function idleTimings(): AllReduceTimings {
  return {
    totalMs: 0,
    firstChunkMs: 0,
    reduceScatterMs: 0,
    allGatherMs: 0,
    acknowledgeMs: 0,
    applyMs: 0,
    bytesSent: 0,
    bytesReceived: 0,
    chunksSent: 0,
    chunksReceived: 0,
  };
}

async function stopServer(server: Server, graceMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    force.unref();
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
