#!/usr/bin/env bash
# npm run test:deploy: brings the CPU variant of deploy/docker-compose.yml up for real, with
# podman and Debian's docker-compose, and checks what a user relies on:
#   1. the images build (deploy/cpu.Dockerfile on a local stand-in for node:20-bookworm-slim);
#   2. `up` alone starts training the .env run, its two workers in separate containers forming
#      the ring over the compose network at the addresses they advertise by default;
#   3. taking the stack down mid-run (containers go, volumes stay) makes the workers checkpoint
#      and mark the run interrupted, and `up` again resumes that run from the checkpoint, in
#      new containers, to `completed`: no second run;
#   4. the stack's Prometheus scraped every worker (up{job="fmnist-worker"} through its HTTP API);
#   5. `docker compose run --rm coordinator status <run>`, `list` and `report <run> --out -`
#      report the run;
# then removes everything it started (containers, network, volumes, podman's API service), also
# on failure, and prints how long each stage took. Grafana is left out (profile `grafana`): it has
# no Debian package and no registry can be reached here. The base images it makes (Debian from
# debootstrap, Node, Redis and Prometheus stand-ins) are kept for the next run.
set -euo pipefail
cd "$(dirname "$0")/../.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/fmnist-deploy.XXXXXX")
LOG_DIR="$WORK_DIR/logs"
mkdir -p "$LOG_DIR"
# shellcheck source=test/deploy/container-engine.sh
source test/deploy/container-engine.sh
# shellcheck source=test/deploy/local-images.sh
source test/deploy/local-images.sh

PROJECT="fmnist-deploy-test-$$"
RUN_ID=deploy-test
WORKERS=2
ENV_FILE="$WORK_DIR/test.env"
API_PID=""
HEALTH_PID=""
RESTARTED_AT=""
WORKER_HOSTS=""
STAGES=()
STARTED=$SECONDS

compose() {
  docker-compose --project-name "$PROJECT" --project-directory deploy -f deploy/docker-compose.yml --env-file "$ENV_FILE" "$@"
}

stage() {
  local name=$1 start=$SECONDS
  shift
  echo "== $name"
  "$@"
  STAGES+=("$(printf '%-44s %4d s' "$name" $((SECONDS - start)))")
}

# Runs a noisy command with its output in $LOG_DIR/<name>.log, shown only when it fails.
quietly() {
  local log="$LOG_DIR/$1.log"
  shift
  "$@" >"$log" 2>&1 || { local status=$?; tail -40 "$log" >&2; return "$status"; }
}

print_stages() {
  echo "== stages"
  printf '  %s\n' "${STAGES[@]}"
  printf '  %-44s %4d s\n' total $((SECONDS - STARTED))
}

cleanup() {
  local status=$?
  set +e
  stop_health_checks
  if [ -n "${DOCKER_HOST:-}" ] && [ -f "$ENV_FILE" ]; then
    if [ "$status" -ne 0 ]; then compose logs --no-color --tail 60 >"$LOG_DIR/compose.log" 2>&1; tail -120 "$LOG_DIR/compose.log" >&2; fi
    compose down --volumes --remove-orphans --timeout 60 >"$LOG_DIR/down.log" 2>&1 || cat "$LOG_DIR/down.log" >&2
  fi
  stop_podman_api
  print_stages
  if [ "$status" -eq 0 ]; then rm -rf "$WORK_DIR"; else echo "FAILED (exit $status); logs in $LOG_DIR" >&2; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });"
}

# The .env of the test: CPU variant without Grafana, a short run, the locally made images.
write_env_file() {
  cat >"$ENV_FILE" <<ENV
COMPOSE_PROFILES=cpu
WORKERS=$WORKERS
RUN_ID=$RUN_ID
MODEL=resnet18
EPOCHS=1
BATCH_SIZE=64
RESIZE=28
LIMIT_TRAIN=1024
LIMIT_TEST=256
CPU_WORKER_THREADS=1
WORKER_STOP_GRACE=2m
FMNIST_IMAGE=localhost/fmnist-test/fmnist-cluster:cpu
NODE_BASE=$NODE_BASE_IMAGE
REDIS_IMAGE=$REDIS_IMAGE
PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE
PROMETHEUS_PORT=$(free_port)
ENV
}

