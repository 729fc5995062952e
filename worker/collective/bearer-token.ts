/**
 * The run's shared token in gRPC metadata (`authorization: Bearer <token>`), compared in
 * constant time so that response timing does not leak how much of a guess was right.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';

const HEADER = 'authorization';
const SCHEME = 'Bearer ';

/** Metadata carrying `token`, or empty metadata when there is none. */
export function tokenMetadata(token: string | undefined): Metadata {
  const metadata = new Metadata();
  if (token !== undefined) metadata.set(HEADER, SCHEME + token);
  return metadata;
}

/** A check of incoming metadata against the expected token; everything passes when it is undefined. */
export function tokenChecker(expected: string | undefined): (metadata: Metadata) => boolean {
  if (expected === undefined) return () => true;
  const expectedDigest = digest(SCHEME + expected);
  return (metadata) => {
    const [value] = metadata.get(HEADER);
    // Digests have one length, so timingSafeEqual never throws and lengths do not leak either.
    return typeof value === 'string' && timingSafeEqual(digest(value), expectedDigest);
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
