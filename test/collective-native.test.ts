/**
 * The collective addon (native/collective/, built by scripts/build-native.mjs with g++ alone):
 * its float32 add gives the bits of the JavaScript loop it replaces, so the ring's sums do not
 * depend on whether the addon was built.
 */
import test from 'ava';
import { addIntoScalar } from '../worker/collective/float32-chunks.ts';
import { collectiveAddon } from '../worker/collective/native-collective.ts';
import { seededValues } from './helpers/seeded-values.ts';

const addon = collectiveAddon();

test('the collective addon is built and loads', (t) => {
  t.not(addon, null);
});

/**
 * The values' bits, with every NaN as one pattern: the CPU makes Infinity - Infinity the
 * negative quiet NaN where V8 stores its canonical positive one; a NaN's payload carries no
 * value, and every rank copies the one rank's result of a segment, so ranks still agree bit for bit.
 */
function bitsUpToNaN(values: Float32Array): Uint32Array {
  return Uint32Array.from(values, (v) => (Number.isNaN(v) ? 0x7fc0_0000 : new Uint32Array(Float32Array.of(v).buffer)[0]));
}

test('native addInto equals the JavaScript loop bit for bit (NaN payloads aside), specials and subnormals included, at any offset', (t) => {
  const values = seededValues(100_003, 7);
  const specials = [Number.NaN, Infinity, -Infinity, -0, 1e-45, -1e-45, 3.4e38, 1e-40, 0.1, -0.1];
  values.set(specials, 17);
  for (const offset of [0, 1, 3, 5_000]) {
    const target = seededValues(110_000, 11);
    target.set(
      specials.map((v) => -v),
      offset + 17,
    );
    const expected = target.slice();
    addIntoScalar(expected, offset, values);
    addon!.addInto(target, offset, values);
    t.deepEqual(bitsUpToNaN(target), bitsUpToNaN(expected), `offset ${offset}`);
    t.true(Number.isNaN(target[offset + 17]) && Number.isNaN(target[offset + 18]), 'NaN and Infinity - Infinity stay NaN');
  }
});

test('native addInto refuses a range past the end of the target and changes nothing', (t) => {
  const target = new Float32Array(8).fill(1);
  t.throws(() => addon!.addInto(target, 5, new Float32Array(4)), { instanceOf: RangeError });
  t.throws(() => addon!.addInto(target, -1, new Float32Array(1)), { instanceOf: RangeError });
  t.deepEqual(target, new Float32Array(8).fill(1));
});
