/**
 * Our `Exchange` chunk encoder: what it writes is the .proto's message (the generic decoder
 * reads it back field for field), and the payload lands 4-byte aligned in the buffer grpc-js
 * hands the receiver, whatever the header's length and the payload's length varint take.
 */
import test from 'ava';
import type { ExchangeChunk } from '../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import { loadClusterProto } from '../shared/grpc/cluster-proto.ts';
import { collectiveService, encodeExchangeChunk } from '../worker/collective/exchange-codec.ts';
import { chunkPayload, splitPayload } from '../worker/collective/chunk-payload.ts';
import { halfToFloat } from '../worker/collective/float16.ts';
import { PayloadReader } from '../worker/collective/float32-chunks.ts';

const generic = loadClusterProto().fmnist.cluster.v1.Collective.service.Exchange;

function chunk(runId: string, values: Float32Array): ExchangeChunk {
  return {
    run_id: runId,
    generation: 3,
    step: 4_000_000_000,
    sequence: 7,
    purpose: 'gradients',
    phase: 'PHASE_REDUCE_SCATTER',
    ring_step: 2,
    chunk_index: 5,
    offset: 123_456,
    total_elements: 11_178_378,
    world_size: 4,
    sender_rank: 1,
    payload: Buffer.from(values.buffer, values.byteOffset, values.byteLength),
    float16_values: 0,
  };
}

/** The message as grpc-js's stream decoder delivers it: after a 5-byte prefix at the start of a fresh buffer. */
function asReceived(message: Buffer): Buffer {
  const framed = Buffer.from(new ArrayBuffer(5 + message.length));
  message.copy(framed, 5);
  return framed.subarray(5);
}

// Payloads of 1, 40 and 262,144 values take a 1-, 2- and 3-byte length; run ids of 1 to 4
// characters shift the header through every remainder mod 4.
for (const length of [1, 40, 262_144]) {
  test(`a chunk of ${length} values decodes to the same fields with its payload 4-byte aligned`, (t) => {
    const values = Float32Array.from({ length }, (_, i) => i * 0.25 - 3);
    for (const runId of ['r', 'ru', 'run', 'run-']) {
      const sent = chunk(runId, values);
      const decoded = generic.requestDeserialize(asReceived(encodeExchangeChunk(sent, generic.requestSerialize)));
      t.deepEqual({ ...decoded, payload: undefined, alignment: undefined }, { ...sent, payload: undefined, alignment: undefined });
      t.is(decoded.payload.byteOffset % 4, 0, `run id ${runId}`);
      t.true(decoded.alignment.every((b) => b === 0));
      const read = new PayloadReader().read(decoded.payload);
      t.is(read.buffer, decoded.payload.buffer, 'read in place, not copied');
      t.deepEqual(read, values);
    }
  });
}

test('a compressed chunk (an odd count of binary16 values, then float32) keeps its float32 part aligned and readable in place', (t) => {
  // Values 0, 1, 2 travel as binary16 (exactly: they are binary16 values), 3 and 4 as float32.
  const values = Float32Array.from([0.5, -1.25, 1024, 0.1, 1e-30]);
  for (const runId of ['r', 'ru', 'run', 'run-']) {
    const sent = { ...chunk(runId, new Float32Array(0)), float16_values: 3, payload: chunkPayload(values, 0, 5, 3) };
    t.is(sent.payload.byteLength, 3 * 2 + 2 + 2 * 4);
    const decoded = generic.requestDeserialize(asReceived(encodeExchangeChunk(sent, generic.requestSerialize)));
    t.is(decoded.float16_values, 3);
    const parts = splitPayload(decoded.payload, 3);
    const reader = new PayloadReader();
    const halves = new Float32Array(3);
    halfToFloat(reader.readHalves(parts.halves), halves);
    t.deepEqual(halves, values.subarray(0, 3));
    const floats = reader.read(parts.floats);
    t.is(floats.buffer, decoded.payload.buffer, 'float32 part read in place, not copied');
    t.deepEqual(floats, values.subarray(3));
  }
});

test('the service encodes Exchange chunks with our encoder and everything else as generated', (t) => {
  const service = collectiveService();
  const sent = chunk('run-1', new Float32Array([1.5, -2.25, 3e-8]));
  t.deepEqual(service.Exchange.requestSerialize(sent), encodeExchangeChunk(sent, generic.requestSerialize));
  t.not(service.Exchange.requestSerialize(sent).length, generic.requestSerialize(sent).length);
  t.is(service.Exchange.requestDeserialize, generic.requestDeserialize);
  t.is(service.Ping, loadClusterProto().fmnist.cluster.v1.Collective.service.Ping);
});
