import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGatewayProcess, type GatewayProcess } from "../support/process.js";

/**
 * The README's examples, run as a reader runs them: the built program started as `npm start` does
 * (local mode, no environment but a free port), `$TOKEN` and `$PROFILE` from the `export` line its
 * banner prints, and every command of every ```sh block that holds a `curl`, verbatim, through
 * bash. Each answer must have the shape of the answer the README shows under it (`# {...}`): the
 * same keys, the same types, the same enum values (ACTIVE, RUNNING, error codes…), the same prefix
 * before an ellipsis, timestamps where it shows timestamps, counts that are 0 where it shows 0 and
 * above 0 where it shows more. A variable a block sets (`JOB=$(…)`)
 * is passed on to the blocks after it. The README's `http://127.0.0.1:4000` is reached through a
 * `.curlrc` (`connect-to`) that points it at the test's gateway, so not a character is changed.
 */

const execFileAsync = promisify(execFile);
const README = resolve(import.meta.dirname, "../../README.md");

export interface Example {
  /** Line of the command's first line in README.md (1-based). */
  readonly line: number;
  /** The comment lines just above it, joined. */
  readonly description: string;
  readonly command: string;
  /** The answer the README shows for it (`# {...}` right below), parsed. */
  shown?: unknown;
  shownLine?: number;
}

/** Every command in the ```sh blocks that contain `curl`, with the answer shown below each. */
export function readmeExamples(markdown: string): Example[] {
  const lines = markdown.split("\n");
  const examples: Example[] = [];
  let inBlock = false;
  let block: Array<{ text: string; line: number }> = [];
  for (const [index, text] of lines.entries()) {
    if (!inBlock && /^```sh\s*$/.test(text)) {
      inBlock = true;
      block = [];
    } else if (inBlock && /^```\s*$/.test(text)) {
      inBlock = false;
      if (block.some((l) => /\bcurl\s/.test(l.text))) examples.push(...commandsOf(block));
    } else if (inBlock) {
      block.push({ text, line: index + 1 });
    }
  }
  return examples;
}

function commandsOf(block: Array<{ text: string; line: number }>): Example[] {
  const out: Example[] = [];
  let description: string[] = [];
  let command: Array<{ text: string; line: number }> = [];
  const finish = () => {
    if (command.length === 0) return;
    out.push({ line: (command[0] as { line: number }).line, description: description.join(" "), command: command.map((l) => l.text).join("\n") });
    command = [];
    description = [];
  };
  for (const { text, line } of block) {
    const comment = /^#\s?(.*)$/.exec(text);
    if (text.trim() === "") {
      finish();
    } else if (comment !== null) {
      finish();
      const body = (comment[1] as string).trim();
      const last = out.at(-1);
      if (body.startsWith("{") && last !== undefined && last.shown === undefined) {
        try {
          last.shown = JSON.parse(body);
        } catch (error) {
          throw new Error(`README.md:${line}: the answer shown is not JSON: ${body}`, { cause: error });
        }
        last.shownLine = line;
      } else {
        description.push(body);
      }
    } else {
      command.push({ text, line });
    }
  }
  finish();
  return out;
}

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
const ENUM = /^[A-Z][A-Z0-9_]*$/;

/** Where `actual` departs from the shape of `shown`; empty when it has that shape. */
export function shapeMismatches(shown: unknown, actual: unknown, path = "$"): string[] {
  if (shown === null) return actual === null ? [] : [`${path}: README shows null, got ${JSON.stringify(actual)}`];
  if (Array.isArray(shown)) {
    if (!Array.isArray(actual)) return [`${path}: README shows a list, got ${JSON.stringify(actual)}`];
    if (shown.length === 0) return [];
    return actual.flatMap((item, i) => shapeMismatches(shown[0], item, `${path}[${i}]`));
  }
  if (typeof shown === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return [`${path}: README shows an object, got ${JSON.stringify(actual)}`];
    const want = Object.keys(shown).sort();
    const got = Object.keys(actual).sort();
    if (want.join() !== got.join()) return [`${path}: README shows keys ${want.join(", ")}, got ${got.join(", ")} (${JSON.stringify(actual)})`];
    return want.flatMap((key) => shapeMismatches((shown as Record<string, unknown>)[key], (actual as Record<string, unknown>)[key], `${path}.${key}`));
  }
  if (typeof shown !== typeof actual) return [`${path}: README shows a ${typeof shown}, got ${JSON.stringify(actual)}`];
  // A count shown as 0 must be 0, and one shown above 0 must be above 0 (a job with no target is stale).
  if (typeof shown === "number" && (shown === 0) !== (actual === 0)) return [`${path}: README shows ${shown}, got ${String(actual)}`];
  if (typeof shown === "string") {
    const got = actual as string;
    if (ENUM.test(shown) && got !== shown) return [`${path}: README shows ${shown}, got ${got}`];
    if (ISO.test(shown) && !ISO.test(got)) return [`${path}: README shows a timestamp, got ${got}`];
    const ellipsis = shown.indexOf("…");
    if (ellipsis >= 0 && !got.startsWith(shown.slice(0, ellipsis))) return [`${path}: README shows ${shown}, got ${got}`];
  }
  return [];
}

