/**
 * The contract of ordered keys (storage/storage.ts: `addItem`, `removeItem`, `pages`), the storage
 * primitive under the session history, for every backend: SQLite (unit tier), Redis and PostgreSQL
 * (integration tier). Each backend brings a fresh storage per test and, where it talks to a server,
 * a count of the round trips it made.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Storage } from "../../src/storage/storage.js";

export interface OrderedBackend {
  storage: Storage;
  /** Round trips (commands, pipelines or statements) sent so far, where the backend can count them. */
  roundTrips?: () => number;
  close(): Promise<void>;
}

const key = () => `ordered-test:${randomUUID()}`;
const values = (items: ReadonlyArray<{ value: string }>) => items.map((item) => item.value);

export function orderedKeysContract(name: string, open: () => Promise<OrderedBackend>): void {
  describe(`ordered keys on ${name}`, () => {
    async function withBackend(body: (backend: OrderedBackend) => Promise<void>): Promise<void> {
      const backend = await open();
      try {
        await body(backend);
      } finally {
        await backend.close();
      }
    }

    it("pages newest first, strictly below a cursor and above a floor, at most `limit`", () =>
      withBackend(async ({ storage }) => {
        const k = key();
        // Added out of order: the order is the positions' byte order, never the order of writes.
        for (const p of ["0003", "0001", "0005", "0002", "0004"]) {
          expect(await storage.commit([], [{ op: "addItem", key: k, position: p, value: `v${p}` }])).toBe(true);
        }
        const [all, top2, below4, between, none] = await storage.pages([
          { key: k, limit: 10 },
          { key: k, limit: 2 },
          { key: k, below: "0004", limit: 10 },
          { key: k, below: "0005", above: "0002", limit: 10 },
          { key: k, limit: 0 },
        ]);
        expect(all?.map((item) => item.position)).toEqual(["0005", "0004", "0003", "0002", "0001"]);
        expect(values(all ?? [])).toEqual(["v0005", "v0004", "v0003", "v0002", "v0001"]);
        expect(values(top2 ?? [])).toEqual(["v0005", "v0004"]);
        expect(values(below4 ?? [])).toEqual(["v0003", "v0002", "v0001"]);
        expect(values(between ?? [])).toEqual(["v0004", "v0003"]);
        expect(none).toEqual([]);
      }));

    it("compares positions byte by byte: a prefix sorts first, and upper case before lower case", () =>
      withBackend(async ({ storage }) => {
        const k = key();
        await storage.commit([], ["b", "a", "ab", "B", "a-"].map((p) => ({ op: "addItem" as const, key: k, position: p, value: p })));
        const [page] = await storage.pages([{ key: k, limit: 10 }]);
        expect(page?.map((item) => item.position)).toEqual(["b", "ab", "a-", "a", "B"]);
        const [below] = await storage.pages([{ key: k, below: "ab", limit: 10 }]);
        expect(below?.map((item) => item.position)).toEqual(["a-", "a", "B"]);
      }));

    it("keeps one item per position (adding again replaces it), and a value holding anything", () =>
      withBackend(async ({ storage }) => {
        const k = key();
        await storage.commit([], [{ op: "addItem", key: k, position: "0001", value: "first" }]);
        const odd = 'a "quoted" value\nwith a newline, a tab\t, unicode ✓ and a NUL-free end';
        await storage.commit([], [{ op: "addItem", key: k, position: "0001", value: odd }]);
        const [page] = await storage.pages([{ key: k, limit: 10 }]);
        expect(page).toEqual([{ position: "0001", value: odd }]);
      }));

    it("prunes items below `pruneBelow` in the same write, and removes one item; an emptied key is gone", () =>
      withBackend(async ({ storage }) => {
        const k = key();
        await storage.commit([], ["0001", "0002", "0003"].map((p) => ({ op: "addItem" as const, key: k, position: p, value: p })));
        await storage.commit([], [{ op: "addItem", key: k, position: "0004", value: "0004", pruneBelow: "0003" }]);
        expect((await storage.pages([{ key: k, limit: 10 }]))[0]?.map((item) => item.position)).toEqual(["0004", "0003"]);
        await storage.commit([], [{ op: "removeItem", key: k, position: "0003" }, { op: "removeItem", key: k, position: "0009" }]);
        expect((await storage.pages([{ key: k, limit: 10 }]))[0]?.map((item) => item.position)).toEqual(["0004"]);
        await storage.commit([], [{ op: "removeItem", key: k, position: "0004" }]);
        expect(await storage.pages([{ key: k, limit: 10 }])).toEqual([[]]);
        // Gone as a key too: a condition that it is absent holds.
        expect(await storage.commit([{ key: k, equals: null }], [{ op: "put", key: `${k}:probe`, value: "x" }])).toBe(true);
      }));

    it("is written atomically with the other writes of a commit, and not at all when a condition fails", () =>
      withBackend(async ({ storage }) => {
        const k = key();
        const guard = `${k}:guard`;
        expect(await storage.commit([{ key: guard, equals: "nope" }], [{ op: "addItem", key: k, position: "0001", value: "lost" }])).toBe(false);
        expect(await storage.pages([{ key: k, limit: 10 }])).toEqual([[]]);
        expect(
          await storage.commit(
            [{ key: guard, equals: null }],
            [
              { op: "put", key: guard, value: "1" },
              { op: "addItem", key: k, position: "0001", value: "kept" },
            ],
          ),
        ).toBe(true);
        expect(await storage.get([guard])).toEqual(["1"]);
        expect(values((await storage.pages([{ key: k, limit: 10 }]))[0] ?? [])).toEqual(["kept"]);
      }));

    it("expires with its key, and `delete` drops every item", () =>
      withBackend(async ({ storage }) => {
        const expiring = key();
        const deleted = key();
        await storage.commit([], [
          { op: "addItem", key: expiring, position: "0001", value: "x" },
          { op: "expireAt", key: expiring, at: Date.now() - 1 },
          { op: "addItem", key: deleted, position: "0001", value: "y" },
        ]);
        await storage.commit([], [{ op: "delete", key: deleted }]);
        expect(await storage.pages([{ key: expiring, limit: 10 }, { key: deleted, limit: 10 }])).toEqual([[], []]);
        // A key added again after its delete starts empty.
        await storage.commit([], [{ op: "addItem", key: deleted, position: "0002", value: "z" }]);
        expect(values((await storage.pages([{ key: deleted, limit: 10 }]))[0] ?? [])).toEqual(["z"]);
      }));

    it("reads pages of many keys in one round trip, in the order asked, an absent key empty", () =>
      withBackend(async ({ storage, roundTrips }) => {
        const keys = Array.from({ length: 50 }, key);
        await storage.commit([], keys.flatMap((k, i) => [{ op: "addItem" as const, key: k, position: "0001", value: `k${i}` }]));
        const before = roundTrips?.() ?? 0;
        const pages = await storage.pages([...keys.map((k) => ({ key: k, limit: 5 })), { key: key(), limit: 5 }]);
        if (roundTrips !== undefined) expect(roundTrips() - before).toBe(1);
        expect(pages.map((page) => values(page))).toEqual([...keys.map((_, i) => [`k${i}`]), []]);
        expect(await storage.pages([])).toEqual([]);
      }));
  });
}
