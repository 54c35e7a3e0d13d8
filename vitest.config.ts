import { defineConfig } from 'vitest/config';

// Tests start many real processes; two cores, so at most two test files at once and generous timeouts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    maxWorkers: 2,
  },
});
