import { FmnistError } from '../errors.ts';

/** A Redis server that cannot be reached, or one we could not start. */
export class RedisError extends FmnistError {
  constructor(code: `REDIS_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
