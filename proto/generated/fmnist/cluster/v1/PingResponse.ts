// Original file: proto/fmnist/cluster/v1/collective.proto

import type { Long } from '@grpc/proto-loader';

export interface PingResponse {
  'rank'?: (number);
  'world_size'?: (number);
  'unix_time_ms'?: (number | string | Long);
}

export interface PingResponse__Output {
  'rank': (number);
  'world_size': (number);
  'unix_time_ms': (string);
}
