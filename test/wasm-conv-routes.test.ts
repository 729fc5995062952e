/**
 * Which route the wasm conv kernels take for which shapes (the numbers are checked against the
 * cpu backend in wasm-kernels.test.ts, on cases chosen to take each route): the window of taps
 * that meet real pixels, and the choice of the swapped-roles input gradient. ResNet-18's own
 * layer shapes at 28x28 and 96x96 are the cases.
 */
import test from 'ava';
import * as tf from '@tensorflow/tfjs-core';
import { effectiveTaps } from '../shared/backend/wasm-kernels/effective-taps.ts';
import { prefersSwappedRoles } from '../shared/backend/wasm-kernels/input-gradient-by-swapped-roles.ts';
import { prefersSwappedForward } from '../shared/backend/wasm-kernels/forward-by-swapped-roles.ts';

const pad1: tf.backend_util.ExplicitPadding = [
  [0, 0],
  [1, 1],
  [1, 1],
  [0, 0],
];

function info(
  x: [number, number, number, number],
  kernel: number,
  outChannels: number,
  stride: number,
  pad: tf.backend_util.ExplicitPadding | 'valid' | 'same' = pad1,
) {
  return tf.backend_util.computeConv2DInfo(x, [kernel, kernel, x[3], outChannels], stride, 1, pad);
}

test('a 3x3 conv on a 1x1 image uses only the centre tap, unpadded', (t) => {
  t.deepEqual(effectiveTaps(info([64, 1, 1, 512], 3, 512, 1)), {
    rowFrom: 1,
    rowTo: 2,
    colFrom: 1,
    colTo: 2,
    pad: [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  });
});

test('a stride-2 3x3 conv from 2x2 to 1x1 uses the lower right 2x2 taps', (t) => {
  t.deepEqual(effectiveTaps(info([64, 2, 2, 256], 3, 512, 2)), {
    rowFrom: 1,
    rowTo: 3,
    colFrom: 1,
    colTo: 3,
    pad: [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  });
});

test('convs whose taps all meet pixels are left whole', (t) => {
  t.is(effectiveTaps(info([64, 2, 2, 256], 3, 256, 1)), null);
  t.is(effectiveTaps(info([32, 3, 3, 512], 3, 512, 1)), null);
  t.is(effectiveTaps(info([32, 24, 24, 64], 3, 64, 1)), null);
  t.is(
    effectiveTaps(
      info([32, 96, 96, 1], 7, 64, 2, [
        [0, 0],
        [2, 2],
        [2, 2],
        [0, 0],
      ]),
    ),
    null,
  );
  t.is(effectiveTaps(info([32, 24, 24, 64], 1, 128, 2, 'valid')), null);
});

test('the cropped conv keeps the output shape', (t) => {
  const pad3: tf.backend_util.ExplicitPadding = [
    [0, 0],
    [3, 3],
    [3, 3],
    [0, 0],
  ];
  const cases = [
    [[2, 1, 3, 8], 3, 1, pad1],
    [[2, 2, 2, 8], 3, 2, pad1],
    [[1, 1, 1, 4], 7, 2, pad3],
    [[1, 3, 1, 4], 5, 1, 'same'],
  ] as const;
  for (const [x, kernel, stride, pad] of cases) {
    const full = info(x as unknown as [number, number, number, number], kernel, 4, stride, pad);
    const window = effectiveTaps(full);
    if (window === null) {
      t.fail(`expected a window for ${x.join('x')} k${kernel} s${stride}`);
      continue;
    }
    const cropped = tf.backend_util.computeConv2DInfo(
      full.inShape,
      [window.rowTo - window.rowFrom, window.colTo - window.colFrom, x[3], 4],
      stride,
      1,
      window.pad,
    );
    t.deepEqual(cropped.outShape, full.outShape);
  }
});

test('the input gradient swaps roles where dy is small next to the weights and dx next to the filter', (t) => {
  // ResNet-18 at 96x96, batch 32: the 3x3 convs on 3x3 activations; at 28x28, batch 64: stage
  // 4's 2x2 activations, and stage 5 once cropped to the centre tap (or the 2x2 of its stride-2 conv).
  t.true(prefersSwappedRoles(info([32, 3, 3, 512], 3, 512, 1)));
  t.true(prefersSwappedRoles(info([64, 2, 2, 256], 3, 256, 1)));
  t.true(prefersSwappedRoles(tf.backend_util.computeConv2DInfo([64, 1, 1, 512], [1, 1, 512, 512], 1, 1, 'valid')));
  t.true(prefersSwappedRoles(tf.backend_util.computeConv2DInfo([64, 2, 2, 256], [2, 2, 256, 512], 2, 1, 'valid')));
  // 6x6 activations under a 3x3 filter: the swapped conv would mostly multiply padding.
  t.false(prefersSwappedRoles(info([32, 6, 6, 256], 3, 512, 2)));
  t.false(prefersSwappedRoles(info([32, 6, 6, 256], 3, 256, 1)));
  // Large images keep the phase convolutions.
  t.false(prefersSwappedRoles(info([32, 24, 24, 64], 3, 64, 1)));
  t.false(prefersSwappedRoles(info([32, 12, 12, 128], 3, 128, 1)));
  t.false(prefersSwappedRoles(info([64, 7, 7, 64], 3, 64, 1)));
});

test('a forward conv with new weights swaps roles on activations no larger than the filter', (t) => {
  // 96x96, batch 32: the 3x3 convs on 3x3 activations; 28x28, batch 64: stage 4's 2x2 and
  // stage 5 cropped to its centre tap (or the 2x2 taps of its stride-2 conv).
  t.true(prefersSwappedForward(info([32, 3, 3, 512], 3, 512, 1)));
  t.true(prefersSwappedForward(info([64, 2, 2, 256], 3, 256, 1)));
  t.true(prefersSwappedForward(tf.backend_util.computeConv2DInfo([64, 1, 1, 512], [1, 1, 512, 512], 1, 1, 'valid')));
  t.true(prefersSwappedForward(tf.backend_util.computeConv2DInfo([64, 2, 2, 256], [2, 2, 256, 512], 2, 1, 'valid')));
  // Larger activations keep the stock conv.
  t.false(prefersSwappedForward(info([32, 6, 6, 256], 3, 256, 1)));
  t.false(prefersSwappedForward(info([32, 12, 12, 128], 3, 128, 1)));
  t.false(prefersSwappedForward(info([32, 24, 24, 64], 3, 64, 1)));
  t.false(prefersSwappedForward(info([64, 7, 7, 64], 3, 64, 1)));
  t.false(
    prefersSwappedForward(
      info([32, 96, 96, 1], 7, 64, 2, [
        [0, 0],
        [2, 2],
        [2, 2],
        [0, 0],
      ]),
    ),
  );
});
