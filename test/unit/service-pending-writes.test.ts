/**
 * Ledger writes the store could not take: Deel acted (or surely did not), the store was away, and
 * the service keeps the write and makes it once the store answers, only while the profile still
 * stands where the operation left it. Also: a turn that does not come by its deadline never runs.
 */
import pino from "pino";
import { describe, expect, it } from "vitest";
import { DeelError } from "../../src/deel/errors.js";
import type { DeelApi } from "../../src/deel/types.js";
import { memoryLedger } from "../../src/sessions/create-store.js";
import { LedgerError } from "../../src/sessions/errors.js";
import { WORKER_TOKEN_LIFETIME_MS } from "../../src/sessions/intent.js";
import { ProfileQueue } from "../../src/sessions/profile-queue.js";
import { WorkerSessionService } from "../../src/sessions/service.js";
import type { SessionStore } from "../../src/sessions/store.js";
import { aClock, aManualClock } from "../support/clock.js";
import { aProfileId } from "../support/profiles.js";

const P = aProfileId("0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5");
const actor = { sub: "caller-1", requestId: "req-1", log: pino({ level: "silent" }) };
const START = Date.parse("2030-01-01T00:00:00Z");

/** A store whose writes fail (as a store that went away) while `down.writes` is set. */
function aFlakyStore(inner: SessionStore): { store: SessionStore; down: { writes: boolean } } {
  const down = { writes: false };
  const away = () => {
    if (down.writes) throw new LedgerError("unavailable", "the store went away");
  };
  const store: SessionStore = {
    get: (id) => inner.get(id),
    getMany: (ids) => inner.getMany(ids),
    getStates: (ids) => inner.getStates(ids),
    put: async (record, fence, note) => (away(), inner.put(record, fence, note)),
    putUnlessOvertaken: async (record, since, fence, note) => (away(), inner.putUnlessOvertaken(record, since, fence, note)),
    markRevoked: async (id, at, by, fence, note) => (away(), inner.markRevoked(id, at, by, fence, note)),
    beginMint: (intent, fence, note) => inner.beginMint(intent, fence, note),
    endMint: async (id, fence, upTo, note) => (away(), inner.endMint(id, fence, upTo, note)),
    listByCreator: (sub) => inner.listByCreator(sub),
    listIntentsByCreator: (sub) => inner.listIntentsByCreator(sub),
    getIntents: (ids) => inner.getIntents(ids),
    appendHistory: (events) => inner.appendHistory(events),
    readHistory: (requests) => inner.readHistory(requests),
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
  return { store, down };
}

function twoReplicas(deel: Partial<DeelApi>) {
  const clock = aClock(START);
  const shared = memoryLedger(clock.clock);
  const { store, down } = aFlakyStore(shared);
  let minted = 0;
  const full: DeelApi = {
    createSession: async () => {
      minted += 1;
      return { token: `t${minted}`, expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS + minted), replayed: false };
    },
    revokeSession: async () => ({}),
    ...deel,
  };
  const lock = new ProfileQueue(clock.clock);
  const service = (on: SessionStore) => new WorkerSessionService({ deel: full, store: on, lock, clock: clock.clock, intentStaleAfterMs: 1 });
  return { a: service(store), b: service(shared), shared, down, clock };
}

