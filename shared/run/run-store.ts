/**
 * Runs in Redis: one hash per run, hashes of its epoch history and of its step samples, a sorted
 * index of run ids and a stream of events per run. Every change is one Lua script, so a state
 * check and the write it guards happen atomically even when several processes share the run.
 */
import type { Redis } from 'ioredis';
import { ConfigError, RunError } from '../errors.ts';
import { RedisKeys } from '../redis/keys.ts';
import { LuaScript } from '../redis/lua-script.ts';
import {
  assertTransition,
  newRunId,
  parseRunState,
  sourcesOf,
  validateRunConfig,
  validateRunId,
  type EpochEntry,
  type RunConfig,
  type CompiledRunConfig,
  type RunFailure,
  type RunEvent,
  type RunEventBody,
  type RunProgress,
  type RunRecord,
  type RunRestart,
  type RunState,
} from './run-state.ts';
import type { StepSample } from './step-samples.ts';

/** A run's id, state and time of last change (ms since the epoch), as {@link RunStore.summaries} lists them. */
export interface RunSummary {
  id: string;
  state: RunState;
  updatedAt: number;
}

/** Options of {@link RunStore}. */
export interface RunStoreOptions {
  /** Approximate number of events kept per run (older ones are trimmed). @default 10000 */
  maxEventsPerRun?: number;
  /** Clock, in ms since the epoch. @default Date.now */
  now?: () => number;
}

/** Options of {@link RunStore.transition}. */
export interface TransitionOptions {
  /** Move only if the run is in exactly this state now (must itself be a legal source). */
  from?: RunState;
  /** Reason stored in the run's `error` field (for failed, interrupted, cancelled). */
  error?: string;
  /** The typed reason stored in the run's `failure` field (for failed). */
  failure?: RunFailure;
  /**
   * Move only if the run is at this generation (else RunError 'RUN_STALE_GENERATION'): a worker
   * of an older generation must not fail the run's next one.
   */
  generation?: number;
  /** With `to: 'queued'`: this move is an automatic restart caused by this failure; it is appended to the run's `restarts`. */
  restartCause?: RunFailure;
}

/** Options of the writes a worker or coordinator makes while a run trains. */
export interface GenerationGuard {
  /** Refuse with RunError('RUN_STALE_GENERATION') unless the run is at this generation. */
  generation?: number;
}

const CREATE = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'config', ARGV[2], 'state', 'queued', 'generation', '0',
  'createdAt', ARGV[3], 'updatedAt', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'type', 'created', 'at', ARGV[3],
  'data', '{"config":' .. ARGV[2] .. '}')
return 1
`);

/**
 * A resume (-> queued) also bumps the generation and forgets the cancel request, error and
 * failure. ARGV[6]: the generation the run must be at ('' any); ARGV[7]: the cause of an
 * automatic restart ('' none), appended to the restarts list with the new generation.
 */
const TRANSITION = new LuaScript(`
local from = redis.call('HGET', KEYS[1], 'state')
if not from then return {'missing'} end
if ARGV[6] ~= '' and redis.call('HGET', KEYS[1], 'generation') ~= ARGV[6] then
  return {'stale', redis.call('HGET', KEYS[1], 'generation')}
end
local legal = false
for i = 8, #ARGV do if ARGV[i] == from then legal = true end end
if not legal then return {'illegal', from} end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updatedAt', ARGV[2])
if ARGV[1] == 'queued' then
  redis.call('HINCRBY', KEYS[1], 'generation', 1)
  redis.call('HDEL', KEYS[1], 'cancelRequested', 'error', 'failure')
end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[3]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'failure', ARGV[5]) end
local generation = tonumber(redis.call('HGET', KEYS[1], 'generation'))
local event = {from = from, to = ARGV[1], generation = generation}
if ARGV[3] ~= '' then event.error = ARGV[3] end
if ARGV[5] ~= '' then event.failure = cjson.decode(ARGV[5]) end
if ARGV[7] ~= '' then
  local restart = '{"generation":' .. generation .. ',"at":' .. ARGV[2] .. ',"cause":' .. ARGV[7] .. '}'
  redis.call('RPUSH', KEYS[3], restart)
  event.restart = cjson.decode(restart)
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'type', 'state', 'at', ARGV[2], 'data', cjson.encode(event))
return {'ok', from}
`);

/** Sets one hash field of a run (or of its history or step samples) and records an event, unless its type is empty. */
const UPDATE = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if ARGV[7] ~= '' then
  local generation = redis.call('HGET', KEYS[1], 'generation')
  if generation ~= ARGV[7] then return {'stale', generation} end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[1], 'updatedAt', ARGV[1])
if ARGV[4] ~= '' then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[4], 'at', ARGV[1], 'data', ARGV[5])
end
return {'ok'}
`);

