/**
 * Where a worker may be sent by a magic link: the rules for `redirectPath` (a path inside Deel's
 * White Label app) and `onSuccessRedirectUrl` (where Deel sends the worker afterwards). Pure
 * functions. This module holds the rules for both values, and its one constructor,
 * {@link parseMagicLinkTarget}, is what the GraphQL edge turns a caller's input into: a
 * `MagicLinkTarget`, which is what the session service and the Deel client take, so nothing below
 * the edge checks either value again. Reasons are in words fit for a BAD_USER_INPUT answer (they
 * never echo the value).
 *
 * Both values end up in a link a worker follows, so anything that could turn them into an open
 * redirect is refused. `redirectPath` is held to an ASCII allow-list, in its raw form and in every
 * percent-decoded form, which also keeps out look-alikes that become `..`, `/` or `\` under NFKC
 * (`‥`, `／`, `＼`) and invisible characters (U+200B, U+2028 …); then a scheme, a protocol-relative
 * `//host`, a `..` or `..;` segment, a backslash, control characters, a `scheme:` at the start of a
 * query or fragment value, a query or fragment name or value that, form-decoded (`+` is a space),
 * parses as a URL with a scheme other than the page's (`?next=+javascript:…`), and double
 * percent-encoding (`%25`) are refused.
 */

import { accepted, refused, type Checked } from "./checked.js";
import { isLoopbackHost } from "./loopback.js";

export type { Checked } from "./checked.js";

/** Longest `redirectPath` accepted. */
export const MAX_REDIRECT_PATH_LENGTH = 512;
/** Longest `onSuccessRedirectUrl` accepted, before and after normalization. */
export const MAX_SUCCESS_REDIRECT_URL_LENGTH = 2048;
/** How many rounds of percent-decoding are looked through (`%252e` is `%2e` once decoded). */
const DECODE_ROUNDS = 3;
/** The characters a `redirectPath` may hold, raw or decoded: unreserved, sub-delims, `/?#:@%`. ASCII only. */
const PATH_CHARACTERS = /^[A-Za-z0-9\-._~/?#&=%+!$'()*,;:@]*$/;
const PATH_CHARACTER_LIST = "A-Z a-z 0-9 and - . _ ~ / ? # & = % + ! $ ' ( ) * , ; : @";
/** A scheme such as `https:` or `javascript:`. */
const SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;
/** A `scheme:` where a query or fragment value begins (after `?`, `&`, `=` or `#`). */
const SCHEME_IN_VALUE = /[?&=#][A-Za-z][A-Za-z0-9+.-]*:/;
/**
 * The page a `redirectPath` lands on, as a base for resolving the values its query and fragment
 * carry. Only its scheme matters: Deel's White Label app is served over https.
 */
const PAGE_BASE = "https://page.invalid/";

/** True when `text` holds a C0 control, DEL or a C1 control. */
export function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) return true;
  }
  return false;
}

/** The value and each of its percent-decoded forms; undefined when an encoding is malformed. */
function decodedForms(value: string): string[] | undefined {
  const forms = [value];
  let current = value;
  for (let round = 0; round < DECODE_ROUNDS && current.includes("%"); round += 1) {
    try {
      current = decodeURIComponent(current);
    } catch {
      return undefined;
    }
    forms.push(current);
  }
  return forms;
}

/**
 * True when a name or value in the query or fragment of `form`, form-decoded (`+` is a space) and
 * resolved against the page the way a URL parser resolves it (which drops leading spaces and
 * controls), is a URL with a scheme other than the page's. An app behind the path that reads
 * `next=+javascript:alert(1)` and follows it would otherwise run a script. `&` and `;` both
 * separate parameters, `=` separates a name from its value; `form` is already percent-decoded
 * (the caller checks every decoded form), so only `+` is left to decode here.
 */