describe("a ledger write the store could not take", () => {
  it("records a session Deel minted once the store answers again, with Deel's expiry", async () => {
    const { a, shared, down, clock } = twoReplicas({});
    down.writes = true;
    await expect(a.create(actor, P, undefined)).rejects.toBeInstanceOf(LedgerError);
    expect(a.pendingWrites).toBe(1);
    clock.advance(10);
    expect((await a.read([P]))[0]?.status).toBe("UNKNOWN");

    down.writes = false;
    await a.settle();
    expect(a.pendingWrites).toBe(0);
    const [entry] = await a.read([P]);
    expect(entry?.status).toBe("ACTIVE");
    expect(entry?.record.expiresAt).toEqual(new Date(START + WORKER_TOKEN_LIFETIME_MS + 1));
    expect(await shared.getIntents([P])).toEqual([null]);
  });

  it("clears the intent of a create Deel refused, so the profile does not read UNKNOWN", async () => {
    const { a, down, clock } = twoReplicas({ createSession: () => Promise.reject(new DeelError("rate_limited", "no slot")) });
    down.writes = true;
    await expect(a.create(actor, P, undefined)).rejects.toBeInstanceOf(DeelError);
    expect(a.pendingWrites).toBe(1);
    down.writes = false;
    await a.settle();
    clock.advance(10);
    expect(await a.read([P])).toEqual([null]);
  });

  it("records a revoke Deel carried out", async () => {
    const { a, down } = twoReplicas({});
    await a.create(actor, P, undefined);
    down.writes = true;
    await expect(a.revoke(actor, P)).rejects.toBeInstanceOf(LedgerError);
    expect((await a.read([P]))[0]?.status).toBe("ACTIVE");
    down.writes = false;
    await a.settle();
    expect((await a.read([P]))[0]?.status).toBe("REVOKED");
  });

  it("is written first in the profile's next turn on the same replica", async () => {
    const { a, down } = twoReplicas({});
    await a.create(actor, P, undefined);
    down.writes = true;
    await expect(a.revoke(actor, P)).rejects.toBeInstanceOf(LedgerError);
    down.writes = false;
    // The create's turn writes the kept revoke first, then records its own fresh session.
    const created = await a.create(actor, P, undefined);
    expect(a.pendingWrites).toBe(0);
    expect((await a.read([P]))[0]?.record.expiresAt).toEqual(created.session.expiresAt);
    expect((await a.read([P]))[0]?.status).toBe("ACTIVE");
  });

  it("is dropped when another replica's fresh mint overtook it: the newer session stands", async () => {
    const { a, b, down } = twoReplicas({});
    down.writes = true;
    await expect(a.create(actor, P, undefined)).rejects.toBeInstanceOf(LedgerError);
    // Another replica (whose store answers) mints again: Deel's token is now its one.
    const newer = await b.create(actor, P, undefined);
    down.writes = false;
    await a.settle();
    expect(a.pendingWrites).toBe(0);
    const [entry] = await a.read([P]);
    expect(entry?.status).toBe("ACTIVE");
    expect(entry?.record.expiresAt).toEqual(newer.session.expiresAt);
  });

  it("is dropped when another replica revoked the profile since", async () => {
    const { a, b, down } = twoReplicas({});
    await a.create(actor, P, undefined);
    down.writes = true;
    await expect(a.create(actor, P, undefined)).rejects.toBeInstanceOf(LedgerError);
    await b.revoke(actor, P);
    down.writes = false;
    await a.settle();
    expect((await a.read([P]))[0]?.status).toBe("REVOKED");
  });
});

describe("a kept write's history", () => {
  const events = async (store: SessionStore) =>
    (await store.readHistory([{ subject: { kind: "profile", id: P }, first: 100 }]))[0]?.events.map((event) => `${event.action} ${event.outcome}`);

  it("records the INTENT_RESOLVED of a replayed create whose intent could only be cleared once the store answered", async () => {
    const clock = aClock(START);
    const shared = memoryLedger(clock.clock);
    const flaky = aFlakyStore(shared);
    // The store stops answering after the intent was written: the replay cannot read the ledger.
    const store: SessionStore = {
      ...flaky.store,
      get: async (id) => {
        if (flaky.down.writes) throw new LedgerError("unavailable", "the store went away");
        return shared.get(id);
      },
    };
    const deel: DeelApi = {
      createSession: async () => ({ token: "t", expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS), replayed: true }),
      revokeSession: async () => ({}),
    };
    const service = new WorkerSessionService({ deel, store, lock: new ProfileQueue(clock.clock), clock: clock.clock, intentStaleAfterMs: 60_000 });
    flaky.down.writes = true;
    await expect(service.create(actor, P, undefined)).rejects.toBeInstanceOf(LedgerError);
    expect(service.pendingWrites).toBe(1);
    flaky.down.writes = false;
    await service.settle();
    expect(service.pendingWrites).toBe(0);
    expect(await shared.getIntents([P])).toEqual([null]);
    expect(await events(shared)).toEqual(["MINT LedgerError", "INTENT_RESOLVED OK", "INTENT_WRITTEN OK"]);
  });
});