/** Attempts at drawing an unused run id (ids collide only within one second, 1 in 65536). */
const ID_ATTEMPTS = 8;

/** Runs stored in Redis under one key prefix. Does not own the client: closing it is the caller's job. */
export class RunStore {
  readonly keys: RedisKeys;
  private readonly maxEvents: number;
  private readonly now: () => number;

  /**
   * @param redis a client from `connectRedis` (blocking reads use a duplicate of it).
   * @param keys key names, or a prefix. @default 'fmnist'
   */
  constructor(
    private readonly redis: Redis,
    keys: RedisKeys | string = new RedisKeys(),
    options: RunStoreOptions = {},
  ) {
    this.keys = typeof keys === 'string' ? new RedisKeys(keys) : keys;
    this.maxEvents = options.maxEventsPerRun ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /**
   * Validates `config` (ConfigError when bad) and stores a new run in state `queued`, generation 0,
   * under a fresh id, or under `options.id` (checked by validateRunId): then atomically, so of two
   * processes creating the same id exactly one succeeds and the other gets RunError 'RUN_EXISTS'.
   */
  async create(config: RunConfig, options: { id?: string } = {}): Promise<RunRecord> {
    const json = JSON.stringify(validateRunConfig(config));
    if (options.id !== undefined) {
      const id = validateRunId(options.id);
      if (await this.insert(id, json)) return this.get(id);
      throw new RunError('RUN_EXISTS', `a run with id ${JSON.stringify(id)} exists already`);
    }
    for (let attempt = 0; attempt < ID_ATTEMPTS; attempt += 1) {
      const id = newRunId(new Date(this.now()));
      if (await this.insert(id, json)) return this.get(id);
    }
    throw new RunError('RUN_ID_EXHAUSTED', `no unused run id after ${ID_ATTEMPTS} attempts`);
  }

  /** Stores run `id` unless it exists; true when it was stored. */
  private async insert(id: string, configJson: string): Promise<boolean> {
    const keys = [this.keys.run(id), this.keys.runIndex(), this.keys.runEvents(id)];
    return (await CREATE.run(this.redis, keys, [id, configJson, this.now(), this.maxEvents])) === 1;
  }

  /** The run with this id; RunError('RUN_NOT_FOUND') when there is none. */
  async get(runId: string): Promise<RunRecord> {
    const reads = this.redis.multi().hgetall(this.keys.run(runId)).hgetall(this.keys.runHistory(runId)).lrange(this.keys.runRestarts(runId), 0, -1);
    const [[, fields], [, history], [, restarts]] = (await reads.exec()) as [
      [unknown, Record<string, string>],
      [unknown, Record<string, string>],
      [unknown, string[]],
    ];
    if (fields.state === undefined) throw notFound(runId);
    return parseRecord(fields, history, restarts);
  }

  /** Runs, newest first, at most `limit` of them (default 100). */
  async list(options: { limit?: number } = {}): Promise<RunRecord[]> {
    const ids = await this.redis.zrevrange(this.keys.runIndex(), 0, (options.limit ?? 100) - 1);
    const records = await Promise.all(ids.map((id) => this.get(id).catch(ignoreNotFound)));
    return records.filter((record): record is RunRecord => record !== undefined);
  }

  /**
   * Every run's id, state and time of last change, newest first, from one pipelined round trip:
   * cheap enough for each metrics scrape. Runs deleted since they were indexed are left out.
   */
  async summaries(): Promise<RunSummary[]> {
    const ids = await this.redis.zrevrange(this.keys.runIndex(), 0, -1);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.run(id), 'state', 'updatedAt');
    const replies = (await pipeline.exec()) ?? [];
    return ids.flatMap((id, i) => {
      const [error, fields] = replies[i] ?? [new Error('no reply'), null];
      if (error) throw error;
      const [state, updatedAt] = fields as [string | null, string | null];
      return state === null ? [] : [{ id, state: parseRunState(state), updatedAt: Number(updatedAt) }];
    });
  }

