// Lint for the TypeScript sources, tests, benchmark scripts and configs. Type-aware rules catch
// promises nobody awaits and other mistakes the compiler lets through.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The layers of src/, bottom first (README: Layout). A folder may import its own files and the
 * folders it lists here; an import that runs back up a layer, or from a folder into the top-level
 * wiring files (main, app, config, local mode), fails `npm run lint`.
 */
const LAYERS = {
  base: [],
  redis: ["base"],
  postgres: ["base"],
  storage: ["base", "redis", "postgres"],
  deel: ["base", "redis", "postgres"],
  sessions: ["base", "redis", "postgres", "storage", "deel"],
  auth: ["base"],
  http: ["base"],
  graphql: ["base", "deel", "sessions", "auth", "http"],
  // OpenTelemetry decorators of the Deel client, budget and ledger, and the request span.
  telemetry: ["base", "deel", "sessions"],
};

/** One lint block per layer and folder depth: relative imports are matched as written. */
function layerRules() {
  const folders = Object.keys(LAYERS);
  const blocks = [];
  for (const [layer, allowed] of Object.entries(LAYERS)) {
    const forbidden = folders.filter((folder) => folder !== layer && !allowed.includes(folder));
    for (let depth = 1; depth <= 3; depth += 1) {
      const up = "\\.\\./".repeat(depth);
      const patterns = [{ regex: `^${up}[^/]+\\.js$`, message: `src/${layer}/ must not import the top-level wiring (main, app, config, local mode): pass what it needs in.` }];
      if (forbidden.length > 0) {
        patterns.push({
          regex: `^${up}(${forbidden.join("|")})/`,
          message: `src/${layer}/ may import only ${allowed.length === 0 ? "its own files" : `src/${allowed.join("/, src/")}/`} (README: Layout).`,
        });
      }
      const glob = `src/${layer}/${"*/".repeat(depth - 1)}*.ts`;
      blocks.push({ files: [glob], rules: { "no-restricted-imports": ["error", { patterns }] } });
    }
  }
  return blocks;
}

export default tseslint.config(
  { ignores: ["dist/**", "dist-*/**", "node_modules/**", "test/generated/**", "data/**", "coverage/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      // Apollo plugin hooks and route handlers are async by contract, awaited or not.
      "@typescript-eslint/require-await": "off",
    },
  },
  ...layerRules(),
  {
    // Matchers such as expect.any() and expect.stringContaining() are typed `any` by design.
    files: ["test/**/*.ts"],
    rules: {
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
    // Node's globals (process, console, URL …); the scripts run on Node only.
    rules: { ...tseslint.configs.disableTypeChecked.rules, "no-undef": "off" },
  },
);