describe("a kept write's history events", () => {
  it("are dated when the operation happened, and a write that landed unseen and is replayed twice records each event once", async () => {
    const clock = aClock(START);
    const shared = memoryLedger(clock.clock);
    let lose = true;
    // The record's write lands, but its answer is lost (the store went away with it).
    const store: SessionStore = {
      ...aFlakyStore(shared).store,
      put: async (record, fence, note) => {
        await shared.put(record, fence, note);
        if (lose) throw new LedgerError("unavailable", "the store went away with the answer");
      },
      putUnlessOvertaken: async (record, since, fence, note) => {
        const written = await shared.putUnlessOvertaken(record, since, fence, note);
        if (lose) throw new LedgerError("unavailable", "the store went away with the answer");
        return written;
      },
    };
    const deel: DeelApi = {
      createSession: async () => ({ token: "t", expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS), replayed: false }),
      revokeSession: async () => ({}),
    };
    const service = new WorkerSessionService({ deel, store, lock: new ProfileQueue(clock.clock), clock: clock.clock, intentStaleAfterMs: 60_000 });
    await expect(service.create(actor, P, undefined)).rejects.toBeInstanceOf(LedgerError);
    clock.advance(5_000);
    // The first replay lands the record again and loses its answer too; the second one is answered.
    await service.settle();
    expect(service.pendingWrites).toBe(1);
    lose = false;
    await service.settle();
    expect(service.pendingWrites).toBe(0);
    const [page] = await shared.readHistory([{ subject: { kind: "profile", id: P }, first: 100 }]);
    expect(page?.events.map((event) => `${event.action} ${event.outcome} ${event.at.getTime() - START}`)).toEqual([
      // The refusal the caller got, then what the create had done before it, as it was done.
      "MINT LedgerError 0",
      "INTENT_RESOLVED OK 0",
      "MINT OK 0",
      "INTENT_WRITTEN OK 0",
    ]);
  });
});

describe("a kept record write replayed over newer state", () => {
  /** Replica b's store, whose intent resolutions fail once (its own resolution is then kept, the intent left standing). */
  function bWithFailingEndMint(shared: SessionStore, clock: ReturnType<typeof aClock>, deel: DeelApi, lock: ProfileQueue) {
    let failures = 1;
    const store: SessionStore = {
      ...aFlakyStore(shared).store,
      endMint: async (id, fence, upTo, note) => {
        if (failures > 0) {
          failures -= 1;
          throw new LedgerError("unavailable", "the store went away");
        }
        return shared.endMint(id, fence, upTo, note);
      },
    };
    return new WorkerSessionService({ deel, store, lock, clock: clock.clock, intentStaleAfterMs: 1 });
  }

  function setUp() {
    const clock = aClock(START);
    const shared = memoryLedger(clock.clock);
    const { store, down } = aFlakyStore(shared);
    let minted = 0;
    const deel: DeelApi = {
      createSession: async () => {
        minted += 1;
        return { token: `t${minted}`, expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS + minted), replayed: false };
      },
      revokeSession: async () => ({}),
    };
    const lock = new ProfileQueue(clock.clock);
    const a = new WorkerSessionService({ deel, store, lock, clock: clock.clock, intentStaleAfterMs: 1 });
    return { a, b: bWithFailingEndMint(shared, clock, deel, lock), down, clock };
  }

  it("never replaces a record a later mint created, even while the intent it resolves still stands", async () => {
    const { a, b, down, clock } = setUp();
    down.writes = true;
    await expect(a.create(actor, P, undefined)).rejects.toBeInstanceOf(LedgerError);
    clock.advance(10);
    // Another replica mints again and records it; only its intent resolution fails.
    const newer = await b.create(actor, P, undefined);
    down.writes = false;
    await a.settle();
    const [entry] = await a.read([P]);
    expect(entry?.record.expiresAt).toEqual(newer.session.expiresAt);
    expect(entry?.record.createdAt).toEqual(newer.session.createdAt);
  });

  it("never replaces a record revoked after its mint began, even while the intent it resolves still stands", async () => {
    const { a, b, down, clock } = setUp();
    down.writes = true;
    await expect(a.create(actor, P, undefined)).rejects.toBeInstanceOf(LedgerError);
    clock.advance(10);
    // Another replica revokes: the session the intent stands for is recorded REVOKED; its intent's clearing fails.
    await expect(b.revoke(actor, P)).rejects.toBeInstanceOf(LedgerError);
    down.writes = false;
    await a.settle();
    await b.settle();
    expect((await a.read([P]))[0]?.status).toBe("REVOKED");
  });
});

