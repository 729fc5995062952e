import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { CollectiveClient as _fmnist_cluster_v1_CollectiveClient, CollectiveDefinition as _fmnist_cluster_v1_CollectiveDefinition } from './fmnist/cluster/v1/Collective.ts';
import type { ExchangeChunk as _fmnist_cluster_v1_ExchangeChunk, ExchangeChunk__Output as _fmnist_cluster_v1_ExchangeChunk__Output } from './fmnist/cluster/v1/ExchangeChunk.ts';
import type { ExchangeSummary as _fmnist_cluster_v1_ExchangeSummary, ExchangeSummary__Output as _fmnist_cluster_v1_ExchangeSummary__Output } from './fmnist/cluster/v1/ExchangeSummary.ts';
import type { PingRequest as _fmnist_cluster_v1_PingRequest, PingRequest__Output as _fmnist_cluster_v1_PingRequest__Output } from './fmnist/cluster/v1/PingRequest.ts';
import type { PingResponse as _fmnist_cluster_v1_PingResponse, PingResponse__Output as _fmnist_cluster_v1_PingResponse__Output } from './fmnist/cluster/v1/PingResponse.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  fmnist: {
    cluster: {
      v1: {
        Collective: SubtypeConstructor<typeof grpc.Client, _fmnist_cluster_v1_CollectiveClient> & { service: _fmnist_cluster_v1_CollectiveDefinition }
        ExchangeChunk: MessageTypeDefinition<_fmnist_cluster_v1_ExchangeChunk, _fmnist_cluster_v1_ExchangeChunk__Output>
        ExchangeSummary: MessageTypeDefinition<_fmnist_cluster_v1_ExchangeSummary, _fmnist_cluster_v1_ExchangeSummary__Output>
        Phase: EnumTypeDefinition
        PingRequest: MessageTypeDefinition<_fmnist_cluster_v1_PingRequest, _fmnist_cluster_v1_PingRequest__Output>
        PingResponse: MessageTypeDefinition<_fmnist_cluster_v1_PingResponse, _fmnist_cluster_v1_PingResponse__Output>
      }
    }
  }
}

