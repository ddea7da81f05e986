import { existsSync, mkdtempSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestGateway } from "../support/gateway.js";
import { startLocalGateway, type LocalGateway } from "../support/local-gateway.js";

/**
 * Headless Chromium (Debian's `chromium`, driven by playwright-core) against a local-mode gateway:
 * a dev server's page on another loopback port calls the gateway (CORS), and `/graphql` with no
 * network beyond loopback falls back to the local explorer and runs the example operation.
 * CI (.ci/run) installs Chromium and sets CHROMIUM_PATH; there a missing browser fails the suite.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const haveChromium = existsSync(CHROMIUM);
const mustRun = process.env.CI === "true";

/** Every host the browser may reach: loopback. Anything else is aborted as if offline. */
const LOOPBACK = new Set(["localhost", "127.0.0.1", "127.0.0.2", "[::1]"]);
const isLoopbackUrl = (url: string) => {
  const { protocol, hostname } = new URL(url);
  return protocol === "data:" || protocol === "blob:" || LOOPBACK.has(hostname);
};

/** A dev server's page: a create and a workerSession read with fetch, the answers written into the DOM. */
function devPage(gatewayUrl: string, token: string, profileId: string): string {
  const config = JSON.stringify({ gatewayUrl, token, profileId }).replace(/</g, "\\u003c");
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>dev app</title></head><body>
<pre id="result">pending</pre>
<script>
  const { gatewayUrl, token, profileId } = ${config};
  const call = (query, variables) =>
    fetch(gatewayUrl, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: "Bearer " + token },
      body: JSON.stringify({ query, variables }),
    }).then((response) => response.json());
  (async () => {
    const created = await call("mutation($p: ID!) { createWorkerSession(input: { profileId: $p }) { session { id status createdBy } } }", { p: profileId });
    const read = await call("query($p: ID!) { workerSession(profileId: $p) { id status createdBy } }", { p: profileId });
    document.getElementById("result").textContent = JSON.stringify({ created, read });
  })().catch((error) => { document.getElementById("result").textContent = "ERROR " + error; });