# podman schedules healthchecks with systemd timers, and these machines have no systemd: run
# each container's own healthcheck (`podman healthcheck run`) every 2 s instead, or no
# `depends_on: condition: service_healthy` would ever be met.
start_health_checks() {
  (
    while true; do
      for id in $(podman ps -q --filter "label=com.docker.compose.project=$PROJECT" 2>/dev/null); do
        podman healthcheck run "$id" >/dev/null 2>&1 || true
      done
      sleep 2
    done
  ) &
  HEALTH_PID=$!
}

stop_health_checks() {
  if [ -n "$HEALTH_PID" ]; then kill "$HEALTH_PID" 2>/dev/null; wait "$HEALTH_PID" 2>/dev/null; HEALTH_PID=""; fi
  return 0
}

redis_cli() {
  compose exec -T redis redis-cli --raw "$@"
}

# `<state> <generation> <global step>` of the run, empty before it exists.
run_summary() {
  redis_cli HMGET "fmnist:run:$RUN_ID" state generation progress 2>/dev/null | node -e '
    const [state, generation, progress] = require("node:fs").readFileSync(0, "utf8").split("\n");
    if (state) console.log(state, generation, progress ? JSON.parse(progress).globalStep : 0);
  '
}

# Waits until the run, in generation $1 or later, is `$2` (running: with at least 2 steps done);
# fails at once when that generation fails, is interrupted or cancelled.
wait_for_run() {
  local generation=$1 wanted=$2 summary="" state gen step deadline=$((SECONDS + 1200))
  while [ $SECONDS -lt $deadline ]; do
    summary=$(run_summary || true)
    read -r state gen step <<<"${summary:-none -1 0}"
    if [ "$gen" -ge "$generation" ]; then
      case "$state" in
        "$wanted") if [ "$wanted" != running ] || [ "$step" -ge 2 ]; then echo "run $RUN_ID: $summary"; return 0; fi ;;
        completed | failed | interrupted | cancelled)
          echo "run $RUN_ID is $state in generation $gen, not $wanted: $(redis_cli HGET "fmnist:run:$RUN_ID" error)" >&2; return 1 ;;
      esac
    fi
    sleep 3
  done
  echo "run $RUN_ID: '$summary' after 20 minutes, not $wanted" >&2
  return 1
}

# The launch container's exit code (it follows the run, so it exits when the run ends).
launch_exit_code() {
  podman wait "$(compose ps -q launch)" | tail -1
}

up_and_start_training() {
  quietly up compose up -d
  wait_for_run 0 running
}

# Down mid-run, then up: the launch finds the run interrupted by the stop and resumes it, the
# workers of the new generation continue from the checkpoint rank 0 wrote while stopping.
restart_mid_run_and_finish() {
  quietly down-mid-run compose down --timeout 120
  RESTARTED_AT=$(date +%s)
  quietly up-again compose up -d
  wait_for_run 1 completed
  local code
  code=$(launch_exit_code)
  [ "$code" = 0 ] || { echo "launch exited $code" >&2; compose logs --no-color launch >&2; return 1; }
  expect_in_logs launch "run $RUN_ID exists (resumed as generation 1)"
  expect_in_logs worker-cpu "resuming from /var/lib/fmnist/checkpoints/$RUN_ID/ckpt-"
  redis_cli XRANGE "fmnist:events:$RUN_ID" - + | grep -F '"to":"interrupted"' >/dev/null \
    || { echo "the stop did not mark the run interrupted" >&2; return 1; }
}

# (grep -q would stop reading at the first match, and pipefail would count the writer's SIGPIPE.)
expect_in_logs() {
  compose logs --no-color "$1" | grep -F "$2" >/dev/null || { echo "no '$2' in the logs of $1:" >&2; compose logs --no-color --tail 30 "$1" >&2; return 1; }
}

# Both workers joined the resumed generation from their own container, each advertising its
# container address (not loopback) on the fixed ring port.
check_ring_addresses() {
  local members
  members=$(redis_cli HVALS "fmnist:rdv:$RUN_ID:1:members")
  echo "$members"
  WORKER_HOSTS=$(node -e 'console.log(process.argv[1].trim().split("\n").map((l) => JSON.parse(l).address.replace(/:\d+$/, "")).sort().join(" "))' "$members")
  node -e '
    const members = process.argv[1].trim().split("\n").map((line) => JSON.parse(line));
    const addresses = members.map((m) => m.address);
    const hosts = new Set(members.map((m) => m.host));
    const ok = members.length === Number(process.argv[2]) && hosts.size === members.length && new Set(addresses).size === members.length
      && addresses.every((a) => a.endsWith(":29500") && !a.startsWith("127.") && !a.startsWith("[::1]"));
    if (!ok) { console.error("unexpected ring members: " + JSON.stringify(members)); process.exit(1); }
  ' "$members" "$WORKERS"
}

