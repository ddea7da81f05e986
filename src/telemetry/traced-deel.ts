/**
 * Deel calls as spans, from two decorators of `DeelApi` that leave the Deel layer untouched:
 *
 * - `outer` wraps the resilient API (deadline, budget, retries, breaker): it marks the call in the
 *   OpenTelemetry context so that its attempts can be counted;
 * - `inner` wraps the HTTP client the resilient layer calls once per attempt: one CLIENT span per
 *   attempt, named after the endpoint's method and route template (never the concrete path, which
 *   holds a profile id), with its status, attempt number, Deel's request id (Deel puts one in its
 *   error answers and in a replay's `x-original-request-id`; a plain success carries none) and the
 *   `x-request-id` we sent.
 *
 * Never recorded: the worker token (a create's result, a magic link's input), the magic link, the
 * organization token, any header. A failure records the error's kind only, not its message.
 */
import { context, createContextKey, SpanKind, SpanStatusCode, type Tracer } from "@opentelemetry/api";
import { DEEL_ENDPOINTS, type DeelEndpoint } from "../base/deel-endpoints.js";
import type { ProfileId } from "../base/profile-id.js";
import { isDeelError } from "../deel/errors.js";
import type { CallOptions, DeelApi, DeelRevocation, MagicLink, MagicLinkRequest, MintedSession } from "../deel/types.js";

/** The attempts made so far by the Deel call this context belongs to. */
interface CallState {
  attempts: number;
}
const CALL = createContextKey("worker-session-gateway.deel-call");

/** What a successful attempt answered (the client reports no status on success; the contract fixes it). */
const SUCCESS_STATUS: Record<DeelEndpoint, number> = {
  [DEEL_ENDPOINTS.createSession]: 201,
  [DEEL_ENDPOINTS.revokeSession]: 204,
  [DEEL_ENDPOINTS.createMagicLink]: 201,
};

export interface DeelTracing {
  /** Wraps the resilient API: each call counts its own attempts. */
  readonly outer: (api: DeelApi) => DeelApi;
  /** Wraps the HTTP client: one span per attempt. */
  readonly inner: (client: DeelApi) => DeelApi;
}

/** The Deel decorators for `tracer`; `serverAddress` is Deel's host, recorded as `server.address`. */
export function deelTracing(tracer: Tracer, serverAddress: string): DeelTracing {
  function call<T>(run: () => Promise<T>): Promise<T> {
    const state: CallState = { attempts: 0 };
    return context.with(context.active().setValue(CALL, state), run);
  }

  async function attempt<T extends { deelRequestId?: string }>(endpoint: DeelEndpoint, options: CallOptions | undefined, run: () => Promise<T>): Promise<T> {
    const state = context.active().getValue(CALL) as CallState | undefined;
    const number = state === undefined ? 1 : (state.attempts += 1);
    const [method, template] = endpoint.split(" ", 2) as [string, string];
    const span = tracer.startSpan(endpoint, {
      kind: SpanKind.CLIENT,
      attributes: {
        "http.request.method": method,
        "url.template": template,
        "server.address": serverAddress,
        "deel.attempt": number,
        // The OpenTelemetry HTTP convention's name for it: 0 on the first attempt.
        "http.request.resend_count": number - 1,
      },
    });
    // Our request id, sent to Deel as `x-request-id` so that its logs and this span correlate.
    if (options?.requestId !== undefined) span.setAttribute("http.request.header.x-request-id", [options.requestId]);
    try {
      const result = await run();
      span.setAttribute("http.response.status_code", SUCCESS_STATUS[endpoint]);
      if (result.deelRequestId !== undefined) span.setAttribute("deel.request_id", result.deelRequestId);
      return result;
    } catch (error) {
      if (isDeelError(error)) {
        if (error.status !== undefined) span.setAttribute("http.response.status_code", error.status);
        if (error.deelRequestId !== undefined) span.setAttribute("deel.request_id", error.deelRequestId);
        span.setAttribute("error.type", error.kind);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error.kind });
      } else {
        span.setAttribute("error.type", "error");
        span.setStatus({ code: SpanStatusCode.ERROR });
      }
      throw error;
    } finally {
      span.end();
    }
  }

  return {
    outer: (api) => {
      const traced: DeelApi = {
        createSession: (profileId: ProfileId, key: string, options?: CallOptions) => call(() => api.createSession(profileId, key, options)),
        revokeSession: (profileId: ProfileId, options?: CallOptions) => call(() => api.revokeSession(profileId, options)),
      };
      if (api.createMagicLink !== undefined) {
        const createMagicLink = api.createMagicLink.bind(api);
        traced.createMagicLink = (workerToken: string, request: MagicLinkRequest, options?: CallOptions) =>
          call(() => createMagicLink(workerToken, request, options));
      }
      return traced;
    },
    inner: (client) => {
      const traced: DeelApi = {
        createSession: (profileId: ProfileId, key: string, options?: CallOptions): Promise<MintedSession> =>
          attempt(DEEL_ENDPOINTS.createSession, options, () => client.createSession(profileId, key, options)),
        revokeSession: (profileId: ProfileId, options?: CallOptions): Promise<DeelRevocation> =>
          attempt(DEEL_ENDPOINTS.revokeSession, options, () => client.revokeSession(profileId, options)),
      };
      if (client.createMagicLink !== undefined) {
        const createMagicLink = client.createMagicLink.bind(client);
        traced.createMagicLink = (workerToken: string, request: MagicLinkRequest, options?: CallOptions): Promise<MagicLink> =>
          attempt(DEEL_ENDPOINTS.createMagicLink, options, () => createMagicLink(workerToken, request, options));
      }
      return traced;
    },
  };
}
