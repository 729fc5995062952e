/**
 * The gRPC server of a ring member: the `fmnist.cluster.v1.Collective` service on a loopback or
 * network port. It checks the token on every call, and hands each incoming `Exchange` stream,
 * once its first chunk says which all-reduce it belongs to, to the member. Before that it keeps
 * strangers bounded (RingLimits): streams per peer host, the wait for a first chunk, Pings per
 * second.
 */
import { Server, status, type Metadata } from '@grpc/grpc-js';
import type { ExchangeChunk__Output } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import type { CollectiveHandlers } from '../../proto/generated/fmnist/cluster/v1/Collective.ts';
import type { PingResponse } from '../../proto/generated/fmnist/cluster/v1/PingResponse.ts';
import { collectiveError } from './collective-status.ts';
import { collectiveService } from './exchange-codec.ts';
import { serverOptions, widenServerWindows } from './grpc-tuning.ts';
import { IncomingExchange, type ExchangeListener } from './incoming-exchange.ts';
import { PeerStreams } from './peer-streams.ts';
import { PeerPingBudgets } from './ping-budget.ts';
import type { RefusalReason } from './refusal-reason.ts';
import type { RingLimits } from './ring-options.ts';
import { ringServerCredentials, type RingTls } from './ring-tls.ts';
import { joinHostPort } from '../../shared/net/host-port.ts';

/** What the server asks of the ring member behind it. */
export interface CollectiveBackend {
  /** Whether the call's metadata carries the run's token. */
  isAuthorized(metadata: Metadata): boolean;
  /** A new `Exchange` stream, whose first chunk is `first`. */
  route(incoming: IncomingExchange, first: ExchangeChunk__Output): void;
  /** This member's identity, for `Ping`. */
  identity(): Omit<PingResponse, 'unix_time_ms'>;
  /** A call or stream was refused (counted by the member's owner). */
  refused(reason: RefusalReason): void;
}

/** Drops the events of a stream that has been answered but is still being sent. */
const IGNORE: ExchangeListener = { chunk() {}, end() {}, lost() {} };

const UNAUTHENTICATED = { code: status.UNAUTHENTICATED, details: 'missing or wrong token in the authorization metadata' };

/** Where and how the server listens. */
export interface CollectiveServerOptions {
  host: string;
  /** 0: a free one. */
  port: number;
  chunkBytes: number;
  /** Mutual TLS; undefined: plaintext. */
  tls: RingTls | undefined;
  /** What a stranger may make the server hold. */
  limits: Readonly<RingLimits>;
}

/** Starts the server; resolves with it and the port it listens on. */
export async function startCollectiveServer(
  { host, port, chunkBytes, tls, limits }: CollectiveServerOptions,
  backend: CollectiveBackend,
): Promise<{ server: Server; port: number }> {
  const server = new Server(serverOptions(chunkBytes, limits.maxStreamsPerPeer));
  widenServerWindows(server, () => backend.refused('tls_handshake'));
  server.addService(collectiveService(), handlers(backend, limits));
  const boundPort = await new Promise<number>((resolve, reject) => {
    server.bindAsync(joinHostPort(host, port), ringServerCredentials(tls), (error, bound) => {
      if (error === null) resolve(bound);
      else reject(collectiveError('COLLECTIVE_TRANSPORT', `cannot listen on ${joinHostPort(host, port)}: ${error.message}`, { cause: error }));
    });
  });
  return { server, port: boundPort };
}

function handlers(backend: CollectiveBackend, limits: Readonly<RingLimits>): CollectiveHandlers {
  const streams = new PeerStreams(limits.maxStreamsPerPeer);
  const pings = new PeerPingBudgets(limits.maxPingsPerSecond);
  return {
    Exchange(call, callback) {
      if (!backend.isAuthorized(call.metadata)) {
        backend.refused('unauthenticated');
        callback(UNAUTHENTICATED);
        return;
      }
      const release = streams.take(call.getPeer());
      if (release === null) {
        backend.refused('too_many_streams');
        callback({ code: status.RESOURCE_EXHAUSTED, details: `more than ${limits.maxStreamsPerPeer} streams open from this host` });
        return;
      }
      // A stream that never sends would otherwise keep its place (and its quota) for good.
      const silent = setTimeout(
        () => incoming.refuse('silent_stream', status.DEADLINE_EXCEEDED, `no chunk within ${limits.firstChunkTimeoutMs} ms`),
        limits.firstChunkTimeoutMs,
      );
      silent.unref();
      const incoming: IncomingExchange = new IncomingExchange(
        call,
        callback,
        {
          chunk(first) {
            clearTimeout(silent);
            incoming.listen(IGNORE);
            backend.route(incoming, first);
          },
          end() {
            clearTimeout(silent);
            incoming.refuse('ended_early', status.INVALID_ARGUMENT, 'stream ended before its first chunk');
          },
          lost() {
            clearTimeout(silent);
          },
        },
        (reason) => backend.refused(reason),
        release,
      );
    },
    Ping(call, callback) {
      if (!backend.isAuthorized(call.metadata)) {
        backend.refused('unauthenticated');
        callback(UNAUTHENTICATED);
        return;
      }
      if (!pings.take(call.getPeer())) {
        backend.refused('ping_rate');
        callback({ code: status.RESOURCE_EXHAUSTED, details: `more than ${limits.maxPingsPerSecond} pings per second from this host` });
        return;
      }
      callback(null, { ...backend.identity(), unix_time_ms: String(Date.now()) });
    },
  };
}
