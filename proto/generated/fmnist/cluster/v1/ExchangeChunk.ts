// Original file: proto/fmnist/cluster/v1/collective.proto

import type { Phase as _fmnist_cluster_v1_Phase, Phase__Output as _fmnist_cluster_v1_Phase__Output } from '../../../fmnist/cluster/v1/Phase.ts';

export interface ExchangeChunk {
  'run_id'?: (string);
  'generation'?: (number);
  'step'?: (number);
  'sequence'?: (number);
  'purpose'?: (string);
  'phase'?: (_fmnist_cluster_v1_Phase);
  'ring_step'?: (number);
  'chunk_index'?: (number);
  'offset'?: (number);
  'total_elements'?: (number);
  'world_size'?: (number);
  'sender_rank'?: (number);
  'payload'?: (Buffer | Uint8Array | string);
  'alignment'?: (Buffer | Uint8Array | string);
  'float16_values'?: (number);
}

export interface ExchangeChunk__Output {
  'run_id': (string);
  'generation': (number);
  'step': (number);
  'sequence': (number);
  'purpose': (string);
  'phase': (_fmnist_cluster_v1_Phase__Output);
  'ring_step': (number);
  'chunk_index': (number);
  'offset': (number);
  'total_elements': (number);
  'world_size': (number);
  'sender_rank': (number);
  'payload': (Buffer);
  'alignment': (Buffer);
  'float16_values': (number);
}
