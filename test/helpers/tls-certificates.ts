/**
 * Throw-away certificate authorities and certificates for TLS tests, made with the `openssl`
 * command in a temporary directory: a CA per call of {@link makeCertificateAuthority}, so a test
 * can have certificates of two unrelated CAs. Leaf certificates name `127.0.0.1` and `localhost`
 * in their subject alternative names, because peers check the name they dialled against them.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** PEM file paths of one certificate and its key. */
export interface CertificateFiles {
  cert: string;
  key: string;
}

/** A CA that signs certificates into its own temporary directory. */
export interface CertificateAuthority extends CertificateFiles {
  /** Directory of every file of this CA; removed by `remove()`. */
  dir: string;
  /** A certificate for `name` signed by this CA, valid for 127.0.0.1 and localhost. */
  issue(name: string): Promise<CertificateFiles>;
  /** Removes the directory. Idempotent. */
  remove(): Promise<void>;
}

/** A new self-signed CA named `name` (prime-256 EC keys: fast to make on a loaded machine). */
export async function makeCertificateAuthority(name: string): Promise<CertificateAuthority> {
  const dir = await mkdtemp(path.join(tmpdir(), `fmnist-tls-${name}-`));
  const files = { cert: path.join(dir, 'ca.pem'), key: path.join(dir, 'ca-key.pem') };
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    ...out(files),
  ]);
  return {
    dir,
    ...files,
    issue: (leaf) => issue(dir, files, leaf),
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

function out(files: CertificateFiles): string[] {
  return ['-keyout', files.key, '-out', files.cert];
}

async function issue(dir: string, ca: CertificateFiles, name: string): Promise<CertificateFiles> {
  const files = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}-key.pem`) };
  const request = path.join(dir, `${name}.csr`);
  await run('openssl', [
    'req',
    '-new',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-subj',
    `/CN=${name}`,
    '-keyout',
    files.key,
    '-out',
    request,
  ]);
  const extensions = path.join(dir, `${name}.ext`);
  await run('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > "$1"`, 'sh', extensions]);
  await run('openssl', [
    'x509',
    '-req',
    '-in',
    request,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    extensions,
    '-out',
    files.cert,
  ]);
  return files;
}
