// Original file: proto/fmnist/cluster/v1/collective.proto


export interface PingRequest {
  'from_rank'?: (number);
}

export interface PingRequest__Output {
  'from_rank': (number);
}
