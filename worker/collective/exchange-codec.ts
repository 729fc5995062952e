/**
 * The `Collective` service with our own encoder for `Exchange` chunks. The wire format is the
 * .proto's; only the encoder changes, because the generic protobuf one costs a copy of every
 * payload into a growing writer and then another into the final buffer, and puts the payload at
 * whatever offset the header leaves, so the receiver has to copy it again to read float32.
 * This one writes the header (protobuf, a few dozen bytes), an `alignment` field, then the
 * payload tag and length, and copies the payload once, at an offset that is a multiple of 4
 * from the start of the gRPC frame (grpc-js gathers a received message with its 5-byte prefix
 * into a fresh buffer, so the receiver can read the values in place: float32-chunks.ts).
 * Decoding stays protobuf's, which slices `bytes` fields without copying.
 */
import { makeGenericClientConstructor, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import type { CollectiveClient, CollectiveDefinition } from '../../proto/generated/fmnist/cluster/v1/Collective.ts';
import type { ExchangeChunk } from '../../proto/generated/fmnist/cluster/v1/ExchangeChunk.ts';
import { loadClusterProto } from '../../shared/grpc/cluster-proto.ts';

/** Field 13 (`payload`) and 14 (`alignment`), wire type 2 (length-delimited). */
const PAYLOAD_TAG = (13 << 3) | 2;
const ALIGNMENT_TAG = (14 << 3) | 2;
/** grpc-js puts a 1-byte compression flag and a 4-byte length in front of every message. */
const GRPC_PREFIX_BYTES = 5;

type Serialize = (chunk: ExchangeChunk) => Buffer;

let service: CollectiveDefinition | undefined;

/** The `Collective` service definition (for `Server#addService`) with the chunk encoder below. */
export function collectiveService(): CollectiveDefinition {
  if (service === undefined) {
    const generic = loadClusterProto().fmnist.cluster.v1.Collective.service;
    const encodeHeader = generic.Exchange.requestSerialize as Serialize;
    service = { ...generic, Exchange: { ...generic.Exchange, requestSerialize: (chunk: ExchangeChunk) => encodeExchangeChunk(chunk, encodeHeader) } };
  }
  return service;
}

/** A client of {@link collectiveService} (same calls as the generated `CollectiveClient`). */
export function collectiveClient(address: string, credentials: ChannelCredentials, options: ChannelOptions): CollectiveClient {
  const Client = makeGenericClientConstructor(collectiveService(), 'Collective');
  return new Client(address, credentials, options) as unknown as CollectiveClient;
}

/**
 * `chunk` as protobuf bytes, the payload last and 4-byte aligned counting the gRPC prefix.
 * `encodeHeader` is the generic encoder, used for every field but the payload.
 */
export function encodeExchangeChunk(chunk: ExchangeChunk, encodeHeader: Serialize): Buffer {
  const { payload, ...fields } = chunk;
  if (payload === undefined || typeof payload === 'string') return encodeHeader(chunk);
  const header = encodeHeader(fields);
  const lengthBytes = varintSize(payload.byteLength);
  // Tag and 1-byte length of the alignment field, then the payload's tag and length.
  const unpadded = GRPC_PREFIX_BYTES + header.length + 2 + 1 + lengthBytes;
  const padding = (4 - (unpadded % 4)) % 4;
  const out = Buffer.allocUnsafe(header.length + 2 + padding + 1 + lengthBytes + payload.byteLength);
  header.copy(out, 0);
  let at = header.length;
  out[at++] = ALIGNMENT_TAG;
  out[at++] = padding;
  out.fill(0, at, at + padding);
  at += padding;
  out[at++] = PAYLOAD_TAG;
  at = writeVarint(out, at, payload.byteLength);
  out.set(payload, at);
  return out;
}

function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size += 1;
  return size;
}

function writeVarint(out: Buffer, at: number, value: number): number {
  let rest = value;
  while (rest >= 0x80) {
    out[at++] = (rest % 0x80) | 0x80;
    rest = Math.floor(rest / 0x80);
  }
  out[at++] = rest;
  return at;
}
