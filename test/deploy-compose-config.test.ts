/**
 * deploy/docker-compose.yml as Debian's docker-compose (1.29.2) normalises it, for the GPU variant
 * (the shipped .env.example) and the CPU variant. GPU reservations cannot be exercised on these
 * machines (podman drops them), so they are checked here; `npm run test:deploy` brings the CPU
 * variant up for real.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './helpers/cli.ts';

const run = promisify(execFile);
const DEPLOY = path.join(REPO_ROOT, 'deploy');
const ENV_EXAMPLE = path.join(DEPLOY, '.env.example');

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
  profiles?: string[];
  scale?: number;
  volumes?: string[];
  stop_grace_period?: string;
  deploy?: { resources?: { reservations?: { devices?: { driver: string; device_ids?: string[]; count?: number; capabilities: string[] }[] } } };
}

interface ComposeConfig {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
}

/** `docker-compose config` with `envFile`, parsed by the YAML library compose itself uses. */
async function composeConfig(envFile: string): Promise<ComposeConfig> {
  const { stdout } = await run(
    'docker-compose',
    ['--project-directory', DEPLOY, '-f', path.join(DEPLOY, 'docker-compose.yml'), '--env-file', envFile, 'config'],
    { cwd: DEPLOY, env: cleanEnv() },
  );
  const { stdout: json } = await promisify(pipeToPython)(stdout);
  return JSON.parse(json) as ComposeConfig;
}

function pipeToPython(yaml: string, callback: (error: Error | null, result: { stdout: string }) => void): void {
  const child = execFile('python3', ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'], (error, stdout) =>
    callback(error, { stdout }),
  );
  child.stdin!.end(yaml);
}

/** This process's environment without the knobs, so that only the env file speaks. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const key of Object.keys(env)) if (/^(COMPOSE_|WORKERS$|REDIS_URL$|FMNIST_|TRAIN_BACKEND$)/.test(key)) delete env[key];
  return env;
}

/** Services that `up` starts with these profiles: those without profiles and those in one of them. */
function activeServices(config: ComposeConfig, profiles: string[]): string[] {
  return Object.entries(config.services)
    .filter(([, service]) => !service.profiles || service.profiles.some((profile) => profiles.includes(profile)))
    .map(([name]) => name)
    .sort();
}

/** The .env.example with some values replaced, written to a temporary file. */
async function envFileWith(dir: string, name: string, overrides: Record<string, string>): Promise<string> {
  const lines = (await readFile(ENV_EXAMPLE, 'utf8')).split('\n').map((line) => {
    const key = /^([A-Z_]+)=/.exec(line)?.[1];
    return key !== undefined && key in overrides ? `${key}=${overrides[key]}` : line;
  });
  const file = path.join(dir, name);
  await writeFile(file, lines.join('\n'));
  return file;
}

function gpuDevices(service: Service) {
  return service.deploy?.resources?.reservations?.devices ?? [];
}

