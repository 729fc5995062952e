// Original file: proto/fmnist/cluster/v1/collective.proto

export const Phase = {
  PHASE_UNSPECIFIED: 'PHASE_UNSPECIFIED',
  PHASE_REDUCE_SCATTER: 'PHASE_REDUCE_SCATTER',
  PHASE_ALL_GATHER: 'PHASE_ALL_GATHER',
} as const;

export type Phase =
  | 'PHASE_UNSPECIFIED'
  | 0
  | 'PHASE_REDUCE_SCATTER'
  | 1
  | 'PHASE_ALL_GATHER'
  | 2

export type Phase__Output = typeof Phase[keyof typeof Phase]
