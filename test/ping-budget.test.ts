import test from 'ava';
import { PeerPingBudgets } from '../worker/collective/ping-budget.ts';

/** A clock the test moves by hand (ms). */
function manualClock(): { now: () => number; advance(ms: number): void } {
  let ms = 0;
  return { now: () => ms, advance: (by) => (ms += by) };
}

test('one host flooding pings uses up its own budget only; a neighbour on another host is still answered', (t) => {
  const clock = manualClock();
  const budgets = new PeerPingBudgets(5, 16, clock.now);
  const flood = Array.from({ length: 100 }, (_, k) => budgets.take(`10.0.0.9:${40000 + k}`));
  t.is(flood.filter(Boolean).length, 5, 'a burst of the rate, then refusals, whatever source port');
  t.true(budgets.take('10.0.0.2:5000'), 'another host keeps its budget');
  t.true(budgets.take('[::1]:5000'), 'IPv6 hosts are keyed without their port');
  clock.advance(1_000);
  t.true(budgets.take('10.0.0.9:1'), 'the flooding host is answered again after refilling');
});

test('the hosts tracked are bounded: idle ones are forgotten, and while all are busy a new host is refused', (t) => {
  const clock = manualClock();
  const budgets = new PeerPingBudgets(2, 3, clock.now);
  for (const host of ['a', 'b', 'c']) t.true(budgets.take(`${host}:1`));
  t.false(budgets.take('d:1'), 'three busy hosts fill the map');
  clock.advance(1_000);
  t.true(budgets.take('d:1'), 'once they are idle they are forgotten and d gets a bucket');
});
