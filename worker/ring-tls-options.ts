/**
 * `--tls-cert`, `--tls-key` and `--tls-ca` of a worker (FMNIST_TLS_CERT, FMNIST_TLS_KEY,
 * FMNIST_TLS_CA): the files of the ring's mutual TLS, all three or none, read once at start-up.
 */
import { ConfigError } from '../shared/errors.ts';
import { loadTlsMaterial, type TlsFiles } from '../shared/config/tls-files.ts';
import type { RingTls } from './collective/ring-tls.ts';

const NAMES = { ca: 'tls-ca', cert: 'tls-cert', key: 'tls-key' } as const;

/** The files from the options, else the environment (an empty variable counts as unset). */
export function ringTlsFiles(options: TlsFiles, env: NodeJS.ProcessEnv): TlsFiles {
  return {
    ca: options.ca ?? (env.FMNIST_TLS_CA || undefined),
    cert: options.cert ?? (env.FMNIST_TLS_CERT || undefined),
    key: options.key ?? (env.FMNIST_TLS_KEY || undefined),
  };
}

/**
 * The ring's TLS material, or undefined when no file is named. Mutual TLS needs all three: a
 * certificate alone could not check its peers, a CA alone could not answer their checks.
 * Throws ConfigError whose `option` is the flag missing or at fault.
 */
export function compileRingTls(files: TlsFiles): RingTls | undefined {
  if (files.ca === undefined && files.cert === undefined && files.key === undefined) return undefined;
  const missing = (Object.keys(NAMES) as (keyof TlsFiles)[]).find((name) => files[name] === undefined);
  if (missing !== undefined) {
    throw new ConfigError(`the ring's mutual TLS needs --tls-cert, --tls-key and --tls-ca: --${NAMES[missing]} is missing`, { option: NAMES[missing] });
  }
  const { ca, cert, key } = loadTlsMaterial(files, NAMES);
  return { ca: ca!, cert: cert!, key: key! };
}
