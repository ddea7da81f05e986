import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { request } from "undici";
import type { BackgroundClock } from "../../src/base/clock.js";
import { createApp, type App, type AppOverrides } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { startDeelSandbox, type DeelSandbox, type SandboxOptions } from "../../src/deel/sandbox/server.js";
import { createLogger } from "../../src/http/logger.js";
import { LogCapture } from "./logs.js";
import { TEST_AUDIENCE, TEST_ISSUER, TEST_JWT_SECRET } from "./callers.js";

export interface TestGateway {
  url: string;
  origin: string;
  app: App;
  sandbox: DeelSandbox;
  logs: LogCapture;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  env?: Record<string, string>;
  sandbox?: SandboxOptions;
  overrides?: AppOverrides;
  logLevel?: string;
  /**
   * The clock of the logger's budget of warn and error lines. The budget itself is off unless
   * `env` sets LOG_ERROR_LINES_PER_SECOND, so that other tests read every line they cause.
   */
  logClock?: BackgroundClock;
}

/**
 * A gateway on a real port in front of a real Deel sandbox on another port, configured as an
 * operator would (DEEL_API_URL/TOKEN, AUTH_JWT_SECRET, issuer and audience), with its logs captured.
 */
export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const sandbox = await startDeelSandbox({ rateLimitRps: 0, ...options.sandbox });
  const config = loadConfig({
    HOST: "127.0.0.1",
    PORT: "0",
    DEEL_API_URL: sandbox.url,
    DEEL_API_TOKEN: sandbox.orgToken,
    DEEL_RATE_LIMIT_RPS: "0",
    AUTH_JWT_SECRET: TEST_JWT_SECRET,
    AUTH_ISSUER: TEST_ISSUER,
    AUTH_AUDIENCE: TEST_AUDIENCE,
    SESSION_STORE_URL: "memory:",
    SHUTDOWN_GRACE_MS: "2000",
    CALLER_MUTATIONS_PER_MINUTE: "100000",
    LOG_ERROR_LINES_PER_SECOND: "0",
    ...options.env,
  });
  const logs = new LogCapture();
  const logger = createLogger(options.logLevel ?? "trace", logs, {
    budget: config.log,
    ...(options.logClock === undefined ? {} : { clock: options.logClock }),
  });
  const app = await createApp(config, { logger, ...options.overrides });
  const url = await app.listen();
  return {
    url,
    origin: new URL(url).origin,
    app,
    sandbox,
    logs,
    async close() {
      await app.close();
      await sandbox.close();
    },
  };
}

export interface GraphQLResponse<TData> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  data?: TData | null;
  errors?: Array<{ message: string; path?: Array<string | number>; extensions?: Record<string, unknown> }>;
  raw: string;
}

/** Posts one GraphQL operation over HTTP, as a client app would. */
export async function gql<TData, TVariables>(
  url: string,
  document: TypedDocumentNode<TData, TVariables> | string,
  variables?: TVariables,
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse<TData>> {
  const headers: Record<string, string> = { "content-type": "application/json", ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  const query = typeof document === "string" ? document : print(document);
  const response = await request(url, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  const raw = await response.body.text();
  let parsed: { data?: TData | null; errors?: GraphQLResponse<TData>["errors"] } = {};
  try {
    parsed = JSON.parse(raw) as typeof parsed;
  } catch {
    parsed = {};
  }
  const result: GraphQLResponse<TData> = { status: response.statusCode, headers: response.headers, raw };
  if ("data" in parsed) result.data = parsed.data;
  if (parsed.errors !== undefined) result.errors = parsed.errors;
  return result;
}

/** The `extensions.code` of each error, in order. */
export function codes(response: GraphQLResponse<unknown>): unknown[] {
  return (response.errors ?? []).map((error) => error.extensions?.code);
}
