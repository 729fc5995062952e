// Original file: proto/fmnist/cluster/v1/collective.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ExchangeChunk as _fmnist_cluster_v1_ExchangeChunk, ExchangeChunk__Output as _fmnist_cluster_v1_ExchangeChunk__Output } from '../../../fmnist/cluster/v1/ExchangeChunk.ts';
import type { ExchangeSummary as _fmnist_cluster_v1_ExchangeSummary, ExchangeSummary__Output as _fmnist_cluster_v1_ExchangeSummary__Output } from '../../../fmnist/cluster/v1/ExchangeSummary.ts';
import type { PingRequest as _fmnist_cluster_v1_PingRequest, PingRequest__Output as _fmnist_cluster_v1_PingRequest__Output } from '../../../fmnist/cluster/v1/PingRequest.ts';
import type { PingResponse as _fmnist_cluster_v1_PingResponse, PingResponse__Output as _fmnist_cluster_v1_PingResponse__Output } from '../../../fmnist/cluster/v1/PingResponse.ts';

export interface CollectiveClient extends grpc.Client {
  Exchange(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fmnist_cluster_v1_ExchangeSummary__Output>): grpc.ClientWritableStream<_fmnist_cluster_v1_ExchangeChunk>;
  Exchange(metadata: grpc.Metadata, callback: grpc.requestCallback<_fmnist_cluster_v1_ExchangeSummary__Output>): grpc.ClientWritableStream<_fmnist_cluster_v1_ExchangeChunk>;
  Exchange(options: grpc.CallOptions, callback: grpc.requestCallback<_fmnist_cluster_v1_ExchangeSummary__Output>): grpc.ClientWritableStream<_fmnist_cluster_v1_ExchangeChunk>;
  Exchange(callback: grpc.requestCallback<_fmnist_cluster_v1_ExchangeSummary__Output>): grpc.ClientWritableStream<_fmnist_cluster_v1_ExchangeChunk>;
  exchange(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fmnist_cluster_v1_ExchangeSummary__Output>): grpc.ClientWritableStream<_fmnist_cluster_v1_ExchangeChunk>;
  exchange(metadata: grpc.Metadata, callback: grpc.requestCallback<_fmnist_cluster_v1_ExchangeSummary__Output>): grpc.ClientWritableStream<_fmnist_cluster_v1_ExchangeChunk>;
  exchange(options: grpc.CallOptions, callback: grpc.requestCallback<_fmnist_cluster_v1_ExchangeSummary__Output>): grpc.ClientWritableStream<_fmnist_cluster_v1_ExchangeChunk>;
  exchange(callback: grpc.requestCallback<_fmnist_cluster_v1_ExchangeSummary__Output>): grpc.ClientWritableStream<_fmnist_cluster_v1_ExchangeChunk>;
  
  Ping(argument: _fmnist_cluster_v1_PingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fmnist_cluster_v1_PingResponse__Output>): grpc.ClientUnaryCall;
  Ping(argument: _fmnist_cluster_v1_PingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fmnist_cluster_v1_PingResponse__Output>): grpc.ClientUnaryCall;
  Ping(argument: _fmnist_cluster_v1_PingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fmnist_cluster_v1_PingResponse__Output>): grpc.ClientUnaryCall;
  Ping(argument: _fmnist_cluster_v1_PingRequest, callback: grpc.requestCallback<_fmnist_cluster_v1_PingResponse__Output>): grpc.ClientUnaryCall;
  ping(argument: _fmnist_cluster_v1_PingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fmnist_cluster_v1_PingResponse__Output>): grpc.ClientUnaryCall;
  ping(argument: _fmnist_cluster_v1_PingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fmnist_cluster_v1_PingResponse__Output>): grpc.ClientUnaryCall;
  ping(argument: _fmnist_cluster_v1_PingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fmnist_cluster_v1_PingResponse__Output>): grpc.ClientUnaryCall;
  ping(argument: _fmnist_cluster_v1_PingRequest, callback: grpc.requestCallback<_fmnist_cluster_v1_PingResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface CollectiveHandlers extends grpc.UntypedServiceImplementation {
  Exchange: grpc.handleClientStreamingCall<_fmnist_cluster_v1_ExchangeChunk__Output, _fmnist_cluster_v1_ExchangeSummary>;
  
  Ping: grpc.handleUnaryCall<_fmnist_cluster_v1_PingRequest__Output, _fmnist_cluster_v1_PingResponse>;
  
}

export interface CollectiveDefinition extends grpc.ServiceDefinition {
  Exchange: MethodDefinition<_fmnist_cluster_v1_ExchangeChunk, _fmnist_cluster_v1_ExchangeSummary, _fmnist_cluster_v1_ExchangeChunk__Output, _fmnist_cluster_v1_ExchangeSummary__Output>
  Ping: MethodDefinition<_fmnist_cluster_v1_PingRequest, _fmnist_cluster_v1_PingResponse, _fmnist_cluster_v1_PingRequest__Output, _fmnist_cluster_v1_PingResponse__Output>
}
