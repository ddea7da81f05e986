/**
 * The Deel REST client: the two worker-session calls and the magic link, over one pooled undici dispatcher.
 *
 * Defensive on purpose: undici's defaults trust the peer (300 s timeouts, bodies of any size), and
 * this client carries a key that can impersonate any worker. So: `dispatcher.request` (never
 * `fetch`: no redirect is ever followed, the token cannot travel to another origin), a whole-call
 * deadline, bounded connections and response bodies, paths built only from a `ProfileId` (checked at
 * the edge) and asserted before sending, and errors that never hold a token or the upstream body. It never logs: callers log the `DeelError` it throws.
 * What an answer means (success bodies, error envelopes, status → error kind) is read in response.ts
 * (magic-link.ts for `POST /magic-link`).
 */
import { Pool, type Dispatcher } from "undici";
import { BodyTooLargeError, readBoundedBody } from "../base/bounded-body.js";
import { sleepUntil, systemClock, type Clock } from "../base/clock.js";
import { DEEL_ENDPOINTS, type DeelEndpoint } from "../base/deel-endpoints.js";
import { DeelError } from "./errors.js";
import { MAX_IDEMPOTENCY_KEY_LENGTH } from "../base/idempotency-key.js";
import { checkWorkerToken, magicLinkBody, magicLinkErrorFor, magicLinkFrom } from "./magic-link.js";
import type { ProfileId } from "../base/profile-id.js";
import { MAX_RESPONSE_BYTES, errorForResponse, isEmptyBody, mintedSessionFrom, type RawResponse } from "./response.js";
import { errorCode, neverSent } from "./transport-errors.js";
import type { CallOptions, DeelApi, MagicLink, MagicLinkRequest, MintedSession, DeelRevocation } from "./types.js";

export { MAX_RESPONSE_BYTES, extractDeelRequestId, parseRetryAfter } from "./response.js";

/** Construction options. */
export interface DeelClientOptions {
  /** Deel base URL including its path prefix, e.g. `https://api.letsdeel.com/rest/v2` (trailing slash fine). */
  baseUrl: string;
  /** The organization token (`admin:worker`). Sent only to `baseUrl`'s origin. */
  token: string;
  /**
   * The safety bound, in milliseconds: the whole-call limit of a call that brings no
   * `CallOptions.deadline`, and the per-phase limit (connect, headers, body) of the client's own pool.
   * A call with a deadline (the resilience layer always passes one) is aborted at that deadline.
   */
  timeoutMs: number;
  /** Where "now" comes from, and what times the abort at the deadline. Default: the real clock. */
  clock?: Clock;
  /** A dispatcher to use instead of the client's own pool (tests: MockAgent). Not closed by `close()`. */
  dispatcher?: Dispatcher;
  /** `user-agent` header. */
  userAgent?: string;
}

/** Connections kept to the Deel origin; Deel's own 5 rps budget makes more pointless. */
const POOL_CONNECTIONS = 16;
const DEFAULT_USER_AGENT = "worker-session-gateway/0.1";

type Operation = DeelEndpoint;
const { createSession: CREATE, revokeSession: REVOKE, createMagicLink: MAGIC_LINK } = DEEL_ENDPOINTS;

/**
 * HTTP client for Deel's worker-session endpoints. Implements `DeelApi`; every failure is a
 * `DeelError` (see errors.ts for the kinds).
 */
export class DeelClient implements DeelApi {
  private readonly origin: string;
  private readonly basePath: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly userAgent: string;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private closing: Promise<void> | undefined;

  constructor(options: DeelClientOptions) {
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new TypeError("DeelClient: baseUrl is not a valid URL");
    }
    if (base.protocol !== "https:" && base.protocol !== "http:") throw new TypeError("DeelClient: baseUrl must be http(s)");
    if (base.username || base.password || base.search || base.hash) {
      throw new TypeError("DeelClient: baseUrl must not carry credentials, a query or a fragment");
    }
    if (typeof options.token !== "string" || !/^[\x21-\x7e]+$/.test(options.token)) {
      // Checked here so that a bad token fails at start-up, not as an undici error on the first call.
      throw new TypeError("DeelClient: token must be a non-empty string of visible ASCII characters");
    }
    if (!Number.isFinite(options.timeoutMs) || options.timeoutMs <= 0) throw new TypeError("DeelClient: timeoutMs must be positive");

