/**
 * `npm run deploy:generate`: writes the files generated from code, which are committed and
 * checked by test/deploy-files.test.ts to be what this code produces:
 * - deploy/grafana/dashboards/fmnist-training.json (deploy/grafana/dashboard.ts)
 * - deploy/prometheus/prometheus.yml (coordinator/prometheus-config.ts)
 */
import { writeFile } from 'node:fs/promises';
import { GENERATED_FILES } from './generated-files.ts';

for (const file of GENERATED_FILES) {
  await writeFile(file.path, file.content());
  process.stdout.write(`wrote ${file.path}\n`);
}
