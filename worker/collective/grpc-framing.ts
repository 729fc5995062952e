/**
 * Sends a chunk's message without grpc-js copying it once more. grpc-js frames every outgoing
 * message by allocating a buffer 5 bytes longer (compression flag, length) and copying the message
 * into it: for the ring, one more pass over every byte a rank sends (44.7 MB per all-reduce of
 * ResNet-18's gradient). The chunk encoder instead allocates its message with 5 spare bytes in
 * front ({@link messageWithFramePrefix}), and grpc-js' identity framing, patched here once, writes
 * the prefix into them and sends the very same memory. Any other message is framed as before.
 *
 * This reaches into grpc-js internals (its CompressionFilter's identity handler, 1.14): should a
 * version lay them out differently, the patch is not installed and framing copies as it always
 * did (slower, not wrong; test/exchange-codec.test.ts checks that the patch is in place).
 */
import { createRequire } from 'node:module';

const PREFIX_BYTES = 5;

/** Messages whose PREFIX_BYTES bytes before them, in the same memory, are free for the frame prefix. */
const prefixed = new WeakSet<Buffer>();

let installed: boolean | undefined;

/** A buffer of `bytes` bytes for a message, with room in front for its gRPC frame prefix. */
export function messageWithFramePrefix(bytes: number): Buffer {
  const message = Buffer.allocUnsafe(PREFIX_BYTES + bytes).subarray(PREFIX_BYTES);
  prefixed.add(message);
  return message;
}

interface FramingHandler {
  writeMessage: (this: FramingHandler, message: Buffer, compress: boolean) => Promise<Buffer>;
}

/** Patches grpc-js' identity framing (once); true when outgoing chunks are framed in place. */
export function installInPlaceFraming(): boolean {
  installed ??= patchIdentityFraming();
  return installed;
}

function patchIdentityFraming(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const { CompressionFilter } = require('@grpc/grpc-js/build/src/compression-filter.js') as {
      CompressionFilter: new (options: object, shared: object) => { sendCompression: FramingHandler };
    };
    const identity = Object.getPrototypeOf(new CompressionFilter({}, {}).sendCompression) as FramingHandler;
    const frameByCopy = identity.writeMessage;
    if (typeof frameByCopy !== 'function') return false;
    identity.writeMessage = function (this: FramingHandler, message: Buffer, compress: boolean): Promise<Buffer> {
      if (compress || !prefixed.has(message)) return frameByCopy.call(this, message, compress);
      const frame = Buffer.from(message.buffer, message.byteOffset - PREFIX_BYTES, message.length + PREFIX_BYTES);
      frame.writeUInt8(0, 0);
      frame.writeUInt32BE(message.length, 1);
      return Promise.resolve(frame);
    };
    return true;
  } catch {
    return false;
  }
}
