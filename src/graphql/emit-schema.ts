import { writeFileSync } from "node:fs";
import { printSubgraphSchema } from "@apollo/subgraph";
import { buildGatewaySchema } from "./schema.js";

/** Where the committed subgraph SDL lives (`rover subgraph publish --schema schema/worker-session-gateway.graphql`). */
export const SCHEMA_FILE = "schema/worker-session-gateway.graphql";

/** The subgraph SDL as the router composes it: federation `@link` and `@key` included. */
export async function printGatewaySdl(): Promise<string> {
  return `${printSubgraphSchema(await buildGatewaySchema()).trim()}\n`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(SCHEMA_FILE, await printGatewaySdl());
  console.log(`wrote ${SCHEMA_FILE}`);
}
