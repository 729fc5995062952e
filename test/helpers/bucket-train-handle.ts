/**
 * The parent's side of bucket-train-process.ts: forks one training process per rank, passes the
 * gRPC ring's addresses around, and collects what each rank trained to.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { BucketTrainOptions, BucketTrainPeers, BucketTrainReply } from './bucket-train-process.ts';

const ENTRY = fileURLToPath(new URL('./bucket-train-process.ts', import.meta.url));

type Trained = Extract<BucketTrainReply, { type: 'trained' }>;

/** Trains `worldSize` ranks in as many processes; resolves with each rank's result, index = rank. */
export async function trainRanks(options: Omit<BucketTrainOptions, 'rank'>): Promise<Trained[]> {
  const children = Array.from({ length: options.worldSize }, (_, rank) =>
    fork(ENTRY, [JSON.stringify({ ...options, rank } satisfies BucketTrainOptions)], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  );
  try {
    const replies = children.map((child) => replyReader(child));
    if (options.transport === 'grpc') {
      const addresses = await Promise.all(replies.map((next) => next('address')));
      const peers = addresses.map((reply) => reply.address);
      for (const child of children) child.send({ peers } satisfies BucketTrainPeers);
    }
    return await Promise.all(replies.map((next) => next('trained')));
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** A reader of the child's replies in order, each checked to be of the type expected. */
function replyReader(child: ChildProcess) {
  const queued: BucketTrainReply[] = [];
  const waiting: Array<(reply: BucketTrainReply) => void> = [];
  child.on('message', (reply: BucketTrainReply) => (waiting.length > 0 ? waiting.shift()!(reply) : queued.push(reply)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return async <T extends BucketTrainReply['type']>(type: T): Promise<Extract<BucketTrainReply, { type: T }>> => {
    const reply =
      queued.shift() ??
      (await new Promise<BucketTrainReply>((resolve, reject) => {
        waiting.push(resolve);
        void exited.then((code) => reject(new Error(`training process ${child.pid} exited (${code}) before its '${type}'`)));
      }));
    if (reply.type !== type) throw new Error(`expected '${type}' from training process ${child.pid}, got '${reply.type}'`);
    return reply as Extract<BucketTrainReply, { type: T }>;
  };
}
