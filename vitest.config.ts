import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // One copy of graphql for every importer (STACK pitfall 2: "another module or realm").
    alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }],
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: "forks",
    setupFiles: ["test/setup.ts"],
  },
});