describe("a turn bounded by a deadline", () => {
  it("never runs a task whose turn came too late, and lets the next one go", async () => {
    const clock = aManualClock(START);
    const queue = new ProfileQueue(clock);
    let release!: () => void;
    const first = queue.run(P, () => new Promise<string>((resolve) => (release = () => resolve("first"))));
    let ran = false;
    const late = queue.run(
      P,
      async () => {
        ran = true;
        return "late";
      },
      START + 100,
    );
    const caught = late.catch((error: unknown) => error);
    clock.advance(100);
    const error = await caught;
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as LedgerError).kind).toBe("busy");
    release();
    expect(await first).toBe("first");
    expect(await queue.run(P, async () => "next", START + 10_000)).toBe("next");
    expect(ran).toBe(false);
  });
});

describe("one deadline per operation", () => {
  it("answers a create by its deadline when the store stops answering after Deel minted, and records the session once it answers", async () => {
    const clock = aManualClock(START);
    const inner = memoryLedger(clock);
    let answerPut: (() => void) | undefined;
    const store: SessionStore = {
      ...aFlakyStore(inner).store,
      // The store takes the write but does not answer until the test lets it.
      put: (record, fence, note) =>
        new Promise<void>((resolve, reject) => {
          answerPut = () => void inner.put(record, fence, note).then(resolve, reject);
        }),
    };
    const deel: DeelApi = {
      createSession: async () => ({ token: "t", expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS), replayed: false }),
      revokeSession: async () => ({}),
    };
    const service = new WorkerSessionService({ deel, store, lock: new ProfileQueue(clock), clock, intentStaleAfterMs: 4000, timeoutMs: 3000 });
    const answer = service.create(actor, P, undefined).then(
      () => "answered",
      (error: unknown) => error,
    );
    while (answerPut === undefined) await new Promise((r) => setImmediate(r));
    clock.advance(2999);
    await new Promise((r) => setImmediate(r));
    expect(clock.pending().length).toBeGreaterThan(0);
    clock.advance(1);
    const error = await answer;
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as LedgerError).kind).toBe("unavailable");
    // The write goes on after the answer, and lands: the ledger describes Deel's token.
    answerPut();
    await service.settle();
    expect((await service.read([P]))[0]?.status).toBe("ACTIVE");
  });

  it("answers a create queued behind a slow one on the same profile by its own deadline, without calling Deel", async () => {
    const clock = aManualClock(START);
    let calls = 0;
    let finishFirst: (() => void) | undefined;
    const deel: DeelApi = {
      createSession: () => {
        calls += 1;
        return new Promise((resolve) => (finishFirst = () => resolve({ token: "t", expiresAt: new Date(START + WORKER_TOKEN_LIFETIME_MS), replayed: false })));
      },
      revokeSession: async () => ({}),
    };
    const service = new WorkerSessionService({ deel, store: memoryLedger(clock), lock: new ProfileQueue(clock), clock, intentStaleAfterMs: 4000, timeoutMs: 3000 });
    const first = service.create(actor, P, undefined);
    while (finishFirst === undefined) await new Promise((r) => setImmediate(r));
    clock.advance(1000);
    const second = service.create(actor, P, undefined).then(
      () => "answered",
      (error: unknown) => error,
    );
    clock.advance(3000);
    const error = await second;
    expect(error).toBeInstanceOf(LedgerError);
    expect((error as LedgerError).kind).toBe("busy");
    finishFirst();
    await first.catch(() => undefined);
    await service.settle();
    expect(calls).toBe(1);
  });
});
