/** The deployment files generated from code: where each goes and what it holds. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_METRICS_PORT } from '../coordinator/cli-flags.ts';
import { prometheusConfig } from '../coordinator/prometheus-config.ts';
import { buildDashboard } from './grafana/dashboard.ts';

const DEPLOY_DIR = path.dirname(fileURLToPath(import.meta.url));

export interface GeneratedFile {
  /** Absolute path. */
  path: string;
  content(): string;
}

export const GENERATED_FILES: readonly GeneratedFile[] = [
  {
    path: path.join(DEPLOY_DIR, 'grafana', 'dashboards', 'fmnist-training.json'),
    content: () => `${JSON.stringify(buildDashboard(), null, 2)}\n`,
  },
  {
    // The compose deployment names the coordinator's service `coordinator`.
    path: path.join(DEPLOY_DIR, 'prometheus', 'prometheus.yml'),
    content: () => prometheusConfig({ discoveryUrl: `http://coordinator:${DEFAULT_METRICS_PORT}/sd` }),
  },
];
