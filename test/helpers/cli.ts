import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * The environment of every CLI process a test starts: `--local` never looks for a Redis on
 * 127.0.0.1:6379 (FMNIST_REDIS_PROBE=off), so a test never writes into a server it did not
 * start; `extra` goes on top.
 */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, FMNIST_REDIS_PROBE: 'off', ...extra };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A command still running after this long is killed (exit code null), so that one that hangs
 * fails its test with its output. Only a backstop: it must not bound how long a command may take
 * on a loaded machine (ava's own 5-minute inactivity timeout usually fires first anyway).
 */
const CLI_KILL_AFTER_MS = 600_000;

/** Runs `npm run coordinator -- <args>` as a real child process (tsx, no npm wrapper). */
export function runCli(
  entry: 'coordinator' | 'worker',
  args: string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; onStdoutLine?: (line: string) => void } = {},
): Promise<CliResult> & { child: ReturnType<typeof spawn> } {
  const script = path.join(REPO_ROOT, entry, 'main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    env: cliEnv(options.env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let pending = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) options.onStdoutLine?.(line);
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? CLI_KILL_AFTER_MS);
  const promise = new Promise<CliResult>((resolve) => {
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  }) as Promise<CliResult> & { child: ReturnType<typeof spawn> };
  promise.child = child;
  return promise;
}

/**
 * The code of the error a command failed with: the CLI ends its stderr with the one line
 * `error [CODE]: ...` (the rest of the line is for people). Undefined when the last line is not one.
 */
export function cliErrorCode(stderr: string): string | undefined {
  const last = stderr.trim().split('\n').at(-1) ?? '';
  return /^error \[([A-Z][A-Z0-9_]*)\]: /.exec(last)?.[1];
}

/** The JSON objects printed one per line on stdout. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Resolves once `service` has printed `pattern` on stderr or stdout. */
export function printed(service: ReturnType<typeof runCli>, pattern: RegExp): Promise<void> {
  return new Promise((resolve) => {
    let seen = '';
    const look = (chunk: Buffer) => {
      seen += chunk.toString();
      if (pattern.test(seen)) resolve();
    };
    service.child.stdout?.on('data', look);
    service.child.stderr?.on('data', look);
  });
}
