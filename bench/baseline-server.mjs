// The read-path baseline: a bare node:http handler that does the least a GraphQL server must do for
// `workerSession` — read the body, parse the JSON, take `variables.profileId`, look it up in a Map
// and answer the same JSON the gateway answers. No auth, no GraphQL, no middleware.
//
// Environment: BASELINE_DATA (path of a JSON object: profileId → the `workerSession` value).
// Listens on 127.0.0.1, a free port; prints one JSON line {url}.
import { readFileSync } from "node:fs";
import { createServer } from "node:http";

const sessions = new Map(Object.entries(JSON.parse(readFileSync(process.env.BASELINE_DATA, "utf8"))));

const server = createServer((req, res) => {
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    let status = 200;
    let payload;
    try {
      const request = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const id = String(request?.variables?.profileId ?? "").toLowerCase();
      payload = { data: { workerSession: sessions.get(id) ?? null } };
    } catch {
      status = 400;
      payload = { errors: [{ message: "malformed request body", extensions: { code: "BAD_REQUEST" } }] };
    }
    const body = JSON.stringify(payload);
    res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(body) });
    res.end(body);
  });
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}/graphql` })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
