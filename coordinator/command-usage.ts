/** Redis credentials and TLS, accepted by every command that takes --redis (docs/SECURITY.md). */
const REDIS_AUTH = `  Redis: --redis takes redis:// or rediss:// (TLS) URLs, user:password@ allowed; --redis-user U,
  --redis-password P (better: REDIS_USERNAME, REDIS_PASSWORD; ps shows flags), --redis-tls-ca FILE,
  --redis-tls-cert FILE --redis-tls-key FILE (REDIS_TLS_CA, REDIS_TLS_CERT, REDIS_TLS_KEY). Wrong
  credentials fail with REDIS_AUTH, an untrusted certificate with REDIS_TLS.`;

/** One usage text per coordinator command, shown by `help` and `<command> --help`. */
export const COMMAND_USAGE = {
  summary: `summary [--size 224] [--json]
  Prints each stage's output shape for one size x size image and the trainable parameter count.`,
  train: `train [--model resnet18|tiny-cnn] [--epochs 10] [--batch-size 256] [--lr 0.05] [--resize 96] [--seed 0]
      [--limit-train N] [--limit-test N] [--micro-batch N] [--backend auto|tensorflow-gpu|tensorflow|onednn|wasm|cpu]
      [--threads N] [--checkpoint-dir DIR] [--checkpoint-every STEPS] [--nonfinite fail|skip] [--bucket-mb 25|off] [--resume] [--json]
      [--simulate-gpu EXAMPLES_PER_SEC]
  Trains in this one process (no Redis), printing the seed's per-epoch line. --nonfinite says what a
  step whose gradient holds a NaN or an infinity does: fail the run (the default) or skip its update.
  --simulate-gpu is a benchmarking aid: each step's gradient computation becomes a wait of
  (slice / EXAMPLES_PER_SEC) seconds and a constant stand-in gradient, as on a GPU of that speed,
  with the real data path, all-reduce and update (see bench scaling --simulate-gpu).`,
  launch: `launch [--local] --workers N [training flags as for train] [--grad-compression none|fp16] [--max-restarts 3] [--heartbeat-timeout 30] [--follow] [--json]
      [--run-id NAME [--if-exists fail|attach|resume]] [--redis URL] [--prefix fmnist] [--state-dir .fmnist-cluster]
      [--redis-probe URL|off] [--metrics-host 127.0.0.1] [--metrics-port auto|off|N] [--prometheus [--prometheus-port N]]
  Creates a run and queues its N worker jobs. --local also starts Redis (when REDIS_URL is unset
  and nothing answers on the --redis-probe URL, 127.0.0.1:6379 by default; always with
  --redis-probe off), the coordinator and N worker processes, and follows the run to its end;
  Ctrl-C stops everything cleanly and leaves the run resumable. With --local the
  coordinator serves /metrics and Prometheus' service discovery (/sd) on a free port (it says
  which); --prometheus also runs Debian's prometheus against them (data in <state-dir>/prometheus).
  --run-id names the run and creates it only once; when it exists (with the same config), --if-exists
  says what happens: fail (the default), attach (leave it as it is; follow it with --follow) or
  resume (attach, resuming it first when it failed or was interrupted). An empty flag value counts
  as an absent flag. --max-restarts: how often the coordinator service restarts the run by itself
  (from its newest checkpoint) after a lost, hung or unreachable worker; 0 leaves it failed for
  resume. --local also starts a worker that dies again, as often. --heartbeat-timeout: seconds a
  worker may send no liveness beat (a stopped or frozen process) before its peers abandon the step.
  --local's workers get the Redis credentials, FMNIST_AUTH_TOKEN and the ring's
  FMNIST_TLS_CERT/KEY/CA through their environment. --grad-compression fp16 sums the gradients in
  IEEE binary16 (half the bytes on the gRPC ring; every rank still gets the same bits, but not the
  bits of one process: off by default); train refuses it.
${REDIS_AUTH}`,
  resume: `resume <run> [--local] [--follow] [--force] [--json] [--redis URL] [--prefix P] [--state-dir DIR]
      [--metrics-host H] [--metrics-port auto|off|N] [--prometheus [--prometheus-port N]]
  Continues a failed, cancelled or interrupted run from its newest complete checkpoint.
  --force also takes a run still marked running whose processes were all killed.
${REDIS_AUTH}`,
  status: `status <run> [--follow] [--json] [--redis URL | --local] [--state-dir DIR] [--prefix P]
  Prints the run's state, config, automatic restarts and their causes, and per-epoch history;
  --follow attaches until it stops (a failure that will be restarted is not a stop).
  Reads --redis, else REDIS_URL, else (as --local does) the Redis of the state directory: the
  running one, else one started from its files and stopped again.
${REDIS_AUTH}`,
  list: `list [--limit 20] [--json] [--redis URL | --local] [--state-dir DIR] [--prefix P]
  Lists runs, newest first. Reads the same Redis as status.`,
  report: `report <run> [--out <run>.html | --out -] [--json] [--redis URL | --local] [--state-dir DIR] [--prefix P]
  Writes one self-contained HTML page (inline SVG, nothing fetched): loss and accuracy per epoch,
  throughput over training time and the step time split (--out -: the page on stdout). Reads the
  same Redis as status.`,
  cancel: `cancel <run> [--redis URL | --local [--state-dir DIR]] [--prefix P]
  Cancels a run: its workers stop together after the current step.`,
  serve: `serve [--redis URL] [--prefix P] [--local] [--state-dir DIR] [--metrics-host 127.0.0.1] [--metrics-port 9400|auto|off]
      [--no-resume-lost]
  The long-running coordinator: publishes the dataset shards, watches the jobs, restarts runs that
  failed with a recoverable cause (up to their --max-restarts), fails and so restarts a running
  run none of whose workers has beaten for its heartbeat timeout (every process was killed; not
  with --no-resume-lost), and serves
  /metrics, /healthz and Prometheus' HTTP service discovery of the workers (/sd).
  Environment: COORDINATOR_METRICS_HOST, COORDINATOR_METRICS_PORT.
${REDIS_AUTH}`,
} as const;
