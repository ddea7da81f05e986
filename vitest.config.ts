import { defineConfig } from "vitest/config";

/**
 * Two tiers, both on the settings below (`extends: true`):
 * - `unit`: pure code, no sockets, no Redis, no real time passing; needs no build and no codegen.
 *   Its files share one module graph (`isolate: false`): they hold no global state, and importing
 *   the schema and codegen once instead of per file keeps the tier within seconds.
 * - `integration`: the gateway over real HTTP, the Deel sandbox, Redis, the built program.
 */
export default defineConfig({
  resolve: {
    // Every importer must get the same graphql module: vite can otherwise load both its ESM and CJS
    // builds, and graphql then rejects a schema or type "from another module or realm".
    alias: [{ find: /^graphql$/, replacement: "graphql/index.js" }],
  },
  test: {
    environment: "node",
    testTimeout: 20_000,
    hookTimeout: 30_000,
    pool: "forks",
    setupFiles: ["test/setup.ts"],
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], isolate: false } },
      { extends: true, test: { name: "integration", include: ["test/integration/**/*.test.ts"] } },
    ],
  },
});
