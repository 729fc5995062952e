/**
 * Whether a received chunk is exactly the one the receiver expects next: same all-reduce, same
 * ring shape, the next chunk of its ring step, at the planned offset with the planned size.
 * The receiver knows the plan, so anything else is refused rather than trusted.
 */
import type { ExchangeChunk__Output } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import { halfValuesIn, payloadBytes } from './chunk-payload.ts';
import type { ExchangeKey } from './exchange-router.ts';
import type { RingPlan } from './ring-plan.ts';

/** What the receiver expects of every chunk of one all-reduce. */
export interface ChunkExpectation {
  plan: RingPlan;
  key: ExchangeKey;
  step: number;
  purpose: string;
  /** Values at the start of the vector that travel as binary16 (0: none). */
  float16Values: number;
  /** Rank of the left neighbour, the only allowed sender. */
  senderRank: number;
  /** Per ring step, the index of the chunk expected next (updated by the receiver). */
  nextChunk: Uint32Array;
}

/** A chunk that passed: ring step g, chunk j, where its values go and how many are binary16. */
export interface AcceptedChunk {
  g: number;
  j: number;
  offset: number;
  length: number;
  halves: number;
}

/** The accepted chunk, or why it was refused (for the INVALID_ARGUMENT details). */
export function checkChunk(m: ExchangeChunk__Output, e: ChunkExpectation): AcceptedChunk | string {
  const identity = checkIdentity(m, e);
  if (identity !== null) return identity;
  const g = e.plan.globalStep(m.phase, m.ring_step);
  if (g < 0) return `no ring step ${m.phase}/${m.ring_step} in a ring of ${e.plan.worldSize}`;
  const segment = e.plan.receiveSegment(g);
  const j = e.nextChunk[g];
  if (j >= e.plan.chunkCount(segment)) return `ring step ${g} has ${e.plan.chunkCount(segment)} chunks, got one more`;
  if (m.chunk_index !== j) return `ring step ${g}: expected chunk ${j}, got ${m.chunk_index}`;
  const { offset, length } = e.plan.chunk(segment, j);
  if (m.offset !== offset) return `ring step ${g} chunk ${j}: expected offset ${offset}, got ${m.offset}`;
  const halves = halfValuesIn(offset, length, e.float16Values);
  const bytes = payloadBytes(length, halves);
  if (m.payload.byteLength !== bytes) return `ring step ${g} chunk ${j}: expected ${bytes} payload bytes, got ${m.payload.byteLength}`;
  return { g, j, offset, length, halves };
}

function checkIdentity(m: ExchangeChunk__Output, e: ChunkExpectation): string | null {
  const { key, plan } = e;
  if (m.run_id !== key.runId || m.generation !== key.generation || m.sequence !== key.sequence) {
    return `chunk of all-reduce ${m.run_id}/g${m.generation}/#${m.sequence}, expected ${key.runId}/g${key.generation}/#${key.sequence}`;
  }
  if (m.step !== e.step) return `chunk of step ${m.step}, this rank reduces step ${e.step}`;
  if (m.purpose !== e.purpose) return `chunk for "${m.purpose}", this rank reduces "${e.purpose}"`;
  if (m.world_size !== plan.worldSize) return `sender has a ring of ${m.world_size}, this rank ${plan.worldSize}`;
  if (m.total_elements !== plan.length) return `sender reduces ${m.total_elements} values, this rank ${plan.length}`;
  if (m.float16_values !== e.float16Values) return `sender sends ${m.float16_values} values as binary16, this rank ${e.float16Values}`;
  if (m.sender_rank !== e.senderRank) return `chunk from rank ${m.sender_rank}, the left neighbour is rank ${e.senderRank}`;
  return null;
}
