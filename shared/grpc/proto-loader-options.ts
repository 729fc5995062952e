/**
 * How `.proto` files become JavaScript objects, in one place: the runtime loader
 * (`@grpc/proto-loader`) and the type generator (`proto-loader-gen-types`, `npm run proto:gen`)
 * must agree, or the generated types lie about the decoded messages (e.g. an enum typed as a
 * string but decoded as a number).
 */
import { fileURLToPath } from 'node:url';
import type { Options } from '@grpc/proto-loader';

/**
 * Options for `protoLoader.load*`: field names as written in the .proto (`run_id`), 64-bit
 * integers as decimal strings, enums as their names, every scalar present with its default,
 * and the name of the set member on oneofs.
 */
export const PROTO_LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const satisfies Options;

/** Folder the `.proto` import paths are relative to (the repository's `proto/`). */
export const PROTO_ROOT = fileURLToPath(new URL('../../proto/', import.meta.url));

/** The cluster's service definitions, relative to {@link PROTO_ROOT}. */
export const CLUSTER_PROTO_FILES = ['fmnist/cluster/v1/collective.proto'] as const;

/**
 * The `proto-loader-gen-types` flags that describe {@link PROTO_LOADER_OPTIONS}, plus the
 * generator-only ones: the grpc library, and `.ts` import suffixes, which this repository's
 * `NodeNext` + `allowImportingTsExtensions` compiler settings require in relative imports.
 */
export function protoGenTypesFlags(outDir: string): string[] {
  const o = PROTO_LOADER_OPTIONS;
  return [
    '--grpcLib=@grpc/grpc-js',
    `--longs=${o.longs.name}`,
    `--enums=${o.enums.name}`,
    ...(o.defaults ? ['--defaults'] : []),
    ...(o.oneofs ? ['--oneofs'] : []),
    ...(o.keepCase ? ['--keepCase'] : []),
    '--importFileExtension=.ts',
    `--outDir=${outDir}`,
  ];
}
