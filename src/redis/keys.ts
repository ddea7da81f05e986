/**
 * The gateway's keyspace: every key name, in one place. The ledger, the revocation jobs, per-profile
 * ordering and the Deel budget all address their state by these names, whatever the backend; Redis
 * puts `REDIS_KEY_PREFIX` (default `wsg:`) in front of each (one prefix = one organization).
 *
 * The names are the ones earlier releases wrote, so a Redis they filled reads the same.
 */
export const keyNames = {
  /** The ledger's record for a profile: one JSON string. */
  session: (profileId: string) => `session:${profileId}`,
  /** The createdBy index: the profiles whose current record a caller (`sub`) minted (a set). */
  creator: (sub: string) => `creator:${sub}`,
  /** A mint under way for a profile (see sessions/intent.ts): one JSON string. */
  intent: (profileId: string) => `intent:${profileId}`,
  /** The mints a caller (`sub`) began: profile id → the start (epoch ms) of its latest one there (a map). */
  mintsBy: (sub: string) => `mints-by:${sub}`,
  /** The per-profile lock (token of the holder, with a TTL). */
  lock: (profileId: string) => `lock:${profileId}`,
  /** The per-profile fencing counter: INCR on every lock acquisition. */
  fence: (profileId: string) => `fence:${profileId}`,
  /** Waiters for a profile's lock, in arrival order (sorted set), and when each last asked. */
  waiters: (profileId: string) => `lockq:${profileId}`,
  waiterSeen: (profileId: string) => `lockq-seen:${profileId}`,
  /** The organization's outbound Deel budget: a sorted set of reserved call slots. */
  budget: "deel-budget",
  /** When calls to Deel actually left, for every replica: a sorted set over the last window. */
  budgetDepartures: "deel-budget-left",
  /** One map per revocation job: filters, status, times, counts, and the lease (`owner`, `leaseUntil`). */
  job: (id: string) => `rjob:${id}`,
  /** One map per job: profile id → the target's progress (JSON). */
  jobTargets: (id: string) => `rjob-targets:${id}`,
  /** One set per job: the profiles whose creates it refuses while it runs. */
  jobBlocked: (id: string) => `rjob-blocked:${id}`,
  /** A profile's session history (sessions/history.ts): an ordered key of events, by time. */
  history: (profileId: string) => `history:${profileId}`,
  /** A revocation job's revokes, as history events (an ordered key). */
  jobHistory: (id: string) => `rjob-history:${id}`,
  /** The ids of every RUNNING job (a set). */
  runningJobs: "rjobs:running",
} as const;

/** The same names with a Redis prefix in front, for the parts that talk to Redis directly (lock, budget). */
export function redisKeys(prefix: string) {
  return {
    session: (profileId: string) => prefix + keyNames.session(profileId),
    creator: (sub: string) => prefix + keyNames.creator(sub),
    intent: (profileId: string) => prefix + keyNames.intent(profileId),
    lock: (profileId: string) => prefix + keyNames.lock(profileId),
    fence: (profileId: string) => prefix + keyNames.fence(profileId),
    waiters: (profileId: string) => prefix + keyNames.waiters(profileId),
    waiterSeen: (profileId: string) => prefix + keyNames.waiterSeen(profileId),
    budget: prefix + keyNames.budget,
    budgetDepartures: prefix + keyNames.budgetDepartures,
  };
}
