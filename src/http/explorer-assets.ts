import { readFileSync, existsSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { join } from "node:path";

/** Where the local explorer's files are served (outside production only). */
export const EXPLORER_PREFIX = "/explorer/";

interface Asset {
  /** The npm package the file comes from (a dependency, exact-pinned in package.json). */
  readonly pkg: string;
  /** The file inside that package. */
  readonly file: string;
  readonly type: string;
}

/**
 * The local explorer's files, and the only files served under `/explorer/`: a fixed allow-list
 * keyed by name, so no part of a request path ever reaches the file system. GraphiQL 3's UMD build
 * with its React 18 peer, from the gateway's own dependencies: the fallback page needs no network.
 */
export const EXPLORER_ASSETS: Readonly<Record<string, Asset>> = Object.freeze({
  "react.production.min.js": { pkg: "react", file: "umd/react.production.min.js", type: "text/javascript; charset=utf-8" },
  "react-dom.production.min.js": { pkg: "react-dom", file: "umd/react-dom.production.min.js", type: "text/javascript; charset=utf-8" },
  "graphiql.min.js": { pkg: "graphiql", file: "graphiql.min.js", type: "text/javascript; charset=utf-8" },
  "graphiql.min.css": { pkg: "graphiql", file: "graphiql.min.css", type: "text/css; charset=utf-8" },
});

const require = createRequire(import.meta.url);

/**
 * The package's folder, found the way Node looks a package up (every `node_modules` from here to
 * the root), without going through its `exports` map, which does not list the UMD files.
 */
function packageDir(pkg: string): string | undefined {
  for (const dir of require.resolve.paths(pkg) ?? []) {
    if (existsSync(join(dir, pkg, "package.json"))) return join(dir, pkg);
  }
  return undefined;
}

const loaded = new Map<string, Buffer>();

/** The asset's bytes, read once and kept (about 1.1 MB for all four); undefined when the package is missing. */
function assetBytes(name: string, asset: Asset): Buffer | undefined {
  const cached = loaded.get(name);
  if (cached !== undefined) return cached;
  const dir = packageDir(asset.pkg);
  if (dir === undefined) return undefined;
  const bytes = readFileSync(join(dir, asset.file));
  loaded.set(name, bytes);
  return bytes;
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.statusCode = status;
  res.setHeader("content-type", "text/plain; charset=utf-8");
  res.end(text);
}

/** Answers `GET`/`HEAD` `/explorer/<name>` for a name on the allow-list; 404 for any other name. */
export function serveExplorerAsset(req: IncomingMessage, res: ServerResponse, name: string): void {
  const asset = Object.hasOwn(EXPLORER_ASSETS, name) ? EXPLORER_ASSETS[name] : undefined;
  if (asset === undefined) return plain(res, 404, "Not found\n");
  if (req.method !== "GET" && req.method !== "HEAD") {
    res.setHeader("allow", "GET, HEAD");
    return plain(res, 405, "Method not allowed\n");
  }
  const bytes = assetBytes(name, asset);
  if (bytes === undefined) return plain(res, 404, `The local explorer needs the ${asset.pkg} package; run npm ci\n`);
  res.statusCode = 200;
  res.setHeader("content-type", asset.type);
  res.setHeader("content-length", bytes.length);
  // The files change only with a dependency upgrade, i.e. a restart; an hour of caching is plenty.
  res.setHeader("cache-control", "public, max-age=3600");
  res.setHeader("x-content-type-options", "nosniff");
  res.end(req.method === "HEAD" ? undefined : bytes);
}

/** A dependency's installed version (for Sandbox's `runtime` tag); undefined when it cannot be read. */
export function packageVersion(pkg: string): string | undefined {
  const dir = packageDir(pkg);
  if (dir === undefined) return undefined;
  try {
    const { version } = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { version?: unknown };
    return typeof version === "string" ? version : undefined;
  } catch {
    return undefined;
  }
}
