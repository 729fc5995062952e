/**
 * How the workers of one run generation find each other before they form the all-reduce ring.
 *
 * Rendezvous: each worker joins (run, generation) with its gRPC address; a Lua script gives it
 * the requested rank or the lowest free one, atomically, and remembers it under the worker's
 * identity so that a re-join gets the same rank. Every worker then waits until `worldSize`
 * members are there and gets the same address list, ordered by rank. A new generation uses new
 * keys, so entries of an older generation are never seen. (Which workers are alive, and where
 * their metrics are, is the worker registry's business: shared/run/worker-registry.ts.)
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { ConfigError, RunError } from '../shared/errors.ts';
import { RedisKeys } from '../shared/redis/keys.ts';
import { LuaScript } from '../shared/redis/lua-script.ts';

/** What a worker tells its peers about itself. */
export interface PeerInfo {
  /** Rank in the ring, 0 .. worldSize-1. */
  rank: number;
  /** `host:port` of the worker's gRPC server. */
  address: string;
  pid: number;
  host: string;
}

/** Options of {@link joinRendezvous}. */
export interface JoinOptions {
  runId: string;
  /** The run's generation this worker belongs to. */
  generation: number;
  /** Members to wait for, >= 1. */
  worldSize: number;
  /** `host:port` of this worker's gRPC server. */
  address: string;
  /** A specific rank, or undefined for the lowest free one (join order). */
  rank?: number;
  /** @default process.pid */
  pid?: number;
  /** @default os.hostname() */
  host?: string;
  /** How long to wait for all members, in ms. @default 60000 */
  timeoutMs?: number;
  /** Interval between checks while waiting, in ms. @default 50 */
  pollMs?: number;
  /** Rendezvous keys expire this long after the last join, in ms. @default 86400000 (1 day) */
  keyTtlMs?: number;
}

/** The formed group, identical for every member except `rank`. */
export interface Rendezvous {
  /** This worker's rank. */
  rank: number;
  worldSize: number;
  generation: number;
  /** Every member, ordered by rank. */
  peers: PeerInfo[];
  /** `peers[i].address`, ordered by rank. */
  addresses: string[];
}

/**
 * KEYS: members (rank -> JSON), identities (identity -> rank).
 * ARGV: identity, worldSize, requested rank or '', member JSON without rank, key TTL ms.
 * Reply: {'ok', rank} | {'taken', rank} | {'full'}.
 */
const JOIN = new LuaScript(`
local known = redis.call('HGET', KEYS[2], ARGV[1])
if known then return {'ok', tonumber(known)} end
local size = tonumber(ARGV[2])
local rank = -1
if ARGV[3] ~= '' then
  rank = tonumber(ARGV[3])
  if redis.call('HEXISTS', KEYS[1], rank) == 1 then return {'taken', rank} end
else
  for r = 0, size - 1 do
    if redis.call('HEXISTS', KEYS[1], r) == 0 then rank = r break end
  end
  if rank < 0 then return {'full'} end
end
local member = cjson.decode(ARGV[4])
member.rank = rank
redis.call('HSET', KEYS[1], rank, cjson.encode(member))
redis.call('HSET', KEYS[2], ARGV[1], rank)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {'ok', rank}
`);

/** Removes a member that gave up, but only if the rank is still its own. */
const LEAVE = new LuaScript(`
local rank = redis.call('HGET', KEYS[2], ARGV[1])
if not rank then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[1], rank)
return 1
`);

/**
 * Joins the rendezvous of (runId, generation) and waits until `worldSize` workers have joined.
 * Throws RunError 'RUN_RENDEZVOUS_TIMEOUT' (after leaving again, so a retry starts clean),
 * 'RUN_RENDEZVOUS_RANK_TAKEN' when another worker holds the requested rank, and
 * 'RUN_RENDEZVOUS_FULL' when all ranks are taken; ConfigError for a bad worldSize or rank.
 */
export async function joinRendezvous(redis: Redis, keys: RedisKeys, options: JoinOptions): Promise<Rendezvous> {
  validateJoin(options);
  const { runId, generation, worldSize } = options;
  const member = { address: options.address, pid: options.pid ?? process.pid, host: options.host ?? hostname() };
  const identity = `${member.host}/${member.pid}/${member.address}`;
  const rendezvousKeys = [keys.rendezvousMembers(runId, generation), keys.rendezvousIdentities(runId, generation)];
  const args = [identity, worldSize, options.rank ?? '', JSON.stringify(member), options.keyTtlMs ?? 86_400_000];
  const [outcome, rank] = (await JOIN.run(redis, rendezvousKeys, args)) as [string, number?];
  if (outcome === 'taken') throw new RunError('RUN_RENDEZVOUS_RANK_TAKEN', `rank ${rank} of run ${runId} generation ${generation} is held by another worker`);
  if (outcome === 'full') throw new RunError('RUN_RENDEZVOUS_FULL', `all ${worldSize} ranks of run ${runId} generation ${generation} are taken`);
  try {
    const peers = await waitForMembers(redis, rendezvousKeys[0], options);
    return { rank: rank as number, worldSize, generation, peers, addresses: peers.map((peer) => peer.address) };
  } catch (error) {
    await LEAVE.run(redis, rendezvousKeys, [identity]);
    throw error;
  }
}

/** The members of (runId, generation) so far, ordered by rank. */
export async function rendezvousMembers(redis: Redis, keys: RedisKeys, runId: string, generation: number): Promise<PeerInfo[]> {
  const members = await redis.hvals(keys.rendezvousMembers(runId, generation));
  return members.map((json) => JSON.parse(json) as PeerInfo).sort((a, b) => a.rank - b.rank);
}

function validateJoin(options: JoinOptions): void {
  if (!(Number.isSafeInteger(options.worldSize) && options.worldSize >= 1)) {
    throw new ConfigError(`worldSize must be a positive integer, got ${options.worldSize}`);
  }
  if (options.rank !== undefined && !(Number.isSafeInteger(options.rank) && options.rank >= 0 && options.rank < options.worldSize)) {
    throw new ConfigError(`rank must be an integer in [0, ${options.worldSize}), got ${options.rank}`);
  }
  if (!(Number.isSafeInteger(options.generation) && options.generation >= 0)) {
    throw new ConfigError(`generation must be a non-negative integer, got ${options.generation}`);
  }
}

async function waitForMembers(redis: Redis, membersKey: string, options: JoinOptions): Promise<PeerInfo[]> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  for (;;) {
    const members = await redis.hvals(membersKey);
    if (members.length >= options.worldSize) {
      return members.map((json) => JSON.parse(json) as PeerInfo).sort((a, b) => a.rank - b.rank);
    }
    if (Date.now() >= deadline) {
      throw new RunError(
        'RUN_RENDEZVOUS_TIMEOUT',
        `only ${members.length} of ${options.worldSize} workers of run ${options.runId} generation ${options.generation} joined within ${options.timeoutMs ?? 60_000} ms`,
      );
    }
    await sleep(Math.min(options.pollMs ?? 50, Math.max(1, deadline - Date.now())));
  }
}
