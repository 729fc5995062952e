import { FmnistError } from '../errors.ts';

/**
 * A Redis server that cannot be reached, or one we could not start. Codes: REDIS_UNAVAILABLE
 * (no answer), REDIS_AUTH (the server refused our credentials: wrong or missing password,
 * unknown ACL user, or a user without the rights), REDIS_TLS (the TLS handshake failed: an
 * untrusted or misnamed server certificate, or a client certificate the server refused),
 * REDIS_START_FAILED, REDIS_PORT_IN_USE, REDIS_SERVER_NOT_FOUND, REDIS_CLOSED.
 */
export class RedisError extends FmnistError {
  constructor(code: `REDIS_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Error replies that refuse the client's credentials: the first word of Redis's reply, its stable code. */
const AUTH_REPLY = /\b(NOAUTH|WRONGPASS|NOPERM)\b/;
/** Node's and OpenSSL's codes of a failed certificate check or handshake. */
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_)/;

/**
 * The RedisError for a connection failure that retrying will not cure (credentials, TLS), or
 * undefined for the others (a server that is down or slow may come back). `where` names the
 * server (a masked URL).
 */
export function permanentRedisError(error: Error, where: string): RedisError | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  if (AUTH_REPLY.test(error.message)) {
    return new RedisError(
      'REDIS_AUTH',
      `Redis at ${where} refused the credentials (${AUTH_REPLY.exec(error.message)![1]}): check --redis-user / REDIS_USERNAME and --redis-password / REDIS_PASSWORD`,
      { cause: error },
    );
  }
  if (typeof code === 'string' && TLS_CODE.test(code)) {
    return new RedisError('REDIS_TLS', `TLS with Redis at ${where} failed (${code}): check --redis-tls-ca and the server's certificate`, { cause: error });
  }
  return undefined;
}
