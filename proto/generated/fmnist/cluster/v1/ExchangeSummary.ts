// Original file: proto/fmnist/cluster/v1/collective.proto

import type { Long } from '@grpc/proto-loader';

export interface ExchangeSummary {
  'chunks_received'?: (number);
  'bytes_received'?: (number | string | Long);
}

export interface ExchangeSummary__Output {
  'chunks_received': (number);
  'bytes_received': (string);
}
