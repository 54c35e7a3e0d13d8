import { defineConfig } from 'vitest/config';

// Tests start many real processes, and much of their time is waiting (leases, delays, servers): with two
// test files at once the suite used 1.18 of the 2 cores (568 CPU-s in 482 s). Three at once on 2 cores
// take 370 s instead; every test must hold under that load, which is why timeouts are generous.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    maxWorkers: 3,
  },
});
