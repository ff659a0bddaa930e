import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RESULTS = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'results');

/** Writes what a run measured to reliability/results/<name>.json (docs/reliability.md quotes these). */
export async function recordMetrics(name: string, figures: Record<string, unknown>): Promise<void> {
  await mkdir(RESULTS, { recursive: true });
  const data = { name, measuredAt: new Date().toISOString(), ...figures };
  await writeFile(join(RESULTS, `${name}.json`), `${JSON.stringify(data, null, 2)}\n`);
  process.stdout.write(`[reliability] ${name}: ${JSON.stringify(figures)}\n`);
}
