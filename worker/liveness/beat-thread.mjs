// The liveness beat's thread (worker/liveness/liveness-beat.ts starts it). Plain JavaScript:
// tsx does not load TypeScript into worker threads under Node 20. It only writes one Redis key
// on a timer, so the main thread's synchronous training steps never delay a beat; a process
// that is stopped, frozen or dead stops beating, and its key expires.
import { parentPort, workerData } from 'node:worker_threads';
import { clearInterval, setInterval } from 'node:timers';
import { Redis } from 'ioredis';

const redis = new Redis(workerData.url, { ...workerData.options, connectionName: 'worker-liveness', maxRetriesPerRequest: null });
// Errors are retried by the next beat; while Redis is down there is nothing else to do.
redis.on('error', () => {});

/** @type {{ key: string, value: string, ttlMs: number } | undefined} */
let beat;
/** @type {ReturnType<typeof setInterval> | undefined} */
let timer;

function write() {
  if (beat) redis.set(beat.key, beat.value, 'PX', beat.ttlMs).catch(() => {});
}

parentPort.on('message', (message) => {
  if (message.type === 'assign') {
    clearInterval(timer);
    beat = { key: message.key, value: message.value, ttlMs: message.ttlMs };
    write();
    timer = setInterval(write, message.intervalMs);
  } else if (message.type === 'leave') {
    clearInterval(timer);
    const left = beat;
    beat = undefined;
    // A rank that ends its job says so rather than fall silent: a peer still finishing the last
    // all-reduce must not take it for hung. Answered once written.
    const done = () => parentPort.postMessage({ type: 'left' });
    if (left === undefined) done();
    else redis.set(left.key, message.value, 'PX', left.ttlMs).then(done, done);
  } else if (message.type === 'close') {
    clearInterval(timer);
    redis.quit().finally(() => parentPort.close());
  }
});
