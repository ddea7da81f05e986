import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, expect, it } from "vitest";

/** Every .ts file under src/, as a path relative to the repository. */
function sourceFiles(dir = "src"): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith(".ts") ? [join(dir, entry.name)] : [],
  );
}

/** The src files a file imports (relative specifiers only; `./x.js` names `./x.ts`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const found: string[] = [];
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"(\.{1,2}\/[^"]+)\.js"/g)) {
    found.push(normalize(join(dirname(file), `${match[1]}.ts`)));
  }
  for (const match of text.matchAll(/(?:^|\n)\s*import\s+"(\.{1,2}\/[^"]+)\.js"/g)) found.push(normalize(join(dirname(file), `${match[1]}.ts`)));
  return found;
}

/** The first import cycle found, as a list of files, or null. */
function findCycle(graph: Map<string, string[]>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const path: string[] = [];
  const visit = (file: string): string[] | null => {
    if (state.get(file) === "done") return null;
    if (state.get(file) === "open") return [...path.slice(path.indexOf(file)), file];
    state.set(file, "open");
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      const cycle = visit(next);
      if (cycle !== null) return cycle;
    }
    path.pop();
    state.set(file, "done");
    return null;
  };
  for (const file of graph.keys()) {
    const cycle = visit(file);
    if (cycle !== null) return cycle;
  }
  return null;
}

describe("the source's import graph", () => {
  const files = sourceFiles();
  const graph = new Map(files.map((file) => [file, importsOf(file)]));

  it("resolves every relative import to a file under src/", () => {
    const known = new Set(files);
    const dangling = [...graph].flatMap(([file, targets]) => targets.filter((target) => !known.has(target)).map((target) => `${file} → ${target}`));
    expect(dangling).toEqual([]);
  });

  it("has no cycle of files", () => {
    const cycle = findCycle(graph);
    expect(cycle?.map((file) => relative("src", file)) ?? null).toBeNull();
  });

  it("finds a cycle when there is one (the check itself works)", () => {
    expect(findCycle(new Map([["a", ["b"]], ["b", ["c"]], ["c", ["a"]]]))).toEqual(["a", "b", "c", "a"]);
  });
});
