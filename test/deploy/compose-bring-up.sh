#!/usr/bin/env bash
# npm run test:deploy: brings the CPU variant of deploy/docker-compose.yml up for real, with
# podman and Debian's docker-compose, and checks what a user relies on:
#   1. the images build (deploy/cpu.Dockerfile on a local stand-in for node:20-bookworm-slim);
#   2. `up` alone trains the .env run to `completed`, its two workers in separate containers
#      forming the ring over the compose network at the addresses they advertise by default;
#   3. the stack's Prometheus scraped every worker (up{job="fmnist-worker"} through its HTTP API);
#   4. `docker compose run --rm coordinator status <run>`, `list` and `report <run> --out -`
#      report the run;
#   5. taking the stack down and up again (new containers, same volumes) starts no second run;
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

run_state() {
  redis_cli HGET "fmnist:run:$RUN_ID" state 2>/dev/null | tr -d '\r'
}

# Waits until the run is `completed`; fails at once when it fails or is interrupted.
wait_for_completed() {
  local state="" deadline=$((SECONDS + 1200))
  while [ $SECONDS -lt $deadline ]; do
    state=$(run_state || true)
    case "$state" in
      completed) echo "run $RUN_ID completed"; return 0 ;;
      failed | interrupted | cancelled) echo "run $RUN_ID is $state: $(redis_cli HGET "fmnist:run:$RUN_ID" error)" >&2; return 1 ;;
    esac
    sleep 5
  done
  echo "run $RUN_ID still '$state' after 20 minutes" >&2
  return 1
}

# The launch container's exit code (it follows the run, so it exits when the run ends).
launch_exit_code() {
  podman wait "$(compose ps -q launch)" | tail -1
}

up_and_train() {
  quietly up compose up -d
  wait_for_completed
  local code
  code=$(launch_exit_code)
  [ "$code" = 0 ] || { echo "launch exited $code" >&2; compose logs --no-color launch >&2; return 1; }
}

# Both workers joined generation 0 from their own container, each advertising its container
# address (not loopback) on the fixed ring port.
check_ring_addresses() {
  local members
  members=$(redis_cli HVALS "fmnist:rdv:$RUN_ID:0:members")
  echo "$members"
  node -e '
    const members = process.argv[1].trim().split("\n").map((line) => JSON.parse(line));
    const addresses = members.map((m) => m.address);
    const hosts = new Set(members.map((m) => m.host));
    const ok = members.length === Number(process.argv[2]) && hosts.size === members.length && new Set(addresses).size === members.length
      && addresses.every((a) => a.endsWith(":29500") && !a.startsWith("127.") && !a.startsWith("[::1]"));
    if (!ok) { console.error("unexpected ring members: " + JSON.stringify(members)); process.exit(1); }
  ' "$members" "$WORKERS"
}

# up{job="fmnist-worker"} == 1 for every worker, through Prometheus' HTTP API on its published port.
check_prometheus_scraped_workers() {
  local port deadline=$((SECONDS + 180))
  port=$(sed -n 's/^PROMETHEUS_PORT=//p' "$ENV_FILE")
  while [ $SECONDS -lt $deadline ]; do
    if node -e '
      const [port, workers] = process.argv.slice(1);
      const query = encodeURIComponent("up{job=\"fmnist-worker\"} == 1");
      fetch(`http://127.0.0.1:${port}/api/v1/query?query=${query}`).then((r) => r.json()).then((body) => {
        const instances = new Set(body.data.result.map((series) => series.metric.instance));
        console.log(`workers scraped: ${[...instances].join(", ") || "none"}`);
        process.exit(instances.size === Number(workers) ? 0 : 1);
      }, () => process.exit(1));
    ' "$port" "$WORKERS"; then return 0; fi
    sleep 5
  done
  echo "Prometheus did not scrape all $WORKERS workers within 3 minutes" >&2
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
    const ok = status.id === process.argv[3] && status.state === "completed" && status.generation === 0 && status.history.length === 1
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

# down (containers and network go, volumes stay) and up: the launch finds the completed run.
restart_stack() {
  quietly down-for-restart compose down --timeout 120
  quietly up-again compose up -d
  local code
  code=$(launch_exit_code)
  [ "$code" = 0 ] || { echo "launch exited $code after the restart" >&2; compose logs --no-color launch >&2; return 1; }
  compose logs --no-color launch | grep -q "run $RUN_ID exists (completed)" \
    || { echo "the launch after the restart did not find the completed run" >&2; compose logs --no-color launch >&2; return 1; }
  check_status_and_list
}

stage "install podman and docker-compose" install_container_engine
stage "base images (debootstrap, stand-ins)" build_local_images
stage "podman API service" start_podman_api "$WORK_DIR/podman.sock"
write_env_file
stage "build the CPU image" quietly build compose build
start_health_checks
stage "up: train the .env run to completed" up_and_train
stage "ring across worker containers" check_ring_addresses
stage "Prometheus scraped every worker" check_prometheus_scraped_workers
stage "status and list in a run --rm container" check_status_and_list
stage "report in a run --rm container" check_report
stage "down and up: no second run" restart_stack
stage "down --volumes" quietly down compose down --volumes --remove-orphans --timeout 60
echo "DEPLOY TEST OK"
