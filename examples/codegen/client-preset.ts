/**
 * GraphQL Code Generator's client preset for an app that calls this gateway. Copy it into the app
 * as `codegen.ts`, point `schema` at the gateway's SDL (schema/worker-session-gateway.graphql) and
 * `documents` at the app's operations, then run `npx graphql-codegen --config codegen.ts`.
 *
 * - `DateTimeISO` is an ISO-8601 string on the wire; `strictScalars` makes any scalar the config
 *   does not map an error instead of `unknown`.
 * - `emitLegacyCommonJSImports: false` writes `./graphql.js` in the generated imports, as
 *   `"module": "NodeNext"` requires (Vite and other bundlers accept it too).
 */
import type { CodegenConfig } from "@graphql-codegen/cli";

const config: CodegenConfig = {
  schema: "schema/worker-session-gateway.graphql",
  documents: ["src/**/*.{graphql,ts,tsx}"],
  emitLegacyCommonJSImports: false,
  generates: {
    "src/gql/": {
      preset: "client",
      config: {
        strictScalars: true,
        scalars: { DateTimeISO: "string" },
        enumsAsTypes: true,
        useTypeImports: true,
      },
    },
  },
};

export default config;
