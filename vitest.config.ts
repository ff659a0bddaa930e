import { readdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const here = fileURLToPath(new URL('.', import.meta.url));
const dirs = (base: string) => (existsSync(here + base) ? readdirSync(here + base).map((d) => `${base}/${d}`) : []);

/** Workspace packages resolve to their TypeScript sources, so tests never need a build first. */
const alias = [
  { find: /^@quail\/core\/testing$/, replacement: `${here}packages/core/src/testing/index.ts` },
  { find: /^@quail\/(core|qmail|plugin-[a-z0-9-]+)$/, replacement: `${here}packages/$1/src/index.ts` },
];

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [...dirs('packages'), ...dirs('examples'), 'reliability']
      .filter((d) => existsSync(`${here}${d}/test`))
      .map((d) => ({
        resolve: { alias },
        test: {
          name: d.split('/').pop()!,
          root: `${here}${d}`,
          include: ['test/**/*.test.ts'],
          setupFiles: [`${here}packages/core/test/setup.ts`],
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      })),
  },
});