function valueCarriesForeignScheme(form: string): boolean {
  const start = form.search(/[?#]/);
  if (start === -1) return false;
  const page = new URL(PAGE_BASE);
  for (const piece of form.slice(start + 1).split(/[?#&;=]/)) {
    const decoded = piece.replace(/\+/g, " ");
    if (!/[A-Za-z][A-Za-z0-9+.-]*:/.test(decoded)) continue;
    let resolved: URL;
    try {
      resolved = new URL(decoded, page);
    } catch {
      // Not a URL, not even relative to the page: nothing a browser would follow.
      continue;
    }
    if (resolved.protocol !== page.protocol) return true;
  }
  return false;
}

/** Why `form` (the raw value or one of its decodings) is not a safe relative path, if it is not. */
function unsafePathForm(form: string): string | undefined {
  if (hasControlCharacter(form)) return "must not contain control characters";
  if (form.includes("\\")) return "must not contain backslashes";
  if (/[^\x20-\x7e]/.test(form)) return "must contain ASCII characters only (no look-alike or invisible characters)";
  if (!PATH_CHARACTERS.test(form)) return `must contain only ${PATH_CHARACTER_LIST}`;
  if (form.includes("//")) return 'must not contain "//"';
  // Segments end at "/", at "?" or "#" where a query or fragment begins, and at a query's "&" and
  // "=" (a parameter such as `next=../x` may be followed by the app behind the path). `..;` is
  // `..` to servers that strip path parameters.
  if (form.split(/[/?#&=]/).some((segment) => /^\.\.(;|$)/.test(segment))) return 'must not contain a ".." segment (nor "..;")';
  if (SCHEME_IN_VALUE.test(form) || valueCarriesForeignScheme(form)) return "must not carry a scheme in a query or fragment value";
  return undefined;
}

/**
 * `redirectPath`: a relative path such as `/contracts/42`. Non-empty, at most 512 characters,
 * starting with `/`, ASCII from the allow-list only, with no scheme (at the start or at the start of
 * a query or fragment value, nor in a form-decoded one: `?next=+javascript:`), no `//`, no `..`
 * or `..;` segment, no backslash and no control character, in its raw form or percent-decoded, and never percent-encoded twice (`%25`).
 * Accepted, it is forwarded unchanged: the normalized value is the checked path itself.
 */
export function checkRedirectPath(value: unknown): Checked<string> {
  const rule = "redirectPath must be a relative path such as /contracts";
  if (typeof value !== "string" || value === "") return refused(`${rule}: it is empty`);
  if (value.length > MAX_REDIRECT_PATH_LENGTH) return refused(`${rule}: at most ${MAX_REDIRECT_PATH_LENGTH} characters`);
  if (SCHEME.test(value)) return refused(`${rule}: it must not carry a scheme`);
  if (!value.startsWith("/")) return refused(`${rule}: it must start with "/"`);
  const forms = decodedForms(value);
  if (forms === undefined) return refused(`${rule}: it holds a malformed percent-encoding`);
  for (const form of forms) {
    const problem = unsafePathForm(form);
    if (problem !== undefined) return refused(`${rule}: it ${problem}`);
  }
  if (/%25/.test(value)) return refused(`${rule}: it must not be percent-encoded twice ("%25")`);
  return accepted(value);
}

/** `redirectPath`'s problem, or undefined when {@link checkRedirectPath} accepts it. */
export function redirectPathProblem(value: unknown): string | undefined {
  const checked = checkRedirectPath(value);
  return checked.ok ? undefined : checked.problem;
}

/** True when `url` is https, or http on a loopback host. */
export function isSecureOrLoopback(url: URL): boolean {
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHost(url.hostname));
}

const SUCCESS_URL_RULE = "onSuccessRedirectUrl must be an absolute https URL on an allowed origin";

/** Every rule for `onSuccessRedirectUrl` but the origin allow-list: the parsed URL, or why not. */
function successUrlShape(value: unknown): Checked<URL> {
  const rule = SUCCESS_URL_RULE;
  if (typeof value !== "string" || value === "") return refused(`${rule}: it is empty`);
  if (value.length > MAX_SUCCESS_REDIRECT_URL_LENGTH) return refused(`${rule}: at most ${MAX_SUCCESS_REDIRECT_URL_LENGTH} characters`);
  // The URL parser drops tabs and line breaks silently: refuse them before it sees the value.
  if (hasControlCharacter(value) || /\s/.test(value)) return refused(`${rule}: it must not contain whitespace or control characters`);
  if (value.includes("\\")) return refused(`${rule}: it must not contain backslashes`);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return refused(`${rule}: it is not a URL`);
  }
  if (!isSecureOrLoopback(url)) return refused(`${rule}: only https (or http on localhost) is accepted`);
  if (url.username !== "" || url.password !== "") return refused(`${rule}: it must not carry credentials`);
  // Normalizing percent-encodes what needs it, so the href may be longer than the value.
  if (url.href.length > MAX_SUCCESS_REDIRECT_URL_LENGTH) return refused(`${rule}: at most ${MAX_SUCCESS_REDIRECT_URL_LENGTH} characters`);
  return accepted(url);
}

/**
 * `onSuccessRedirectUrl`: an absolute https URL (http only for localhost) without credentials, whose
 * origin is one of `allowedOrigins` (MAGIC_LINK_REDIRECT_ORIGINS). Accepted, its normalized form is
 * the parsed URL's `href` (`HTTPS://app.example.com/x` and `https:app.example.com/x` become
 * `https://app.example.com/x`): that, never the raw string, is what is forwarded to Deel. With no
 * origins configured, every value is refused, with words that tell the caller the operator must set
 * the variable.
 */
export function checkSuccessRedirectUrl(value: unknown, allowedOrigins: readonly string[]): Checked<string> {
  if (allowedOrigins.length === 0) {
    return refused("onSuccessRedirectUrl is not accepted by this gateway: the operator must set MAGIC_LINK_REDIRECT_ORIGINS to the origins links may return to");
  }
  const shape = successUrlShape(value);
  if (!shape.ok) return shape;
  if (!allowedOrigins.includes(shape.value.origin)) return refused(`${SUCCESS_URL_RULE}: its origin is not in MAGIC_LINK_REDIRECT_ORIGINS`);
  return accepted(shape.value.href);
}

/** `onSuccessRedirectUrl`'s problem, or undefined when {@link checkSuccessRedirectUrl} accepts it. */
export function successRedirectUrlProblem(value: unknown, allowedOrigins: readonly string[]): string | undefined {
  const checked = checkSuccessRedirectUrl(value, allowedOrigins);
  return checked.ok ? undefined : checked.problem;
}

declare const magicLinkTargetBrand: unique symbol;

/**
 * Where a magic link leads, checked: a `redirectPath` the rules accept (forwarded unchanged) and,
 * when given, an `onSuccessRedirectUrl` in its normalized form on an allowed origin. Made only by
 * {@link parseMagicLinkTarget}.
 */
export type MagicLinkTarget = {
  readonly redirectPath: string;
  readonly onSuccessRedirectUrl?: string;
} & { readonly [magicLinkTargetBrand]: "MagicLinkTarget" };

/**
 * A magic link's redirect inputs as a `MagicLinkTarget`: both values checked and normalized, or
 * the first problem. `onSuccessRedirectUrl` undefined or null means none was given.
 */
export function parseMagicLinkTarget(
  input: { redirectPath?: unknown; onSuccessRedirectUrl?: unknown } | undefined,
  allowedOrigins: readonly string[],
): Checked<MagicLinkTarget> {
  const path = checkRedirectPath(input?.redirectPath);
  if (!path.ok) return refused(path.problem);
  const url = input?.onSuccessRedirectUrl;
  if (url === undefined || url === null) return accepted({ redirectPath: path.value } as MagicLinkTarget);
  const checked = checkSuccessRedirectUrl(url, allowedOrigins);
  if (!checked.ok) return refused(checked.problem);
  return accepted({ redirectPath: path.value, onSuccessRedirectUrl: checked.value } as MagicLinkTarget);
}