</script></body></html>`;
}

async function serveOn(host: string, html: string): Promise<{ server: Server; port: number }> {
  const server = createServer((_req, res) => {
    res.setHeader("content-type", "text/html; charset=utf-8");
    res.end(html);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, resolve);
  });
  return { server, port: (server.address() as AddressInfo).port };
}

// A loaded 2-core machine can be slow to start Chromium and render GraphiQL: generous budgets, no speed asserted.
describe.runIf(haveChromium || mustRun)("in headless Chromium, against a local-mode gateway", { timeout: 60_000 }, () => {
  let gateway: LocalGateway;
  let browser: Browser;
  const servers: Server[] = [];
  const dir = mkdtempSync(join(tmpdir(), "wsg-browser-"));

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`Chromium is missing at ${CHROMIUM}: .ci/run installs Debian's chromium and sets CHROMIUM_PATH`);
    gateway = await startLocalGateway();
    const root = typeof process.getuid === "function" && process.getuid() === 0;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // No name resolves but loopback's: the browser is offline for everything else.
      args: ["--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1 , EXCLUDE 127.0.0.2", "--disable-dev-shm-usage", ...(root ? ["--no-sandbox"] : [])],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    for (const server of servers) server.close();
    await gateway?.close();
  });

  it("a page served from another loopback port creates and reads a session with fetch (CORS admits it)", async () => {
    const profile = gateway.local.sandbox.profiles[1] as string;
    const { server, port } = await serveOn("127.0.0.1", devPage(gateway.url, gateway.local.adminToken, profile));
    servers.push(server);
    const page = await browser.newPage();
    // The dev server is on localhost:<port>, the gateway on 127.0.0.1:<another port>: cross-origin,
    // and the Authorization header makes every call preflighted.
    await page.goto(`http://localhost:${port}/`);
    await page.waitForFunction(() => document.getElementById("result")?.textContent !== "pending", undefined, { timeout: 15_000 });
    const text = (await page.textContent("#result")) as string;
    expect(text).not.toMatch(/^ERROR/);
    const { created, read } = JSON.parse(text) as { created: unknown; read: unknown };
    expect(created).toEqual({ data: { createWorkerSession: { session: { id: profile, status: "ACTIVE", createdBy: "local-admin" } } } });
    expect(read).toEqual({ data: { workerSession: { id: profile, status: "ACTIVE", createdBy: "local-admin" } } });
    await page.close();
  });

  it("the same page from a non-loopback origin is refused by CORS and creates nothing", async () => {
    const profile = gateway.local.sandbox.profiles[2] as string;
    // 127.0.0.2 answers on this machine but is not one of the loopback names local mode admits.
    const { server, port } = await serveOn("127.0.0.2", devPage(gateway.url, gateway.local.adminToken, profile));
    servers.push(server);
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.2:${port}/`);
    await page.waitForFunction(() => document.getElementById("result")?.textContent !== "pending", undefined, { timeout: 15_000 });
    expect(await page.textContent("#result")).toMatch(/^ERROR TypeError: Failed to fetch/);
    // The preflight was refused, so the create never ran.
    expect(await gateway.app.store.get(profile)).toBeNull();
    await page.close();
  });

  it("offline, /graphql falls back to the local explorer, prefilled, and its run button mints an ACTIVE session", async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    const leftMachine: string[] = [];
    // Belt and braces beside the resolver rules: abort every request that is not to loopback.
    await page.route("**/*", async (route) => {
      const url = route.request().url();
      if (isLoopbackUrl(url)) return route.continue();
      leftMachine.push(url);
      await route.abort("internetdisconnected");
    });
    const cspViolations: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error" && /Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });

    await page.goto(gateway.url);
    await page.waitForSelector(".graphiql-container", { timeout: 20_000 });
    // The note says why, and that operations stay on this machine.
    expect(await page.textContent("#localExplorerNote")).toMatch(/Apollo Sandbox could not be loaded.*served by the gateway/);
    // Prefilled as Sandbox is: the example document, the first worker, the admin header (loopback).
    await page.waitForFunction(() => document.querySelector(".graphiql-query-editor")?.textContent?.includes("CreateSession"), undefined, { timeout: 10_000 });
    const first = gateway.local.sandbox.profiles[0] as string;
    const screenshot = join(dir, "local-explorer.png");
    await page.screenshot({ path: screenshot });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);
    const headersTab = page.getByRole("button", { name: /^headers$/i });
    await headersTab.click();
    await expect.poll(() => page.locator(".graphiql-editor-tool").innerText(), { timeout: 5_000 }).toContain(`Bearer ${gateway.local.adminToken.slice(0, 20)}`);
    const variablesTab = page.getByRole("button", { name: /^variables$/i });
    await variablesTab.click();
    await expect.poll(() => page.locator(".graphiql-editor-tool").innerText(), { timeout: 5_000 }).toContain(first);

    await page.locator(".graphiql-execute-button").click();
    // With several operations in the document, GraphiQL asks which one to run.
    const choice = page.getByRole("menuitem", { name: "CreateSession" });
    if (await choice.isVisible({ timeout: 2_000 }).catch(() => false)) await choice.click();
    await expect.poll(() => page.locator(".result-window").innerText(), { timeout: 15_000 }).toMatch(/"status": "ACTIVE"/);
    await page.screenshot({ path: join(dir, "local-explorer-ran.png") });
    process.stdout.write(`local explorer screenshots: ${screenshot}, ${join(dir, "local-explorer-ran.png")}\n`);

    // The session is in the ledger, minted by the prefilled admin caller.
    expect(await gateway.app.store.get(first)).toMatchObject({ createdBy: "local-admin" });
    // The page did try Apollo's CDN, and nothing but loopback was reached.
    expect(leftMachine.some((url) => url.startsWith("https://embeddable-sandbox.cdn.apollographql.com/"))).toBe(true);
    expect(cspViolations).toEqual([]);
    await context.close();
  });

  it("with Apollo's CDN reachable, Apollo Sandbox stays the default, with the same prefill and telemetry off", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // Apollo's script, as its CDN would answer it, stands in by a stub that records its config.
    await page.route("**/*", async (route) => {
      const url = route.request().url();
      if (url.startsWith("https://embeddable-sandbox.cdn.apollographql.com/v2/embeddable-sandbox.umd.production.min.js")) {
        return route.fulfill({ contentType: "text/javascript", body: "window.EmbeddedSandbox = function (config) { window.sandboxConfig = config; };" });
      }
      if (isLoopbackUrl(url)) return route.continue();
      await route.abort("internetdisconnected");
    });
    await page.goto(gateway.url);
    await page.waitForFunction(() => "sandboxConfig" in window, undefined, { timeout: 10_000 });
    const config = (await page.evaluate(() => (window as unknown as { sandboxConfig: unknown }).sandboxConfig)) as Record<string, unknown>;
    expect(config).toMatchObject({
      target: "#embeddableSandbox",
      initialEndpoint: gateway.url,
      runTelemetry: false,
      endpointIsEditable: false,
      initialState: {
        variables: { profileId: gateway.local.sandbox.profiles[0] },
        headers: { Authorization: `Bearer ${gateway.local.adminToken}` },
        includeCookies: false,
      },
    });
    expect((config.initialState as { document: string }).document).toContain("mutation CreateSession");
    // The local explorer stays closed and none of its files are fetched.
    expect(await page.locator("#localExplorer.open").count()).toBe(0);
    expect(await page.locator("script[src^='/explorer/']").count()).toBe(0);
    await context.close();
  });

  it("when Apollo's CDN never answers, the local explorer opens after the timeout", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.route("**/*", async (route) => {
      const url = route.request().url();
      if (isLoopbackUrl(url)) return route.continue();
      // A CDN that accepts the request and never answers: neither load nor error fires.
    });
    await page.goto(gateway.url, { waitUntil: "domcontentloaded" });
    await page.waitForSelector(".graphiql-container", { timeout: 25_000 });
    expect(await page.textContent("#localExplorerNote")).toMatch(/Apollo Sandbox did not load within 8 s/);
    await context.close();
  });

  it("in production neither the page nor the explorer's files are served", async () => {
    const prod = await startTestGateway({ env: { NODE_ENV: "production" } });
    try {
      const base = prod.url.replace(/\/graphql$/, "");
      const file = await fetch(`${base}/explorer/graphiql.min.js`);
      expect(file.status).toBe(404);
      await file.arrayBuffer();
      const page = await fetch(prod.url, { headers: { accept: "text/html" } });
      expect(await page.text()).not.toMatch(/graphiql|embeddable-sandbox/i);
    } finally {
      await prod.close();
    }
  });

  it("serves only the allow-listed explorer files, and no path outside them", async () => {
    const base = gateway.url.replace(/\/graphql$/, "");
    for (const name of ["graphiql.min.js", "graphiql.min.css", "react.production.min.js", "react-dom.production.min.js"]) {
      const response = await fetch(`${base}/explorer/${name}`);
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(name.endsWith(".css") ? /^text\/css/ : /^text\/javascript/);
      await response.arrayBuffer();
    }
    for (const name of ["../package.json", "..%2fpackage.json", "graphiql.js", "package.json", "%2e%2e/%2e%2e/package.json", "toString", "__proto__"]) {
      const response = await fetch(`${base}/explorer/${name}`);
      expect(response.status, name).toBe(404);
      await response.arrayBuffer();
    }
  });
});

describe("CORS preflights from loopback dev servers, in local mode (no browser needed)", () => {
  let gateway: LocalGateway;
  beforeAll(async () => {
    gateway = await startLocalGateway();
  });
  afterAll(() => gateway.close());

  const preflight = (origin: string) =>
    fetch(gateway.url, {
      method: "OPTIONS",
      headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });

  it("answers each loopback origin, any port, with its own Access-Control-Allow-Origin", async () => {
    for (const origin of ["http://localhost:3000", "http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:5173"]) {
      const answer = await preflight(origin);
      expect(answer.status, origin).toBe(204);
      expect(answer.headers.get("access-control-allow-origin"), origin).toBe(origin);
      expect(answer.headers.get("access-control-allow-headers"), origin).toMatch(/authorization/);
      expect(answer.headers.get("vary"), origin).toMatch(/origin/i);
    }
  });

  it("gives look-alikes and other origins no Access-Control-Allow-Origin", async () => {
    for (const origin of ["http://localhost.evil.example:3000", "http://127.0.0.2:3000", "null", "https://app.example.com"]) {
      const answer = await preflight(origin);
      expect(answer.headers.get("access-control-allow-origin"), origin).toBeNull();
    }
  });
});
