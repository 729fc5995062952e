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
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG_INVALID', message, options);
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

/** A TensorFlow.js backend that was asked for and could not be loaded or initialised. */
export class BackendError extends FmnistError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND_UNAVAILABLE', message, options);
  }
}

/** A checkpoint that is missing, incomplete or does not fit the model. */
export class CheckpointError extends FmnistError {
  constructor(code: `CHECKPOINT_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A failure in the gradient all-reduce: a peer died, a message was malformed, a timeout. */
export class CollectiveError extends FmnistError {
  constructor(code: `COLLECTIVE_${string}`, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
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
