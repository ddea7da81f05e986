/**
 * The outcome of turning an outside value into a checked one: the value, or why it is refused.
 * Constructors of branded values (`ProfileId`, `IdempotencyKey`, `MagicLinkTarget`, …) answer this;
 * `problem` is in words fit for a BAD_USER_INPUT answer and never echoes the value.
 */
export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };

export function accepted<T>(value: T): Checked<T> {
  return { ok: true, value };
}

export function refused<T>(problem: string): Checked<T> {
  return { ok: false, problem };
}
