/**
 * Loads the cluster's gRPC services (proto/fmnist/cluster/v1) for @grpc/grpc-js, typed by the
 * generated code in proto/generated.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../../proto/generated/collective.ts';
import { CLUSTER_PROTO_FILES, PROTO_LOADER_OPTIONS, PROTO_ROOT } from './proto-loader-options.ts';

let loaded: ProtoGrpcType | undefined;

/**
 * The `fmnist.cluster.v1` package: service client constructors (`.Collective`) with their
 * `.service` definitions for `grpc.Server#addService`. Parsed once per process, then cached.
 */
export function loadClusterProto(): ProtoGrpcType {
  if (loaded === undefined) {
    const definition = protoLoader.loadSync([...CLUSTER_PROTO_FILES], { ...PROTO_LOADER_OPTIONS, includeDirs: [PROTO_ROOT] });
    loaded = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return loaded;
}
