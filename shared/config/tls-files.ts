/**
 * PEM files named by flags (a certificate, its private key, the CA to trust), read and parsed
 * once at start-up: a missing, unreadable or malformed file, or a key that is not the
 * certificate's, is a ConfigError naming its flag there, rather than a TLS handshake that fails
 * later with a transport error far from the cause. Used by the ring's mutual TLS and by Redis.
 */
import { readFileSync } from 'node:fs';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { ConfigError } from '../errors.ts';

/** Paths of the PEM files, as given (relative to the working directory). */
export interface TlsFiles {
  /** Certificate(s) of the authority that signs the peers' certificates. */
  ca?: string;
  /** This process's certificate (chain). */
  cert?: string;
  /** The private key of `cert`. */
  key?: string;
}

/** The contents of {@link TlsFiles}, read and checked. */
export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** The flag that names each file, for errors (`tls-ca`, `redis-tls-ca`, ...). */
export type TlsOptionNames = Record<keyof TlsFiles, string>;

/**
 * Reads and checks the files given. `cert` and `key` come together or not at all; the key must
 * belong to the certificate. Throws ConfigError whose `option` is the flag of the file at fault.
 */
export function loadTlsMaterial(files: TlsFiles, names: TlsOptionNames): TlsMaterial {
  if ((files.cert === undefined) !== (files.key === undefined)) {
    const missing = files.cert === undefined ? names.cert : names.key;
    throw new ConfigError(`--${names.cert} and --${names.key} go together: --${missing} is missing`, { option: missing });
  }
  const material: TlsMaterial = {};
  if (files.ca !== undefined) material.ca = readPem(files.ca, 'certificate', names.ca);
  if (files.cert !== undefined && files.key !== undefined) {
    material.cert = readPem(files.cert, 'certificate', names.cert);
    material.key = readPem(files.key, 'private key', names.key);
    if (!new X509Certificate(material.cert).checkPrivateKey(createPrivateKey(material.key))) {
      throw new ConfigError(`--${names.key} ${files.key} is not the private key of --${names.cert} ${files.cert}`, { option: names.key });
    }
  }
  return material;
}

function readPem(file: string, kind: 'certificate' | 'private key', option: string): Buffer {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new ConfigError(`--${option}: cannot read ${file} (${reason})`, { option, cause: error });
  }
  try {
    if (kind === 'certificate') new X509Certificate(pem);
    else createPrivateKey(pem);
  } catch (error) {
    throw new ConfigError(`--${option}: ${file} is not a PEM ${kind}`, { option, cause: error });
  }
  return pem;
}
