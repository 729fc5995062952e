/**
 * Typed errors shared by every process. Each carries a stable `code` that tests and callers
 * match on; messages are for people and may change.
 */
export class FmnistError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A flag, environment variable or option value that is missing or out of range. */
export class ConfigError extends FmnistError {
  /** The option at fault, by its flag name (`batch-size`, `backend`), when one is. */
  readonly option?: string;

  constructor(message: string, options?: { cause?: unknown; option?: string }) {
    super('CONFIG_INVALID', message, options);
    if (options?.option !== undefined) this.option = options.option;
  }
}

/** A dataset file that is missing, truncated, corrupt or of the wrong shape. */
export class DatasetError extends FmnistError {
  /** The file the problem was found in. */
  readonly file: string;

  constructor(code: `DATASET_${string}`, file: string, message: string, options?: { cause?: unknown }) {
    super(code, `${file}: ${message}`, options);
    this.file = file;
  }
}

/** A backend that was tried and could not be used: `code` and `error` say why (see select-backend.ts). */
export interface TriedBackend {
  name: string;
  code?: string;
  error?: string;
}

/** A TensorFlow.js backend that was asked for and could not be loaded or initialised. */
export class BackendError extends FmnistError {
  /** Each backend tried, in order. */
  readonly tried: readonly TriedBackend[];

  constructor(message: string, options?: { cause?: unknown; tried?: readonly TriedBackend[] }) {
    super('BACKEND_UNAVAILABLE', message, options);
    this.tried = options?.tried ?? [];
  }
}

/** A checkpoint that is missing, incomplete or does not fit the model. */
export class CheckpointError extends FmnistError {
  /** The checkpoint file the problem was found in, when it is one file. */
  readonly file: string | undefined;
  /** The system error of a failed write (ENOSPC: the disk is full), when there was one. */
  readonly errno: string | undefined;

  constructor(code: `CHECKPOINT_${string}`, message: string, options?: { cause?: unknown; file?: string; errno?: string }) {
    super(code, message, options);
    this.file = options?.file;
    this.errno = options?.errno;
  }
}

/** A failure in the gradient all-reduce: a peer died, a message was malformed, a timeout. */
export class CollectiveError extends FmnistError {
  /**
   * The rank of the peer the failure is about (the neighbour that was lost, gave up, sent a
   * chunk that does not fit or is not the rank expected); undefined when no one peer is (a
   * timeout, a call that does not fit this member's state).
   */
  readonly peerRank: number | undefined;

  constructor(code: `COLLECTIVE_${string}`, message: string, options?: { cause?: unknown; peerRank?: number }) {
    super(code, message, options);
    this.peerRank = options?.peerRank;
  }
}

/**
 * A summed gradient that holds a NaN or an infinity, under `--nonfinite fail`. Every rank raises
 * it at the same step, from the same summed buffer.
 */
export class NonFiniteGradientError extends FmnistError {
  /** The step whose gradient it was, numbered as StepReport.globalStep (1 = the run's first). */
  readonly globalStep: number;
  /**
   * The ranks whose own gradient held a non-finite value, ascending; empty when every rank's
   * was finite and only their sum overflowed.
   */
  readonly ranks: readonly number[];

  constructor(globalStep: number, ranks: readonly number[]) {
    const whose = ranks.length > 0 ? `from rank(s) ${ranks.join(', ')}` : 'from the sum of finite gradients (overflow)';
    super('GRADIENT_NONFINITE', `the gradient of step ${globalStep} holds NaN or infinite values ${whose}`);
    this.globalStep = globalStep;
    this.ranks = ranks;
  }
}

/** A run id that does not exist, or a command that does not fit the run's state. */
export class RunError extends FmnistError {
  constructor(code: `RUN_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A metrics endpoint or the local Prometheus that could not be started. */
export class MetricsError extends FmnistError {
  constructor(code: `METRICS_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
