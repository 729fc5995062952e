/**
 * A plain generated Collective client for playing a hostile peer: it sends whatever fields it is
 * given, and each call resolves with the status the member answered.
 */
import { credentials, Metadata, status } from '@grpc/grpc-js';
import type { CollectiveClient } from '../../proto/generated/fmnist/cluster/v1/Collective.ts';
import type { ExchangeChunk } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import { loadClusterProto } from '../../shared/grpc/cluster-proto.ts';

/** A client with the generic protobuf encoder and message limits far above the member's. */
export function rawClient(address: string): CollectiveClient {
  const { Collective } = loadClusterProto().fmnist.cluster.v1;
  return new Collective(address, credentials.createInsecure(), {
    'grpc.max_send_message_length': -1,
    'grpc.use_local_subchannel_pool': 1,
  });
}

export function bearer(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

/** The status code of one Ping. */
export function pingStatus(client: CollectiveClient, metadata: Metadata): Promise<status> {
  return new Promise((resolve) => client.Ping({ from_rank: 0 }, metadata, (error) => resolve(error === null ? status.OK : error.code)));
}

/**
 * The status code of an Exchange after writing `chunks` (then half-closing unless `end` is
 * false), within `deadlineMs` when given.
 */
export function exchangeStatus(
  client: CollectiveClient,
  metadata: Metadata,
  chunks: ExchangeChunk[],
  options: { end?: boolean; deadlineMs?: number } = {},
): Promise<status> {
  return new Promise((resolve) => {
    const callOptions = options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
    const call = client.Exchange(metadata, callOptions, (error) => resolve(error === null ? status.OK : error.code));
    call.on('error', () => {});
    for (const chunk of chunks) call.write(chunk);
    if (options.end !== false) call.end();
  });
}
