import { join, resolve } from "node:path";
import { generate, type CodegenConfig } from "@graphql-codegen/cli";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import clientPreset from "../../examples/codegen/client-preset.js";

/**
 * The client-preset config a client team copies (examples/codegen/client-preset.ts, shown in the
 * README), run over the committed SDL and this repository's operations. The generated files stay in
 * memory: they are type-checked from a folder that is never written, inside the repository, so
 * imports resolve against its node_modules and package.json ("type": "module") as in an ESM app.
 */

const OUT = "client-codegen-check/";
const OUT_DIR = resolve(OUT);

type Output = Exclude<CodegenConfig["generates"][string], readonly unknown[]>;

/** The example's one output: the preset and its config. */
const OUTPUT = Object.values(clientPreset.generates)[0] as Output;

/** The example's config, with this repository's operations and the in-memory output folder. */
function withTestPaths(config: CodegenConfig, output: Output = OUTPUT): CodegenConfig {
  return { ...config, documents: ["test/operations/*.graphql"], generates: { [OUT]: output }, silent: true };
}

async function generated(config: CodegenConfig): Promise<Map<string, string>> {
  const files: Array<{ filename: string; content: string }> = await generate(config, false);
  return new Map(files.map((file) => [resolve(file.filename), file.content]));
}

/** App code that reads the generated operation types as an app would. */
const APP = `
import type { RevokeWorkerSessionMutation, SessionFieldsFragment, WorkerSessionStatus } from "./graphql.js";
import { RevokeWorkerSessionDocument } from "./graphql.js";
import { graphql } from "./index.js";

export function describeSession(session: SessionFieldsFragment): string {
  const expiresAt: string = session.expiresAt;
  const revokedAt: string | null = session.revokedAt;
  const status: WorkerSessionStatus = session.status;
  return \`\${session.id} \${status} until \${new Date(expiresAt).toISOString()} \${revokedAt ?? "not revoked"}\`;
}
export const revokedAt = (result: RevokeWorkerSessionMutation): number => Date.parse(result.revokeWorkerSession.revokedAt);
export const documents = [RevokeWorkerSessionDocument, graphql];
`;

const COMPILER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ["lib.es2023.d.ts"],
  types: [],
  noUncheckedIndexedAccess: true,
  isolatedModules: true,
  verbatimModuleSyntax: true,
  skipLibCheck: true,
};

/** Library files parsed once for every program below. */
const libraryFiles = new Map<string, ts.SourceFile | undefined>();

/** The compiler's diagnostics for the generated files plus APP, as "TS<code> <file>: <message>". */
function typeCheck(files: Map<string, string>): string[] {
  const inMemory = new Map([...files, [join(OUT_DIR, "app.ts"), APP]]);
  const base = ts.createCompilerHost(COMPILER_OPTIONS);
  const host: ts.CompilerHost = {
    ...base,
    directoryExists: (name) => name === OUT_DIR || ts.sys.directoryExists(name),
    fileExists: (name) => inMemory.has(name) || base.fileExists(name),
    readFile: (name) => inMemory.get(name) ?? base.readFile(name),
    getSourceFile: (name, language, ...rest) => {
      const text = inMemory.get(name);
      if (text !== undefined) return ts.createSourceFile(name, text, language);
      if (!libraryFiles.has(name)) libraryFiles.set(name, base.getSourceFile(name, language, ...rest));
      return libraryFiles.get(name);
    },
  };
  const program = ts.createProgram([...inMemory.keys()], COMPILER_OPTIONS, host);
  return ts.getPreEmitDiagnostics(program).map(
    (d) => `TS${d.code} ${d.file ? d.file.fileName.slice(OUT_DIR.length + 1) : ""}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`,
  );
}

describe("the client-preset config for client teams", () => {
  it("types DateTimeISO fields as strings", async () => {
    const files = await generated(withTestPaths(clientPreset));
    expect([...files.keys()].map((name) => name.slice(OUT_DIR.length + 1)).sort()).toEqual(["fragment-masking.ts", "gql.ts", "graphql.ts", "index.ts"]);
    const types = files.get(join(OUT_DIR, "graphql.ts"))!;
    expect(types).toMatch(/export type SessionFieldsFragment = \{ id: string, profileId: string, status: WorkerSessionStatus, createdAt: string, expiresAt: string, revokedAt: string \| null,/);
    expect(types).toMatch(/export type RevokeWorkerSessionMutation = \{ revokeWorkerSession: \{ profileId: string, revokedAt: string,/);
    expect(types).not.toMatch(/(createdAt|expiresAt|revokedAt): unknown/);
  });

  it("generates files that type-check, with app code using them, under strict NodeNext", async () => {
    expect(typeCheck(await generated(withTestPaths(clientPreset)))).toEqual([]);
  });

  it("makes an unmapped scalar an error: without the DateTimeISO mapping, generation fails", async () => {
    const { scalars: _scalars, ...withoutScalars } = OUTPUT.config as Record<string, unknown>;
    await expect(generated(withTestPaths(clientPreset, { ...OUTPUT, config: withoutScalars }))).rejects.toThrow(/Unknown scalar type DateTimeISO/);
  });

  it("needs emitLegacyCommonJSImports: false for NodeNext: without it, the generated imports lack .js", async () => {
    const { emitLegacyCommonJSImports: _emit, ...legacyImports } = clientPreset;
    expect(typeCheck(await generated(withTestPaths(legacyImports)))).toContainEqual(expect.stringMatching(/^TS2835 gql\.ts: /));
  });

  it("with the preset's defaults instead, DateTimeISO is unknown and the same app code does not type-check", async () => {
    const defaults = withTestPaths(clientPreset, { preset: OUTPUT.preset });
    expect(typeCheck(await generated(defaults))).toContainEqual(expect.stringMatching(/^TS2322 app\.ts: Type 'unknown' is not assignable to type 'string'/));
  });
});
