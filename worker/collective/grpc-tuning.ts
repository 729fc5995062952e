/**
 * gRPC channel and server settings for streams of large chunks between a few fixed peers.
 */
import type { ChannelOptions, Server, ServerCredentials } from '@grpc/grpc-js';
import type { Http2Server, Http2Session } from 'node:http2';

/**
 * HTTP/2 receive window, per stream and per connection (bytes). With Node's default of 64 KiB a
 * sender stops after 64 KiB until the receiver's event loop, busy with the previous chunk, hands
 * the window back. Measured on the 2-core VM: 2 ranks all-reduce 44.7 MB in ~100 ms with
 * 32 MiB windows against ~135 ms with the default.
 */
export const FLOW_CONTROL_WINDOW_BYTES = 32 << 20;

/**
 * Room for the chunk's header fields next to its payload in one message (bytes): the run id and
 * purpose (each at most MAX_TAG_TEXT_BYTES, checked by the sender), a dozen varints, the
 * alignment padding and the payload's tag and length.
 */
const HEADER_ALLOWANCE_BYTES = 4 << 10;

/** Longest run id or purpose an all-reduce tag may carry, in UTF-8 bytes (fits HEADER_ALLOWANCE_BYTES). */
export const MAX_TAG_TEXT_BYTES = 1 << 10;

/** The gRPC message size limit that fits a chunk of `chunkBytes` payload bytes. */
export function messageLimit(chunkBytes: number): number {
  return chunkBytes + HEADER_ALLOWANCE_BYTES;
}

/** Options of the channel to the right neighbour. */
export function channelOptions(chunkBytes: number): ChannelOptions {
  return {
    'grpc.max_send_message_length': messageLimit(chunkBytes),
    'grpc.max_receive_message_length': messageLimit(chunkBytes),
    'grpc-node.flow_control_window': FLOW_CONTROL_WINDOW_BYTES,
    // Retries would keep copies of the stream's messages to replay them; a failed all-reduce is
    // failed as a whole instead (the trainer re-forms the ring).
    'grpc.enable_retries': 0,
    // A channel of its own per member, so that two members in one process (tests) do not share
    // one connection and one member's failure stays its own.
    'grpc.use_local_subchannel_pool': 1,
  };
}

/**
 * Options of the member's server. A message over the limit is refused by grpc-js with
 * RESOURCE_EXHAUSTED before it is decoded; `maxStreamsPerConnection` is HTTP/2's
 * MAX_CONCURRENT_STREAMS (a client past it gets its stream reset, REFUSED_STREAM).
 */
export function serverOptions(chunkBytes: number, maxStreamsPerConnection: number): ChannelOptions {
  return {
    'grpc.max_send_message_length': messageLimit(chunkBytes),
    'grpc.max_receive_message_length': messageLimit(chunkBytes),
    'grpc.max_concurrent_streams': maxStreamsPerConnection,
  };
}

/**
 * Gives every HTTP/2 session `server` accepts the large receive window
 * ({@link FLOW_CONTROL_WINDOW_BYTES}), and tells `onTlsRefused` of each connection that did not
 * complete the TLS handshake (a plaintext client, a certificate of another CA or none), which
 * grpc-js drops without a word. grpc-js 1.14 applies 'grpc-node.flow_control_window' to clients
 * only, and chunks flow from client to server here, so this wraps the server's (internal)
 * `createHttp2Server` to see each session. When a grpc-js version lacks that method, the server
 * keeps Node's default window: slower, not wrong (test/collective-ring.test.ts checks the window
 * a client is offered, so such an upgrade shows).
 */
export function widenServerWindows(server: Server, onTlsRefused?: () => void): void {
  const internals = server as unknown as { createHttp2Server?: (credentials: ServerCredentials) => Http2Server };
  const create = internals.createHttp2Server;
  if (typeof create !== 'function') return;
  internals.createHttp2Server = (credentials) => {
    const http2Server = create.call(server, credentials);
    http2Server.on('session', widenSessionWindow);
    if (onTlsRefused) http2Server.on('tlsClientError', onTlsRefused);
    return http2Server;
  };
}

function widenSessionWindow(session: Http2Session): void {
  try {
    session.setLocalWindowSize(FLOW_CONTROL_WINDOW_BYTES);
    session.settings({ initialWindowSize: FLOW_CONTROL_WINDOW_BYTES });
  } catch {
    // A session that closed before its settings went out has nothing left to tune.
  }
}
