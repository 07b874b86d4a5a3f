import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    globalSetup: ['test/helpers/global-setup.ts'],
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Two files at a time (vitest's default here is cores − 1 = 1): most files wait on PostgreSQL,
    // processes and sockets, not CPU; the suite takes ~7.5 min instead of ~12 on this 2-core machine.
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    // The SDK's notice that its 2027 releases will need Node 22 adds nothing to test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
