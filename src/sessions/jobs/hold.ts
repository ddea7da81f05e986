/**
 * A runner's hold on one job it is running: whether the lease is still its own, whether Deel refused
 * the organization's credentials, and the sleeping workers to wake when either changes (or a target
 * settles). Promises: `loseHold` marks the lease lost once (logging it once) and wakes every sleeper;
 * `nap` ends after `ms` or at the next `wakeAll`, whichever comes first.
 */
import type { Logger } from "pino";

/** A job being run here: whether the lease is still ours, and a way to wake sleeping workers. */
export interface Hold {
  lost: boolean;
  /** Deel refused the organization's credentials: no revoke can succeed, the job stops FAILED. */
  credentialsRefused: boolean;
  wake: Array<() => void>;
}

export function newHold(): Hold {
  return { lost: false, credentialsRefused: false, wake: [] };
}

/** Wakes every worker sleeping on the hold. */
export function wakeAll(hold: Hold): void {
  const waiting = hold.wake.splice(0);
  for (const wake of waiting) wake();
}

/** The store refused a write of ours: another runner holds the job now. */
export function loseHold(hold: Hold, log: Logger): void {
  if (!hold.lost) log.warn("lost the lease of a revocation job to another runner; it carries on there");
  hold.lost = true;
  wakeAll(hold);
}

/** Sleeps `ms`, or until the hold's workers are woken. */
export function nap(hold: Hold, ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      resolve();
    }
    hold.wake.push(done);
  });
}
