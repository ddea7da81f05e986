import { readFileSync } from "node:fs";
import type { StoreConfig } from "./sessions/store-config.js";
import { SCHEMA_NAME } from "./postgres/connection.js";

/**
 * Readers for single settings: each reads one variable, checks it, and refuses with a ConfigError
 * that names the variable, what was expected and what was found (never a secret, never a URL's
 * credentials). `loadConfig` (config.ts) composes them.
 */

/** A setting that stops start-up. The message names the variable; it never echoes a secret value. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}


/** The process environment, or a test's. */
export type Env = Record<string, string | undefined>;

/** Reads a variable, treating an empty or blank value as unset. */
export function read(env: Env, name: string): string | undefined {
  const value = env[name];
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  return trimmed === "" ? undefined : trimmed;
}

export function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, but got "${raw}"`);
  }
  const value = Number(raw);
  if (value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, but got ${value}`);
  }
  return value;
}

/**
 * A value as it may be echoed in a refusal, its length bounded, with anything that may be a
 * `user:password` replaced, even when the value does not parse as a URL: everything between the
 * scheme and the last `@`; and, when there is no `@` (a malformed value, or one whose `@` is
 * percent-encoded, as in `http://user:hunter2%40host`), an authority that holds a `:` not followed
 * by a port number only, or a `%40`; and after a bare `name:` with no `//`, everything but the name.
 */
export function redactForMessage(value: string): string {
  const at = value.lastIndexOf("@");
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/*/.exec(value)?.[0] ?? "";
  if (at !== -1) return `${scheme}[redacted]${value.slice(at)}`.slice(0, 200);
  const rest = value.slice(scheme.length);
  if (scheme !== "" && !scheme.endsWith("/")) {
    // `user:hunter2`: the "scheme" may be a user name, and what follows its password.
    return rest === "" ? scheme.slice(0, 200) : `${scheme}[redacted]`.slice(0, 200);
  }
  const end = rest.search(/[/?#]/);
  const authority = end === -1 ? rest : rest.slice(0, end);
  if (/:(?!\d*$)/.test(authority) || /%40/i.test(authority)) return `${scheme}[redacted]${rest.slice(authority.length)}`.slice(0, 200);
  return value.slice(0, 200);
}

/** A comma-separated list of origins (`https://app.example.com`), each checked to be exactly an origin. */
export function originList(env: Env, name: string): string[] {
  const origins = (read(env, name) ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  for (const origin of origins) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.origin !== origin) {
      throw new ConfigError(`${name} must list origins such as https://app.example.com, but got "${redactForMessage(origin)}"`);
    }
  }
  return origins;
}

/** A `1`/`true` or `0`/`false` switch, off when unset. */
export function flag(env: Env, name: string): boolean {
  const raw = read(env, name);
  if (raw === undefined) return false;
  if (raw === "1" || raw.toLowerCase() === "true") return true;
  if (raw === "0" || raw.toLowerCase() === "false") return false;
  throw new ConfigError(`${name} must be 1 or 0 (true or false), but got "${raw.slice(0, 40)}"`);
}

export function httpUrl(env: Env, name: string, fallback?: string): string | undefined {
  const raw = read(env, name) ?? fallback;
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be an http(s) URL, but got "${redactForMessage(raw)}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError(`${name} must be an http(s) URL, but got protocol "${url.protocol}"`);
  }
  if (url.username || url.password) {
    throw new ConfigError(`${name} must not carry credentials in the URL`);
  }
  if (url.search !== "" || url.hash !== "") {
    throw new ConfigError(`${name} must be a base URL without a query or fragment, but got "${url.origin}${url.pathname}" followed by one`);
  }
  return raw;
}

/** Parses `SESSION_STORE_URL`: `memory:`, `sqlite:<path>`, `redis://…` / `rediss://…` or `postgres://…` / `postgresql://…`. */
export function parseStoreUrl(raw: string, name = "SESSION_STORE_URL"): StoreConfig {
  if (raw === "memory:") return { kind: "memory" };
  if (raw.startsWith("sqlite:")) {
    const path = raw.slice("sqlite:".length);
    if (path === "") throw new ConfigError(`${name} must name a file after "sqlite:", e.g. sqlite:./data/worker-sessions.db`);
    return { kind: "sqlite", path };
  }
  if (raw.startsWith("redis://") || raw.startsWith("rediss://")) {
    try {
      new URL(raw);
    } catch {
      throw new ConfigError(`${name} is not a valid redis URL`);
    }
    return { kind: "redis", url: raw };
  }
  if (raw.startsWith("postgres://") || raw.startsWith("postgresql://")) {
    try {
      new URL(raw);
    } catch {
      throw new ConfigError(`${name} is not a valid postgres URL, e.g. postgres://gateway@db.internal:5432/gateway?sslmode=verify-full`);
    }
    return { kind: "postgres", url: raw };
  }
  // The value may hold a password (redis://:secret@host), so it is not echoed.
  throw new ConfigError(`${name} must be "memory:", "sqlite:<path>", "redis://…" or "postgres://…", but got an unsupported value`);
}

/** `REDIS_KEY_PREFIX`: printable, no spaces, at most 64 characters. */
export function redisKeyPrefix(env: Env): string {
  const prefix = read(env, "REDIS_KEY_PREFIX") ?? "wsg:";
  if (!/^[A-Za-z0-9:._{}-]{1,64}$/.test(prefix)) {
    throw new ConfigError(`REDIS_KEY_PREFIX must be 1 to 64 characters from A-Z a-z 0-9 : . _ - { }, e.g. "wsg:", but got "${prefix.slice(0, 80)}"`);
  }
  return prefix;
}

/** `POSTGRES_SCHEMA`: a lower-case identifier (it goes into `search_path` unquoted). */
export function postgresSchema(env: Env): string {
  const schema = read(env, "POSTGRES_SCHEMA") ?? "public";
  if (!SCHEMA_NAME.test(schema)) {
    throw new ConfigError(`POSTGRES_SCHEMA must be 1 to 63 characters from a-z 0-9 _, not starting with a digit, e.g. "wsg", but got "${schema.slice(0, 80)}"`);
  }
  return schema;
}

export function readDeelToken(env: Env): string | undefined {
  const direct = read(env, "DEEL_API_TOKEN");
  const file = read(env, "DEEL_API_TOKEN_FILE");
  if (direct !== undefined && file !== undefined) {
    throw new ConfigError("Set DEEL_API_TOKEN or DEEL_API_TOKEN_FILE, not both");
  }
  if (file !== undefined) {
    let content: string;
    try {
      content = readFileSync(file, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? "unreadable";
      throw new ConfigError(`DEEL_API_TOKEN_FILE must name a readable file, but reading "${file}" failed (${code})`);
    }
    const token = content.trim();
    if (token === "") throw new ConfigError(`DEEL_API_TOKEN_FILE names "${file}", which is empty`);
    return checkToken("DEEL_API_TOKEN_FILE", token);
  }
  return direct === undefined ? undefined : checkToken("DEEL_API_TOKEN", direct);
}

/** A token goes into an HTTP header: it must be one printable line. Its value is never echoed. */
export function checkToken(name: string, token: string): string {
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new ConfigError(`${name} must be a single printable token without spaces or line breaks`);
  }
  if (token.length < 16) {
    throw new ConfigError(`${name} looks truncated: a Deel organization token is longer than ${token.length} characters`);
  }
  return token;
}

