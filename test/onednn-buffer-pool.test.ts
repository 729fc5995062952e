/**
 * The output-array pool of the onednn backend: arrays come back by size, the byte cap holds,
 * and stale size classes make room for current ones.
 */
import test from 'ava';
import { Float32ArrayPool } from '../shared/backend/onednn/buffer-pool.ts';

test('a released array is handed out again for the same length only', (t) => {
  const pool = new Float32ArrayPool(1 << 20);
  const a = pool.take(100);
  pool.release(a);
  t.is(pool.bytes, 400);
  t.not(pool.take(50), a);
  t.is(pool.take(100), a);
  t.is(pool.bytes, 0);
  t.is(pool.freshBytes, 600);
  t.is(pool.reusedBytes, 400);
});

test('the pool never holds more than its cap', (t) => {
  const pool = new Float32ArrayPool(1000);
  const arrays = [pool.take(100), pool.take(100), pool.take(100)];
  for (const array of arrays) pool.release(array);
  t.is(pool.bytes, 800);
  pool.release(new Float32Array(300));
  t.true(pool.bytes <= 1000);
});

test('size classes not taken for longest are evicted first', (t) => {
  const pool = new Float32ArrayPool(1200);
  const old = pool.take(100);
  const recent = pool.take(100 + 1);
  pool.release(old);
  pool.release(recent);
  pool.take(101); // 101 was taken more recently than 100
  pool.release(recent);
  const incoming = pool.take(150);
  pool.release(incoming); // 400 + 404 + 600 > 1200: the 100-class goes
  t.is(pool.take(150), incoming);
  t.is(pool.take(101), recent);
  t.not(pool.take(100), old);
});