    this.origin = base.origin;
    this.basePath = base.pathname.replace(/\/+$/, "");
    this.token = options.token;
    this.timeoutMs = options.timeoutMs;
    this.clock = options.clock ?? systemClock;
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    if (options.dispatcher) {
      this.dispatcher = options.dispatcher;
      this.ownsDispatcher = false;
    } else {
      this.dispatcher = new Pool(this.origin, {
        connections: POOL_CONNECTIONS,
        // Per-phase bounds as the safety line behind the call's deadline (undici's defaults are 300 s).
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        connect: { timeout: Math.min(this.timeoutMs, 10_000) },
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
      });
      this.ownsDispatcher = true;
    }
  }

  /**
   * Mints a worker token (`POST {base}/workers/session`). `idempotencyKey` is sent as-is (derive it
   * with `deriveIdempotencyKey`). Resolves only on a 201 with a token and a valid `expires_at`.
   * `replayed` is true when Deel answered with `x-original-request-id`; `deelRequestId` is then that
   * original id (a success body carries none of its own).
   */
  async createSession(profileId: ProfileId, idempotencyKey: string, options: CallOptions = {}): Promise<MintedSession> {
    const path = this.pathFor(CREATE, profileId);
    if (typeof idempotencyKey !== "string" || idempotencyKey.length === 0 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
      throw new DeelError("invalid_input", `Idempotency key must be 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
    }
    if (!/^[\x21-\x7e]+$/.test(idempotencyKey)) {
      // A header value: control characters would be refused by undici (or worse, split a header).
      throw new DeelError("invalid_input", "Idempotency key must be visible ASCII characters");
    }
    const body = JSON.stringify({ data: { profile_id: profileId } });
    const res = await this.exchange(CREATE, "POST", path, options, body, { "idempotency-key": idempotencyKey });

    if (res.status === 201 && res.body !== undefined) {
      const minted = mintedSessionFrom(res);
      if (minted !== undefined) return minted;
      throw new DeelError("bad_response", `Deel answered 201 without a usable token and expires_at on ${CREATE}`, { status: 201 });
    }
    throw errorForResponse(CREATE, res);
  }

  /**
   * Revokes the worker's token (`DELETE {base}/workers/{profileId}/session`). Success is a 204, or a
   * 200 with an empty or `{}` body; any other 2xx is a `bad_response`.
   */
  async revokeSession(profileId: ProfileId, options: CallOptions = {}): Promise<DeelRevocation> {
    const path = this.pathFor(REVOKE, profileId);
    const res = await this.exchange(REVOKE, "DELETE", path, options);
    if (res.status === 204) return {};
    if (res.status === 200 && res.body !== undefined && isEmptyBody(res.body)) return {};
    throw errorForResponse(REVOKE, res);
  }

  /**
   * Turns a worker token into a magic link (`POST {base}/magic-link`). The worker token, not the
   * organization's, authorizes this call; it is scrubbed from every error like the organization's.
   * Resolves only on a 2xx whose `magic_link` is an https URL and whose `expires_at` is a valid
   * date-time; a 401/403 is `worker_token_refused`. Deel takes no Idempotency-Key here: each
   * accepted call makes another link (see resilient.ts on why a retry is harmless).
   */
  async createMagicLink(workerToken: string, request: MagicLinkRequest, options: CallOptions = {}): Promise<MagicLink> {
    checkWorkerToken(workerToken);
    const body = magicLinkBody(request);
    const path = `${this.basePath}/magic-link`;
    const res = await this.exchange(MAGIC_LINK, "POST", path, options, body, {}, workerToken);
    if ((res.status === 201 || res.status === 200) && res.body !== undefined) {
      const link = magicLinkFrom(res);
      if (link !== undefined) return link;
      throw new DeelError("bad_response", `Deel answered ${res.status} without an https magic_link and a valid expires_at on ${MAGIC_LINK}`, {
        status: res.status,
      });
    }
    throw magicLinkErrorFor(res);
  }

  /** Closes the client's own pool (a dispatcher passed in belongs to the caller and stays open). */
  close(): Promise<void> {
    this.closing ??= this.ownsDispatcher ? this.dispatcher.close() : Promise.resolve();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------

  /**
   * Builds the path from a `ProfileId` (a UUID, checked at the edge) and asserts the result before
   * anything is sent: belt and braces against any future change to the encoding.
   */
  private pathFor(operation: Operation, profileId: ProfileId): string {
    const path =
      operation === CREATE ? `${this.basePath}/workers/session` : `${this.basePath}/workers/${encodeURIComponent(profileId)}/session`;
    const expected = operation === CREATE ? `${this.basePath}/workers/session` : `${this.basePath}/workers/${profileId}/session`;
    const resolved = new URL(path, this.origin);
    if (path !== expected || resolved.origin !== this.origin || resolved.pathname !== expected || resolved.search !== "") {
      throw new DeelError("invalid_input", "profileId does not form a safe Deel path");
    }
    return path;
  }

  /**
   * One HTTP exchange, aborted at the call's deadline; transport failures become `unavailable`.
   * The deadline is the caller's (`CallOptions.deadline`: the resilience layer computes it once per
   * call); this method only turns it into an abort, timed on the client's clock. A call without
   * one gets `timeoutMs` from now. `bearer` is the token that authorizes it: the organization's,
   * or a worker's for the magic link.
   */
  private async exchange(
    operation: Operation,
    method: "POST" | "DELETE",
    path: string,
    options: CallOptions,
    body?: string,
    extraHeaders: Record<string, string> = {},
    bearer: string = this.token,
  ): Promise<RawResponse> {
    const callerSignal = options.signal;
    if (callerSignal?.aborted) {
      throw new DeelError("unavailable", `The call to Deel was aborted by the caller before ${operation}`, { mayHaveMinted: false });
    }
    const sentAt = this.clock.now();
    const abortAt = options.deadline ?? sentAt + this.timeoutMs;
    const limitMs = Math.floor(abortAt - sentAt);
    if (!(limitMs > 0)) {
      throw new DeelError("unavailable", `The deadline passed before ${operation} could be sent to Deel`, { mayHaveMinted: false });
    }
    const deadline = new AbortController();
    const exchanged = new AbortController();
    // Fires at the deadline as the clock reads it, however late its timer wakes; cleared when the exchange ends.
    void sleepUntil(this.clock, abortAt, exchanged.signal).then(
      // The reason AbortSignal.timeout gives, so what a cut-off request reports stays the same.
      () => deadline.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
      () => undefined,
    );
    const signal = callerSignal ? AbortSignal.any([deadline.signal, callerSignal]) : deadline.signal;

    const headers: Record<string, string> = {
      authorization: `Bearer ${bearer}`,
      accept: "application/json",
      "user-agent": this.userAgent,
      ...extraHeaders,
    };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (options.requestId !== undefined && /^[\x21-\x7e]{1,200}$/.test(options.requestId)) {
      headers["x-request-id"] = options.requestId;
    }

    try {
      const response = await this.dispatcher.request({
        origin: this.origin,
        path,
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal,
      });
      const received = await this.readBounded(response.body);
      return { status: response.statusCode, headers: response.headers, body: received, receivedAt: this.clock.now() };
    } catch (error) {
      if (error instanceof DeelError) throw error;
      const cause = this.safeCause(error, bearer);
      // A request cut off by a deadline or an abort may already have been written (this client does
      // not see when it was): Deel may have acted on it. Only a connect-phase failure says it never left.
      if (deadline.signal.aborted) {
        throw new DeelError("unavailable", `Deel did not answer within ${limitMs}ms on ${operation}`, { cause, mayHaveMinted: true });
      }
      if (callerSignal?.aborted) {
        throw new DeelError("unavailable", `The call to Deel was aborted by the caller during ${operation}`, { cause, mayHaveMinted: true });
      }
      const code = errorCode(error);
      const mayHaveMinted = !neverSent(error);
      throw new DeelError("unavailable", `Could not reach Deel on ${operation}${code ? ` (${code})` : ""}`, { cause, mayHaveMinted });
    } finally {
      exchanged.abort();
    }
  }

  /** Reads at most MAX_RESPONSE_BYTES; undefined (and the stream destroyed) when there is more. */
  private async readBounded(body: Dispatcher.ResponseData["body"]): Promise<Buffer | undefined> {
    try {
      return await readBoundedBody(body, MAX_RESPONSE_BYTES);
    } catch (error) {
      if (error instanceof BodyTooLargeError) {
        body.destroy();
        return undefined;
      }
      throw error;
    }
  }

  /**
   * A copy of a transport error fit to keep as `cause`: name, code and message only, with the token
   * scrubbed. Some undici errors (e.g. MockAgent's "not matched") print the request headers.
   */
  private safeCause(error: unknown, bearer: string = this.token): Error {
    const source = error instanceof Error ? error : new Error(String(error));
    const scrub = (text: string) =>
      text.split(this.token).join("[redacted]").split(bearer).join("[redacted]").replace(/Bearer\s+[^\s'",}]+/gi, "Bearer [redacted]");
    const copy = new Error(scrub(source.message));
    copy.name = source.name;
    copy.stack = `${copy.name}: ${copy.message}`;
    const code = errorCode(source);
    if (code !== undefined) (copy as Error & { code?: string }).code = code;
    return copy;
  }
}