/** The README's banner lines, and the real one's, with what differs per run (URLs, ids, tokens) made equal. */
function bannerLines(text: string): string[] {
  return text
    .split("\n")
    .map((line) =>
      line
        .replace(/http:\/\/127\.0\.0\.1:\d+/g, "http://HOST")
        .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, "ID")
        .replace(/eyJ[A-Za-z0-9_.-]+/g, "TOKEN")
        .trimEnd(),
    )
    .filter((line) => line.trim() !== "");
}

describe("README examples, verbatim, against local mode (npm start)", () => {
  const markdown = readFileSync(README, "utf8");
  const examples = readmeExamples(markdown);
  let gateway: GatewayProcess;
  let env: Record<string, string>;
  const cwd = mkdtempSync(join(tmpdir(), "wsg-readme-"));

  beforeAll(async () => {
    gateway = await startGatewayProcess({ PORT: "0" }, { cwd });
    await gateway.waitFor(/export TOKEN=/);
    const exported = /export TOKEN='([^']+)' PROFILE='([^']+)'/.exec(gateway.output());
    if (exported === null) throw new Error(`the banner printed no export line:\n${gateway.output()}`);
    const port = new URL(gateway.url).port;
    // curl reads $CURL_HOME/.curlrc: the README's address reaches this test's gateway.
    writeFileSync(join(cwd, ".curlrc"), `connect-to = "127.0.0.1:4000:127.0.0.1:${port}"\n`);
    env = { PATH: process.env.PATH ?? "", HOME: cwd, CURL_HOME: cwd, TOKEN: exported[1] as string, PROFILE: exported[2] as string };
  });

  afterAll(async () => {
    await gateway?.stop("SIGKILL");
    rmSync(cwd, { recursive: true, force: true });
  });

  it("finds the examples: every curl command shows the answer it gets", () => {
    expect(examples.length).toBeGreaterThanOrEqual(6);
    for (const example of examples) {
      expect(example.shown, `README.md:${example.line} shows no answer (# {...}) below its command`).toBeDefined();
      expect(example.command, `README.md:${example.line}`).toContain("http://127.0.0.1:4000/graphql");
    }
  });

  it("the banner the README shows is the one local mode prints (up to URLs, ids and tokens)", () => {
    const start = markdown.indexOf("Worker Session Gateway — local mode");
    const shown = markdown.slice(start, markdown.indexOf("```", start));
    const printed = new Set(bannerLines(gateway.output()));
    for (const line of bannerLines(shown)) {
      if (line.includes("...") || line.includes("…")) continue;
      expect(printed.has(line), `README banner line not printed by local mode: ${line}`).toBe(true);
    }
  });

  it("runs every example in order and each answer has the shape the README shows", async () => {
    const assigned: Record<string, string> = {};
    // Every stale example is reported, not only the first.
    const failures: string[] = [];
    for (const example of examples) {
      const names = [...example.command.matchAll(/^([A-Z_][A-Z0-9_]*)=\$\(/gm)].map((m) => m[1] as string);
      const script = ["set -euo pipefail", example.command, ...names.map((name) => `printf '\\n__README_VAR__ %s=%s\\n' ${name} "$${name}"`)].join("\n");
      const where = `README.md:${example.line} (${example.description || example.command.split("\n")[0]})`;
      // "Poll until …" is run again, as a reader would, until the answer is the one shown (or 20 s pass).
      const polls = /^poll\b/i.test(example.description);
      const until = Date.now() + 20_000;
      let mismatches: string[];
      for (;;) {
        const ran = await execFileAsync("bash", ["-c", script], { env: { ...env, ...assigned }, timeout: 15_000 }).catch((error: { stdout?: string; stderr?: string; message: string }) => error);
        const stdout = ran.stdout ?? "";
        const stderr = ran.stderr ?? "";
        for (const [, name, value] of stdout.matchAll(/^__README_VAR__ ([A-Z_][A-Z0-9_]*)=(.*)$/gm)) assigned[name as string] = value as string;
        const printed = stdout.replace(/^__README_VAR__ .*$/gm, "").trim() || stderr.trim();
        let answer: unknown;
        try {
          answer = JSON.parse(printed);
          mismatches = shapeMismatches(example.shown, answer).map((m) => `${where}: ${m}`);
        } catch {
          mismatches = [`${where}: the answer is not JSON: ${printed} ${stderr}`];
        }
        if (mismatches.length === 0 || !polls || Date.now() > until) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      failures.push(...mismatches);
      for (const name of names) if (!/\S/.test(assigned[name] ?? "") || assigned[name] === "null") failures.push(`${where}: sets no ${name}`);
    }
    expect(failures).toEqual([]);
  }, 90_000);
});

describe("the README checker itself", () => {
  it("a stale shown answer, or a changed one, is a mismatch", () => {
    const shown = { data: { job: { id: "…", status: "RUNNING", total: 200, startedAt: "2026-12-01T10:00:00.000Z", link: "https://…" } } };
    expect(shapeMismatches(shown, { data: { job: { id: "x", status: "RUNNING", total: 1, startedAt: "2026-12-04T20:00:00.123Z", link: "https://d/x" } } })).toEqual([]);
    expect(shapeMismatches(shown, { data: { job: { id: "x", status: "DONE", total: 1, startedAt: "2026-12-04T20:00:00Z", link: "https://d" } } })).toHaveLength(1);
    expect(shapeMismatches(shown, { data: { job: { id: "x", status: "RUNNING", total: "1", startedAt: "2026-12-04T20:00:00Z", link: "https://d" } } })).toHaveLength(1);
    expect(shapeMismatches(shown, { data: { job: { id: "x", status: "RUNNING", total: 1, startedAt: "2026-12-04T20:00:00Z" } } })).toHaveLength(1);
    expect(shapeMismatches(shown, { data: { job: { id: "x", status: "RUNNING", total: 0, startedAt: "2026-12-04T20:00:00Z", link: "https://d" } } })).toHaveLength(1);
    expect(shapeMismatches(shown, { data: null, errors: [{ message: "no", extensions: { code: "BAD_USER_INPUT" } }] })).toHaveLength(1);
    expect(shapeMismatches(shown, { data: { job: { id: "x", status: "RUNNING", total: 1, startedAt: "2026-12-04T20:00:00Z", link: "http://d" } } })).toHaveLength(1);
    const refused = { errors: [{ message: "…", extensions: { code: "FORBIDDEN" } }] };
    expect(shapeMismatches(refused, { errors: [{ message: "no", extensions: { code: "FORBIDDEN" } }] })).toEqual([]);
    expect(shapeMismatches(refused, { errors: [{ message: "no", extensions: { code: "NOT_FOUND" } }] })).toHaveLength(1);
  });

  it("splits a block into commands, each with its description and the answer shown below it", () => {
    const md = ["```sh", "# Mint:", "curl -s a \\", "  -d '{\"x\":", "  1}'", '# {"data":{"a":1}}', "", "# Poll:", "curl -s b", "```", "```sh", "echo no", "```"].join("\n");
    const found = readmeExamples(md);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatchObject({ line: 3, description: "Mint:", shown: { data: { a: 1 } } });
    expect(found[0]?.command.split("\n")).toHaveLength(3);
    expect(found[1]).toMatchObject({ description: "Poll:", command: "curl -s b" });
    expect(found[1]?.shown).toBeUndefined();
  });
});