  /**
   * Moves a run to `to` atomically and returns the updated record. Throws RunError
   * 'RUN_BAD_TRANSITION' when the move is illegal from the run's current state (so of two
   * processes racing for the same move, exactly one succeeds) and 'RUN_NOT_FOUND'.
   * Moving to `queued` (a resume) increments the generation and clears the cancel request and error.
   * With `generation`, 'RUN_STALE_GENERATION' when the run has moved on to another generation.
   */
  async transition(runId: string, to: RunState, options: TransitionOptions = {}): Promise<RunRecord> {
    if (options.from !== undefined) assertTransition(runId, options.from, to);
    const sources = options.from !== undefined ? [options.from] : sourcesOf(to);
    const keys = [this.keys.run(runId), this.keys.runEvents(runId), this.keys.runRestarts(runId)];
    const failure = options.failure === undefined ? '' : JSON.stringify(options.failure);
    const cause = options.restartCause === undefined ? '' : JSON.stringify(options.restartCause);
    const generation = options.generation ?? '';
    const args = [to, this.now(), options.error ?? '', this.maxEvents, failure, generation, cause, ...sources];
    const reply = (await TRANSITION.run(this.redis, keys, args)) as string[];
    if (reply[0] === 'missing') throw notFound(runId);
    if (reply[0] === 'stale') throw stale(runId, reply[1], options.generation);
    if (reply[0] === 'illegal') {
      throw new RunError('RUN_BAD_TRANSITION', `run ${runId} is ${reply[1]} and cannot become ${to}${options.from ? ` (expected ${options.from})` : ''}`);
    }
    return this.get(runId);
  }

  /** Records a finished epoch; writing the same epoch again replaces it (e.g. after a resume). */
  async appendEpoch(runId: string, entry: EpochEntry, guard: GenerationGuard = {}): Promise<void> {
    const json = JSON.stringify(entry);
    await this.update(runId, this.keys.runHistory(runId), String(entry.epoch), json, { type: 'epoch', entry }, guard);
  }

  /** Replaces the run's progress record, stamping `updatedAt` with the store's clock. */
  async setProgress(runId: string, progress: Omit<RunProgress, 'updatedAt'>, guard: GenerationGuard = {}): Promise<RunProgress> {
    const stamped: RunProgress = { ...progress, updatedAt: this.now() };
    await this.update(runId, this.keys.run(runId), 'progress', JSON.stringify(stamped), { type: 'progress', progress: stamped }, guard);
    return stamped;
  }

  /**
   * Stores one window of steps (shared/run/step-samples.ts), replacing a sample of the same
   * global step (a window re-run after a resume). No event: followers get every step's progress.
   */
  async recordStepSample(runId: string, sample: StepSample, guard: GenerationGuard = {}): Promise<void> {
    await this.update(runId, this.keys.runSteps(runId), String(sample.globalStep), JSON.stringify(sample), undefined, guard);
  }

  /** The run's step samples in step order; empty for a run that has none (yet). */
  async stepSamples(runId: string): Promise<StepSample[]> {
    const fields = await this.redis.hgetall(this.keys.runSteps(runId));
    return Object.values(fields)
      .map((json) => JSON.parse(json) as StepSample)
      .sort((a, b) => a.globalStep - b.globalStep);
  }

  /** Asks the run's workers to stop; they poll {@link isCancelRequested} between steps. */
  async requestCancel(runId: string): Promise<void> {
    await this.update(runId, this.keys.run(runId), 'cancelRequested', '1', { type: 'cancel-requested' }, {});
  }

  /** True once a cancel was requested and until the run is resumed. RunError('RUN_NOT_FOUND') for an unknown id. */
  async isCancelRequested(runId: string): Promise<boolean> {
    const [flag, state] = await this.redis.hmget(this.keys.run(runId), 'cancelRequested', 'state');
    if (state === null) throw notFound(runId);
    return flag === '1';
  }

  /** Up to `count` (default 1000) events after the entry id `after` (default: from the start). */
  async readEvents(runId: string, options: { after?: string; count?: number } = {}): Promise<RunEvent[]> {
    const start = options.after === undefined ? '-' : `(${options.after}`;
    const entries = await this.redis.xrange(this.keys.runEvents(runId), start, '+', 'COUNT', options.count ?? 1_000);
    return entries.map(([id, fields]) => parseEvent(id, fields));
  }

