/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  // Servers and sockets in tests: two cores, so keep parallelism modest and timeouts generous.
  maxWorkers: 2,
  testTimeout: 30000,
  // Fails any test whose frames, HTTP answers or log lines carry a key or secret (item 5).
  setupFilesAfterEnv: ['<rootDir>/test/support/leak-scan.ts'],
};
