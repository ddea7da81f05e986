// A reference for the read path: plain Apollo Server 5 on node:http (startStandaloneServer) with one
// trivial resolver over the same Map as the bare baseline, and nothing else: no auth, no shield, no
// ledger, no limits, no metrics. It shows what Apollo's own pipeline costs on this machine, so the
// gateway's ratio can be read against it.
//
// Environment: BASELINE_DATA (path of a JSON object: profileId → the `workerSession` value).
// Listens on 127.0.0.1, a free port; prints one JSON line {url}.
import { readFileSync } from "node:fs";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";

const sessions = new Map(Object.entries(JSON.parse(readFileSync(process.env.BASELINE_DATA, "utf8"))));

const typeDefs = `#graphql
  type WorkerSession { profileId: ID! status: String! createdAt: String! expiresAt: String! revokedAt: String createdBy: String! revokedBy: String }
  type Query { workerSession(profileId: ID!): WorkerSession }
`;
const resolvers = { Query: { workerSession: (_root, { profileId }) => sessions.get(profileId.toLowerCase()) ?? null } };

const server = new ApolloServer({ typeDefs, resolvers });
const { url } = await startStandaloneServer(server, { listen: { port: 0, host: "127.0.0.1" } });
process.stdout.write(`${JSON.stringify({ url })}\n`);
const stop = () => server.stop().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
