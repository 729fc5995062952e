/**
 * The progress bar's ETA comes from the steps done while it watched, so a resumed run (or a
 * follower attaching to a running one) does not count the earlier session's steps as free.
 * A terminal-like stream records what is drawn; the clock is the test's.
 */
import test from 'ava';
import { formatDuration, ProgressBar, type BarStream } from '../coordinator/progress-bar.ts';

class RecordingTerminal implements BarStream {
  readonly isTTY = true;
  readonly writes: string[] = [];

  write(text: string): boolean {
    this.writes.push(text);
    return true;
  }

  /** The ETA of the latest bar drawn. */
  get lastEta(): string | undefined {
    const drawn = this.writes.filter((text) => text.includes(' ETA '));
    // eslint-disable-next-line no-control-regex -- matches terminal escape codes
    return / ETA (\S+)\x1b\[K$/.exec(drawn.at(-1) ?? '')?.[1];
  }
}

/** Drives a bar through `steps` steps from `first`, one every `msPerStep` of the test's clock. */
function run(first: number, steps: number, total: number, msPerStep: number): RecordingTerminal {
  const terminal = new RecordingTerminal();
  let clock = 5_000;
  const bar = new ProgressBar(terminal, { now: () => clock });
  for (let done = first; done < first + steps; done += 1) {
    bar.update(done, total, `step ${done}`);
    clock += msPerStep;
  }
  return terminal;
}

test('after a resume at step 900 of 1,000, the ETA is the rate of the steps done since times the steps left', (t) => {
  // Steps 900..910 drawn one second apart: 10 steps in 10 s, 90 left at step 910.
  const terminal = run(900, 11, 1_000, 1_000);
  t.is(terminal.lastEta, formatDuration(90));
});

test('a fresh run gets the same rate', (t) => {
  const terminal = run(1, 11, 100, 2_000);
  t.is(terminal.lastEta, formatDuration(2 * (100 - 11)));
});

test('until a second step is seen the ETA is unknown', (t) => {
  const terminal = run(900, 1, 1_000, 1_000);
  t.is(terminal.lastEta, '--:--');
});

test('off a terminal the bar draws nothing', (t) => {
  const writes: string[] = [];
  const bar = new ProgressBar({ isTTY: false, write: (text: string) => writes.push(text) });
  bar.update(1, 10, 'step 1');
  bar.clear();
  t.deepEqual(writes, []);
});