  /**
   * Yields the run's events as they are written, from after `after` (default: only new ones),
   * until `signal` aborts or the consumer stops iterating. Blocks on its own duplicate connection
   * (XREAD BLOCK), so it never holds up the store's client; its errors go to the client's handler.
   */
  async *tailEvents(runId: string, options: { after?: string; blockMs?: number; signal?: AbortSignal } = {}): AsyncGenerator<RunEvent> {
    const key = this.keys.runEvents(runId);
    let after = options.after ?? (await this.lastEventId(key));
    const blocking = this.redis.duplicate();
    blocking.on('error', (error) => this.redis.emit('error', error));
    const stop = () => blocking.disconnect();
    options.signal?.addEventListener('abort', stop, { once: true });
    try {
      while (!options.signal?.aborted) {
        const reply = await blocking.xread('BLOCK', options.blockMs ?? 5_000, 'STREAMS', key, after).catch((error: unknown) => {
          if (options.signal?.aborted) return null;
          throw error;
        });
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          after = id;
          yield parseEvent(id, fields);
        }
      }
    } finally {
      options.signal?.removeEventListener('abort', stop);
      blocking.disconnect();
    }
  }

  private async lastEventId(key: string): Promise<string> {
    const [last] = await this.redis.xrevrange(key, '+', '-', 'COUNT', 1);
    return last?.[0] ?? '0-0';
  }

  private async update(runId: string, hash: string, field: string, value: string, event: RunEventBody | undefined, guard: GenerationGuard): Promise<void> {
    const { type, ...data } = event ?? { type: '' };
    const keys = [this.keys.run(runId), hash, this.keys.runEvents(runId)];
    const args = [this.now(), field, value, type, JSON.stringify(data), this.maxEvents, guard.generation ?? ''];
    const reply = (await UPDATE.run(this.redis, keys, args)) as string[];
    if (reply[0] === 'missing') throw notFound(runId);
    if (reply[0] === 'stale') throw stale(runId, reply[1], guard.generation);
  }
}

function notFound(runId: string): RunError {
  return new RunError('RUN_NOT_FOUND', `no run ${JSON.stringify(runId)}; \`status\` lists the runs`);
}

function stale(runId: string, actual: string | undefined, expected: number | undefined): RunError {
  return new RunError('RUN_STALE_GENERATION', `run ${runId} is at generation ${actual}, not ${expected}`);
}

function ignoreNotFound(error: unknown): undefined {
  if (error instanceof RunError && error.code === 'RUN_NOT_FOUND') return undefined;
  throw error;
}

function parseRecord(fields: Record<string, string>, history: Record<string, string>, restarts: string[]): RunRecord {
  const record: RunRecord = {
    id: fields.id,
    config: storedConfig(fields),
    state: parseRunState(fields.state),
    generation: Number(fields.generation),
    createdAt: Number(fields.createdAt),
    updatedAt: Number(fields.updatedAt),
    history: Object.values(history)
      .map((json) => JSON.parse(json) as EpochEntry)
      .sort((a, b) => a.epoch - b.epoch),
    cancelRequested: fields.cancelRequested === '1',
    restarts: restarts.map((json) => JSON.parse(json) as RunRestart),
  };
  if (fields.error !== undefined) record.error = fields.error;
  if (fields.failure !== undefined) record.failure = JSON.parse(fields.failure) as RunFailure;
  if (fields.progress !== undefined) record.progress = JSON.parse(fields.progress) as RunProgress;
  return record;
}

/**
 * The run's config as stored, checked as a new one is: a record written by hand or by another
 * version must not reach a worker with a value `launch` would have refused. One stored before
 * automatic restarts existed keeps its behaviour then (no restart).
 */
function storedConfig(fields: Record<string, string>): CompiledRunConfig {
  try {
    const stored = JSON.parse(fields.config ?? 'null') as RunConfig;
    return validateRunConfig({ ...stored, maxRestarts: stored.maxRestarts ?? 0 });
  } catch (error) {
    if (!(error instanceof ConfigError || error instanceof SyntaxError || error instanceof TypeError)) throw error;
    throw new RunError('RUN_RECORD_INVALID', `run ${JSON.stringify(fields.id)}: the config stored in Redis is invalid: ${error.message}`, { cause: error });
  }
}

function parseEvent(id: string, fields: string[]): RunEvent {
  const values: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) values[fields[i]] = fields[i + 1];
  const data = JSON.parse(values.data ?? '{}') as Record<string, unknown>;
  return { ...data, type: values.type, id, at: Number(values.at) } as RunEvent;
}
