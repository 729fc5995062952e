import type { RunFailure } from '../shared/run/run-state.ts';

/** `COLLECTIVE_PEER_LOST on rank 0 (peer rank 1)`: a failure's typed fields, for people. */
export function describeFailure(failure: RunFailure): string {
  const rank = failure.rank === undefined ? '' : ` on rank ${failure.rank}`;
  const peer = failure.peerRank === undefined ? '' : ` (peer rank ${failure.peerRank})`;
  const errno = failure.errno === undefined ? '' : ` (${failure.errno})`;
  return `${failure.code}${rank}${peer}${errno}`;
}
