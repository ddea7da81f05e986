/**
 * Where a worker may be sent by a magic link: the rules for `redirectPath` (a path inside Deel's
 * White Label app) and `onSuccessRedirectUrl` (where Deel sends the worker afterwards). Pure
 * functions: each returns undefined for an acceptable value, or the reason it is refused, in words
 * fit for a BAD_USER_INPUT answer (they never echo the value).
 *
 * Both values end up in a link a worker follows, so anything that could turn them into an open
 * redirect is refused: a scheme, a protocol-relative `//host`, a `..` segment, a backslash (which
 * browsers read as `/`), control characters, and the same tricks percent-encoded (`%2e%2e`,
 * `%2f%2f`, `%5c`, double encoding).
 */

/** Longest `redirectPath` accepted. */
export const MAX_REDIRECT_PATH_LENGTH = 512;
/** Longest `onSuccessRedirectUrl` accepted. */
export const MAX_SUCCESS_REDIRECT_URL_LENGTH = 2048;
/** How many rounds of percent-decoding are looked through (`%252e` is `%2e` once decoded). */
const DECODE_ROUNDS = 3;

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

/** Why `form` (the raw value or one of its decodings) is not a safe relative path, if it is not. */
function unsafePathForm(form: string): string | undefined {
  if (hasControlCharacter(form)) return "must not contain control characters";
  if (form.includes("\\")) return "must not contain backslashes";
  if (form.includes("//")) return 'must not contain "//"';
  // Segments end at "/", at "?" or "#" where a query or fragment begins, and at a query's "&" and
  // "=" (a parameter such as `next=../x` may be followed by the app behind the path).
  if (form.split(/[/?#&=]/).some((segment) => segment === "..")) return 'must not contain a ".." segment';
  return undefined;
}

/**
 * `redirectPath`: a relative path such as `/contracts/42`. Non-empty, at most 512 characters,
 * starting with `/`, with no scheme, no `//`, no `..` segment, no backslash and no control
 * character, in its raw form or percent-decoded.
 */
export function redirectPathProblem(value: unknown): string | undefined {
  const rule = "redirectPath must be a relative path such as /contracts";
  if (typeof value !== "string" || value === "") return `${rule}: it is empty`;
  if (value.length > MAX_REDIRECT_PATH_LENGTH) return `${rule}: at most ${MAX_REDIRECT_PATH_LENGTH} characters`;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(value)) return `${rule}: it must not carry a scheme`;
  if (!value.startsWith("/")) return `${rule}: it must start with "/"`;
  const forms = decodedForms(value);
  if (forms === undefined) return `${rule}: it holds a malformed percent-encoding`;
  for (const form of forms) {
    const problem = unsafePathForm(form);
    if (problem !== undefined) return `${rule}: it ${problem}`;
  }
  return undefined;
}

/** Hosts for which plain `http:` is accepted (a developer's own machine). */
const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** True when `url` is https, or http on a loopback host. */
export function isSecureOrLoopback(url: URL): boolean {
  return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK_HOSTS.has(url.hostname));
}

/**
 * `onSuccessRedirectUrl`: an absolute https URL (http only for localhost) without credentials, whose
 * origin is one of `allowedOrigins` (MAGIC_LINK_REDIRECT_ORIGINS). With no origins configured,
 * every value is refused, with words that tell the caller the operator must set the variable.
 */
export function successRedirectUrlProblem(value: unknown, allowedOrigins: readonly string[]): string | undefined {
  if (allowedOrigins.length === 0) {
    return "onSuccessRedirectUrl is not accepted by this gateway: the operator must set MAGIC_LINK_REDIRECT_ORIGINS to the origins links may return to";
  }
  const rule = "onSuccessRedirectUrl must be an absolute https URL on an allowed origin";
  if (typeof value !== "string" || value === "") return `${rule}: it is empty`;
  if (value.length > MAX_SUCCESS_REDIRECT_URL_LENGTH) return `${rule}: at most ${MAX_SUCCESS_REDIRECT_URL_LENGTH} characters`;
  // The URL parser drops tabs and line breaks silently: refuse them before it sees the value.
  if (hasControlCharacter(value) || /\s/.test(value)) return `${rule}: it must not contain whitespace or control characters`;
  if (value.includes("\\")) return `${rule}: it must not contain backslashes`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `${rule}: it is not a URL`;
  }
  if (!isSecureOrLoopback(url)) return `${rule}: only https (or http on localhost) is accepted`;
  if (url.username !== "" || url.password !== "") return `${rule}: it must not carry credentials`;
  if (!allowedOrigins.includes(url.origin)) return `${rule}: its origin is not in MAGIC_LINK_REDIRECT_ORIGINS`;
  return undefined;
}
