// Lint for the TypeScript sources, tests, benchmark scripts and configs. Type-aware rules catch
// promises nobody awaits and other mistakes the compiler lets through.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

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