let scratch: string;
let gpu: ComposeConfig;
let cpu: ComposeConfig;
test.before(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), 'fmnist-compose-'));
  gpu = await composeConfig(ENV_EXAMPLE);
  cpu = await composeConfig(await envFileWith(scratch, 'cpu.env', { COMPOSE_PROFILES: 'cpu', WORKERS: '3', CPU_WORKER_THREADS: '4' }));
});
test.after.always(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

const CORE = ['coordinator', 'launch', 'prometheus', 'redis'];

test('GPU variant: with gpu-N, exactly workers 0..N-1 run, worker k reserving GPU k through the nvidia driver', (t) => {
  for (let n = 1; n <= 8; n += 1) {
    const workers = Array.from({ length: n }, (_, k) => `worker-gpu-${k}`);
    t.deepEqual(activeServices(gpu, [`gpu-${n}`]), [...CORE, ...workers].sort(), `gpu-${n}`);
  }
  for (let k = 0; k < 8; k += 1) {
    const service = gpu.services[`worker-gpu-${k}`];
    t.deepEqual(gpuDevices(service), [{ driver: 'nvidia', device_ids: [String(k)], capabilities: ['gpu'] }], `worker-gpu-${k}`);
    t.is(service.environment?.TRAIN_BACKEND, 'tensorflow-gpu');
    t.is(service.build?.dockerfile, 'deploy/gpu.Dockerfile');
    t.is(service.build?.args?.CUDA_BASE, 'nvidia/cuda:11.2.2-cudnn8-runtime-ubuntu20.04');
  }
});

test('GPU variant: the GPU count is WORKERS alone: the profile and the run size both follow it', async (t) => {
  const example = await readFile(ENV_EXAMPLE, 'utf8');
  t.regex(example, /^WORKERS=2$/m);
  t.regex(example, /^COMPOSE_PROFILES=gpu-\$\{WORKERS\},grafana$/m, 'the profile is derived from WORKERS');
  t.true(gpu.services.launch.command!.includes('--workers=2'));
  const four = await composeConfig(await envFileWith(scratch, 'gpu4.env', { WORKERS: '4' }));
  t.true(four.services.launch.command!.includes('--workers=4'));
});

test('CPU variant: WORKERS onednn workers from the CPU image, no GPU reserved, no GPU worker started', (t) => {
  t.deepEqual(activeServices(cpu, ['cpu']), [...CORE, 'worker-cpu'].sort());
  const worker = cpu.services['worker-cpu'];
  t.is(worker.scale, 3);
  t.deepEqual(gpuDevices(worker), []);
  t.like(worker.environment, { TRAIN_BACKEND: 'onednn', WORKER_THREADS: '4', WORKER_LISTEN_HOST: '0.0.0.0', WORKER_RING_PORT: '29500' });
  t.is(worker.image, cpu.services.coordinator.image, 'the coordinator and the CPU workers share one image');
  t.is(worker.build?.dockerfile, 'deploy/cpu.Dockerfile');
  t.true(cpu.services.launch.command!.includes('--workers=3'));
});

test('the launch service starts the .env run idempotently with the seed config by default', (t) => {
  const command = gpu.services.launch.command!;
  t.is(command[0], 'launch');
  for (const flag of [
    '--run-id=fmnist',
    '--if-exists=resume',
    '--follow',
    '--model=resnet18',
    '--epochs=10',
    '--batch-size=256',
    '--lr=0.05',
    '--resize=96',
    '--seed=0',
    '--limit-train=',
    '--limit-test=',
  ]) {
    t.true(command.includes(flag), flag);
  }
  t.regex(gpu.services.launch.restart!, /^on-failure:\d+$/);
});

test('every long-running service has a healthcheck and a restart policy, and starts after what it needs is healthy', (t) => {
  for (const config of [gpu, cpu]) {
    for (const [name, service] of Object.entries(config.services)) {
      if (name === 'launch') continue;
      t.true((service.healthcheck?.test.length ?? 0) > 1, `${name} healthcheck`);
      t.is(service.restart, 'unless-stopped', name);
    }
    const dependsOn = (name: string) => config.services[name].depends_on;
    t.deepEqual(dependsOn('coordinator'), { redis: { condition: 'service_healthy' } });
    t.deepEqual(dependsOn('launch'), { coordinator: { condition: 'service_healthy' } });
    t.deepEqual(dependsOn('prometheus'), { coordinator: { condition: 'service_healthy' } });
    t.deepEqual(dependsOn('grafana'), { prometheus: { condition: 'service_healthy' } });
    for (const name of Object.keys(config.services).filter((n) => n.startsWith('worker-'))) {
      t.deepEqual(dependsOn(name), { redis: { condition: 'service_healthy' } }, name);
    }
  }
});

test('Redis keeps an append-only file on a volume; every worker shares the checkpoint volume', (t) => {
  const redis = gpu.services.redis;
  t.deepEqual(redis.command!.slice(0, 3), ['redis-server', '--appendonly', 'yes']);
  // Debian's redis-server (unlike the official image's) refuses other hosts in protected mode.
  t.is(redis.command![redis.command!.indexOf('--protected-mode') + 1], 'no');
  t.true(redis.volumes!.some((volume) => volume.startsWith('redis-data:/data')));
  for (const config of [gpu, cpu]) {
    for (const name of Object.keys(config.services).filter((n) => n.startsWith('worker-'))) {
      t.true(
        config.services[name].volumes!.some((volume) => volume.startsWith('checkpoints:/var/lib/fmnist/checkpoints')),
        name,
      );
      t.is(config.services[name].environment?.CHECKPOINT_ROOT, '/var/lib/fmnist/checkpoints', name);
    }
  }
  t.deepEqual(Object.keys(gpu.volumes).sort(), ['checkpoints', 'grafana-data', 'prometheus-data', 'redis-data']);
});

test('Prometheus and Grafana mount the provisioned files: Prometheus finds workers through the coordinator', (t) => {
  const prometheus = gpu.services.prometheus;
  t.true(prometheus.volumes!.some((volume) => volume.endsWith(':/etc/prometheus/prometheus.yml:ro') && volume.includes('deploy/prometheus/prometheus.yml')));
  const grafana = gpu.services.grafana;
  t.deepEqual(grafana.profiles, ['grafana']);
  for (const target of ['/etc/grafana/provisioning:ro', '/var/lib/grafana/dashboards/fmnist:ro']) {
    t.true(
      grafana.volumes!.some((volume) => volume.endsWith(target)),
      target,
    );
  }
  t.like(gpu.services.coordinator.environment, { COORDINATOR_METRICS_HOST: '0.0.0.0', COORDINATOR_METRICS_PORT: '9400' });
});
