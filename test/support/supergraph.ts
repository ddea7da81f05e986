import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { composeServices } from "@apollo/composition";
import { ApolloGateway } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { ApolloServerPluginInlineTraceDisabled } from "@apollo/server/plugin/disabled";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { createGatewayRuntime } from "@graphql-hive/gateway";
import { parse } from "graphql";
import { request } from "undici";
import { buildService, routerContext, WORKER_SESSIONS_SUBGRAPH, type RouterContext } from "../../examples/routers/apollo-gateway.js";
import { propagateCallerHeaders } from "../../examples/routers/hive-gateway.js";
import { SCHEMA_FILE } from "../../src/graphql/emit-schema.js";

/** Something listening on a loopback port until stopped. */
export interface Running {
  url: string;
  stop(): Promise<void>;
}

/** The company's HR subgraph as the tests imagine it: it owns `Worker.name` and the ways to find workers. */
export const HR_TYPE_DEFS = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key"])
  type Worker @key(fields: "profileId") { profileId: ID! name: String! }
  type Query { workers: [Worker!]! worker(profileId: ID!): Worker }
`);

export interface HrSubgraph extends Running {
  /** The headers of every request the HR subgraph received, in order. */
  readonly received: IncomingHttpHeaders[];
}

/** Starts the HR subgraph with these workers (profile id → name), in this order. */
export async function startHrSubgraph(names: ReadonlyMap<string, string>): Promise<HrSubgraph> {
  const worker = (profileId: string) => {
    const name = names.get(profileId);
    return name === undefined ? null : { profileId, name };
  };
  const server = new ApolloServer({
    schema: buildSubgraphSchema({
      typeDefs: HR_TYPE_DEFS,
      resolvers: {
        Query: {
          workers: () => [...names.entries()].map(([profileId, name]) => ({ profileId, name })),
          worker: (_: unknown, args: { profileId: string }) => worker(args.profileId),
        },
        Worker: { __resolveReference: (ref: { profileId: string }) => worker(ref.profileId) },
      },
    }),
    plugins: [ApolloServerPluginInlineTraceDisabled()],
  });
  const received: IncomingHttpHeaders[] = [];
  const { url } = await startStandaloneServer(server, {
    listen: { port: 0, host: "127.0.0.1" },
    context: async ({ req }) => {
      received.push(req.headers);
      return {};
    },
  });
  return { url, received, stop: () => server.stop() };
}

/** The supergraph of the HR subgraph and this one (named as the README publishes it). */
export function composeSupergraph(urls: { hr: string; workerSessions: string }): string {
  const composed = composeServices([
    { name: "hr", typeDefs: HR_TYPE_DEFS, url: urls.hr },
    { name: WORKER_SESSIONS_SUBGRAPH, typeDefs: parse(readFileSync(SCHEMA_FILE, "utf8")), url: urls.workerSessions },
  ]);
  if (composed.errors !== undefined) throw new Error(`composition failed: ${composed.errors.map((e) => e.message).join("; ")}`);
  return composed.supergraphSdl;
}

/** @apollo/gateway serving the supergraph, with the header propagation of examples/routers/apollo-gateway.ts. */
export async function startApolloGatewayRouter(supergraphSdl: string, routerSecret?: string): Promise<Running> {
  const gateway = new ApolloGateway({ supergraphSdl, buildService: buildService(routerSecret) });
  const server = new ApolloServer<RouterContext>({ gateway, plugins: [ApolloServerPluginInlineTraceDisabled()] });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: "127.0.0.1" }, context: routerContext });
  return { url, stop: () => server.stop() };
}

/** @graphql-hive/gateway serving the supergraph over node:http, with the header propagation of examples/routers/hive-gateway.ts. */
export async function startHiveGatewayRouter(
  supergraphSdl: string,
  routerSecret?: string,
  plugins?: Parameters<typeof createGatewayRuntime>[0]["plugins"],
): Promise<Running> {
  const gateway = createGatewayRuntime({
    supergraph: supergraphSdl,
    logging: "error",
    ...(plugins === undefined ? {} : { plugins }),
    ...propagateCallerHeaders(routerSecret),
  });
  const server = createServer(gateway.requestListener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await gateway.dispose();
    },
  };
}

/** One request as it passed through a recording proxy. */
export interface RecordedRequest {
  headers: IncomingHttpHeaders;
  body: { query?: string; variables?: Record<string, unknown> };
  /** The status the target answered with. */
  status: number;
}

export interface RecordingProxy extends Running {
  readonly requests: RecordedRequest[];
  /** Forgets what was recorded so far. */
  clear(): void;
}

const HOP_BY_HOP = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding"]);

/** A loopback proxy in front of `target` that records every request and the status it got. */
export async function startRecordingProxy(target: string): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const headers: Record<string, string | string[]> = {};
      for (const [name, value] of Object.entries(req.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
      request(target, { method: req.method === "GET" ? "GET" : "POST", headers, body: raw === "" ? null : raw })
        .then(async (answer) => {
          const text = await answer.body.text();
          requests.push({ headers: req.headers, body: raw === "" ? {} : (JSON.parse(raw) as RecordedRequest["body"]), status: answer.statusCode });
          res.writeHead(answer.statusCode, { "content-type": String(answer.headers["content-type"] ?? "application/json") });
          res.end(text);
        })
        .catch(() => {
          res.writeHead(502).end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${new URL(target).pathname}`,
    requests,
    clear: () => {
      requests.length = 0;
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