# up{job="fmnist-worker"} == 1, scraped since the restart, for exactly the workers of the ring
# (<container address>:WORKER_METRICS_PORT), through Prometheus' HTTP API on its published port.
# Since the restart: Prometheus kept its data, and the workers of the first start, gone without
# staleness markers, still count as up for the 5 min lookback. (timestamp() of a plain selector
# is the time of the sample; of an expression it would be the time of the query.)
check_prometheus_scraped_workers() {
  local port deadline=$((SECONDS + 180))
  port=$(sed -n 's/^PROMETHEUS_PORT=//p' "$ENV_FILE")
  while [ $SECONDS -lt $deadline ]; do
    if node -e '
      const [port, since, hosts] = process.argv.slice(1);
      const query = encodeURIComponent(`(timestamp(up{job="fmnist-worker"}) > ${since}) and on(instance) (up{job="fmnist-worker"} == 1)`);
      const expected = hosts.split(" ").map((host) => `${host}:9401`).sort().join(", ");
      fetch(`http://127.0.0.1:${port}/api/v1/query?query=${query}`).then((r) => r.json()).then((body) => {
        const scraped = [...new Set(body.data.result.map((series) => series.metric.instance))].sort().join(", ");
        console.log(`workers scraped: ${scraped || "none"} (ring: ${expected})`);
        process.exit(scraped === expected ? 0 : 1);
      }, () => process.exit(1));
    ' "$port" "$RESTARTED_AT" "$WORKER_HOSTS"; then return 0; fi
    sleep 5
  done
  echo "Prometheus did not scrape the $WORKERS workers of the ring within 3 minutes" >&2
  return 1
}

# docker-compose 1.x links a one-off container to its service's running containers, and podman
# refuses links ("link is not supported"); Docker and Compose v2 need no such step. So the
# coordinator container is stopped first: `run --rm coordinator` then starts the same image with
# the same environment on the same network, beside Redis and the workers that still run.
check_status_and_list() {
  local status list
  quietly stop-coordinator compose stop coordinator
  status=$(compose run --rm -T coordinator status "$RUN_ID" --json)
  list=$(compose run --rm -T coordinator list --json)
  echo "$status" | tail -1 | head -c 300; echo
  node -e '
    const status = JSON.parse(process.argv[1].trim().split("\n").at(-1));
    const list = JSON.parse(process.argv[2].trim().split("\n").at(-1));
    const ok = status.id === process.argv[3] && status.state === "completed" && status.generation === 1 && status.history.length === 1
      && list.length === 1 && list[0].run === process.argv[3];
    if (!ok) { console.error("unexpected status/list: " + JSON.stringify({ status, list })); process.exit(1); }
  ' "$status" "$list" "$RUN_ID"
}

# The report page comes out on stdout (--out -), so nothing is left in the throw-away container.
check_report() {
  compose run --rm -T coordinator report "$RUN_ID" --out - >"$WORK_DIR/report.html"
  head -c 15 "$WORK_DIR/report.html" | grep -qx '<!doctype html>' || { echo "report did not write a page" >&2; return 1; }
  grep -q "$RUN_ID" "$WORK_DIR/report.html"
  echo "report: $(wc -c <"$WORK_DIR/report.html") bytes"
}

stage "install podman and docker-compose" install_container_engine
stage "base images (debootstrap, stand-ins)" build_local_images
stage "podman API service" start_podman_api "$WORK_DIR/podman.sock"
write_env_file
stage "build the CPU image" quietly build compose build
start_health_checks
stage "up: the .env run trains" up_and_start_training
stage "down mid-run, up: resumed, completed" restart_mid_run_and_finish
stage "ring across worker containers" check_ring_addresses
stage "Prometheus scraped every worker" check_prometheus_scraped_workers
stage "status and list in a run --rm container" check_status_and_list
stage "report in a run --rm container" check_report
stage "down --volumes" quietly down compose down --volumes --remove-orphans --timeout 60
echo "DEPLOY TEST OK"
