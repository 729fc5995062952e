/**
 * The one signal hook of a process. The first SIGINT or SIGTERM asks every registered
 * component to drain (stop after the current step, close servers and connections); the same
 * signal again (Ctrl-C pressed twice), or the grace period running out, forces the exit.
 *
 * The other signal after the first is the same request, not an order to hurry: Ctrl-C in a
 * terminal sends SIGINT to the whole foreground group, so `launch --local`'s workers get it from
 * the terminal and then SIGTERM from the coordinator stopping them. Taking that SIGTERM as a
 * second press killed them in the middle of their last checkpoint.
 */
export type DrainHandler = (signal: NodeJS.Signals) => void | Promise<void>;

export interface ShutdownSignal {
  /** True once a signal arrived. */
  readonly requested: boolean;
  /** Registers a drain step; steps run in registration order, each in its own try/catch. */
  onDrain(handler: DrainHandler): void;
  /** Removes the process signal listeners. */
  dispose(): void;
}

export function installShutdownSignal(options: { graceMs?: number; exitCode?: number; log?: (line: string) => void } = {}): ShutdownSignal {
  const graceMs = options.graceMs ?? 60_000;
  const handlers: DrainHandler[] = [];
  let first: NodeJS.Signals | undefined;
  const listener = (signal: NodeJS.Signals): void => {
    if (first === signal) {
      options.log?.(`${signal} again: exiting now`);
      process.exit(options.exitCode ?? 130);
    }
    if (first !== undefined) {
      options.log?.(`${signal} after ${first}: already stopping`);
      return;
    }
    first = signal;
    options.log?.(`${signal}: stopping after the current step (press again to force)`);
    setTimeout(() => process.exit(options.exitCode ?? 130), graceMs).unref();
    void (async () => {
      for (const handler of handlers) {
        try {
          await handler(signal);
        } catch (error) {
          options.log?.(`shutdown step failed: ${(error as Error).message}`);
        }
      }
    })();
  };
  process.on('SIGINT', listener);
  process.on('SIGTERM', listener);
  return {
    get requested() {
      return first !== undefined;
    },
    onDrain(handler) {
      handlers.push(handler);
    },
    dispose() {
      process.off('SIGINT', listener);
      process.off('SIGTERM', listener);
    },
  };
}
