/**
 * The ring over mutual TLS, between real gRPC servers on loopback: 2 and 3 ranks sum as they do
 * over plaintext, and a member's server refuses (handshake failure: UNAVAILABLE) a plaintext
 * client, a client whose certificate comes from another CA and a client that shows no
 * certificate. Certificates are made by openssl for this file (SAN IP:127.0.0.1, the address
 * members advertise on loopback). And `launch --local` hands the ring's TLS settings
 * (FMNIST_TLS_*) to the workers it starts: a run over the gRPC ring with mutual TLS completes.
 */
import { readFileSync } from 'node:fs';
import { credentials, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import test from 'ava';
import { CollectiveError } from '../shared/errors.ts';
import { collectiveClient } from '../worker/collective/exchange-codec.ts';
import { RingMember, type RingTls } from '../worker/collective/ring-allreduce.ts';
import { tokenMetadata } from '../worker/collective/bearer-token.ts';
import { ringOrderSum, TEST_TOKEN } from './helpers/ring.ts';
import { seededValues } from './helpers/seeded-values.ts';
import { tinyLocalRun } from './helpers/tiny-local-run.ts';
import { makeCertificateAuthority, type CertificateAuthority, type CertificateFiles } from './helpers/tls-certificates.ts';

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
/** One certificate per rank, from `ca`. */
let rankTls: RingTls[];
/** A client certificate from `otherCa`. */
let stranger: CertificateFiles;

test.before(async () => {
  [ca, otherCa] = await Promise.all([makeCertificateAuthority('ring'), makeCertificateAuthority('stranger')]);
  const files = await Promise.all([0, 1, 2].map((rank) => ca.issue(`rank-${rank}`)));
  rankTls = files.map((file) => ({ ca: readFileSync(ca.cert), cert: readFileSync(file.cert), key: readFileSync(file.key) }));
  stranger = await otherCa.issue('stranger');
});
test.after.always(async () => {
  await ca?.remove();
  await otherCa?.remove();
});

async function closeAll(members: RingMember[]): Promise<void> {
  await Promise.all(members.map((member) => member.close()));
}

for (const worldSize of [2, 3]) {
  test.serial(`${worldSize} ranks over mutual TLS sum exactly as the ring's fixed order does`, async (t) => {
    const members = await Promise.all(
      Array.from({ length: worldSize }, (_, rank) => RingMember.start({ rank, worldSize, authToken: TEST_TOKEN, tls: rankTls[rank], chunkBytes: 4096 })),
    );
    t.teardown(() => closeAll(members));
    const peers = members.map((member) => member.address);
    await Promise.all(members.map((member) => member.connect(peers)));
    const inputs = Array.from({ length: worldSize }, (_, rank) => seededValues(10_007, 40 + rank));
    const data = inputs.map((values) => values.slice());
    await Promise.all(members.map((member, rank) => member.allReduceSum(data[rank], { runId: 'tls', generation: 1, step: 0 })));
    const expected = ringOrderSum(inputs);
    for (const [rank, result] of data.entries()) t.deepEqual(result, expected, `rank ${rank}`);
  });
}

/** Pings `member` with `channel` credentials, once, without waiting for a connection; the status code it ends with. */
async function pingStatus(member: RingMember, channel: ChannelCredentials): Promise<status> {
  const client = collectiveClient(member.address, channel, {});
  try {
    return await new Promise<status>((resolve) => {
      const deadline = new Date(Date.now() + 60_000);
      client.Ping({ from_rank: 1 }, tokenMetadata(TEST_TOKEN), { deadline }, (error: ServiceError | null) => resolve(error === null ? status.OK : error.code));
    });
  } finally {
    client.close();
  }
}

const read = (file: string) => readFileSync(file);

test.serial('a TLS member answers a client with a certificate of its CA, and refuses (and counts) every other client', async (t) => {
  const refused: string[] = [];
  const member = await RingMember.start({ rank: 0, worldSize: 2, authToken: TEST_TOKEN, tls: rankTls[0], onRefused: (reason) => refused.push(reason) });
  t.teardown(() => member.close());
  const trusted = rankTls[1];
  t.is(await pingStatus(member, credentials.createSsl(trusted.ca, trusted.key, trusted.cert)), status.OK, 'a peer of the same CA');
  t.deepEqual(refused, []);
  t.is(await pingStatus(member, credentials.createInsecure()), status.UNAVAILABLE, 'a plaintext client');
  t.true(refused.includes('tls_handshake'), 'the failed handshake is counted');
  t.is(await pingStatus(member, credentials.createSsl(trusted.ca, read(stranger.key), read(stranger.cert))), status.UNAVAILABLE, 'a certificate of another CA');
  t.is(await pingStatus(member, credentials.createSsl(trusted.ca)), status.UNAVAILABLE, 'no client certificate');
  t.true(refused.every((reason) => reason === 'tls_handshake'));
});

test.serial('a TLS member whose neighbour speaks plaintext fails to connect with COLLECTIVE_TLS_MISMATCH, not at the timeout', async (t) => {
  // A connect timeout of 10 minutes: only the mismatch can end the wait within the test.
  const secure = await RingMember.start({ rank: 0, worldSize: 2, authToken: TEST_TOKEN, tls: rankTls[0], connectTimeoutMs: 600_000 });
  const plain = await RingMember.start({ rank: 1, worldSize: 2, authToken: TEST_TOKEN });
  t.teardown(() => Promise.all([secure.close(), plain.close()]));
  const error = await t.throwsAsync(secure.connect([secure.address, plain.address]), { instanceOf: CollectiveError });
  t.is(error?.code, 'COLLECTIVE_TLS_MISMATCH');
  t.is(error?.peerRank, 1);
  t.is(secure.state, 'listening', 'it can connect again once the configuration is fixed');
});

test.serial('launch --local passes FMNIST_TLS_* to its workers: a 2-worker run over the gRPC ring with mutual TLS completes', async (t) => {
  // One certificate for both workers: both advertise 127.0.0.1, which it names.
  const files = await ca.issue('local-workers');
  const env = {
    FMNIST_TLS_CA: ca.cert,
    FMNIST_TLS_CERT: files.cert,
    FMNIST_TLS_KEY: files.key,
    FMNIST_COLLECTIVE_TRANSPORT: 'grpc',
    FMNIST_AUTH_TOKEN: TEST_TOKEN,
  };
  const { launch, last, workerLogs } = await tinyLocalRun(t, [], env);
  t.is(launch.code, 0, launch.stderr);
  t.is(last?.status, 'completed');
  // Each worker says at start-up which ring it runs (worker/main.ts): both ran the TLS one.
  t.deepEqual(
    workerLogs.map((log) => /; ring: (mutual TLS|plaintext)/.exec(log)?.[1]),
    ['mutual TLS', 'mutual TLS'],
  );
});
