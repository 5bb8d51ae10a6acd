// A thin layer over openapi-fetch: the typed client for every operation of
// the document (src/schema.d.ts, generated), bearer tokens attached for
// you and refreshed when the access token is refused, and typed readers for
// the headers the API sends.

import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, paths } from "./schema.js";

type Schemas = components["schemas"];
type Headers = components["headers"];

export type User = Schemas["User"];
export type Tokens = Schemas["TokenResponse"];
export type ErrorResponse = Schemas["ErrorResponse"];
export type ErrorCode = Schemas["ErrorCode"];
export type FieldError = Schemas["FieldError"];
export type CacheStatus = Headers["X-Cache"];
export type UserApiClient = Client<paths>;

/** Where the tokens of the signed-in user live between calls. */
export interface TokenStore {
  get(): Tokens | null;
  set(tokens: Tokens | null): void;
}

/** Tokens kept in memory: gone on reload, out of reach of other scripts. */
export function memoryTokenStore(): TokenStore {
  let current: Tokens | null = null;
  return {
    get: () => current,
    set: (tokens) => {
      current = tokens;
    },
  };
}

export interface UserApiOptions {
  /** Where the API is: `""` for the page's own origin, else e.g. `https://api.example.com`. */
  baseUrl: string;
  tokens?: TokenStore;
  /** For tests and server-side rendering; the global `fetch` by default. */
  fetch?: typeof globalThis.fetch;
}

/** Calls that never carry, nor renew, the stored access token. */
const TOKEN_CALLS: ReadonlySet<string> = new Set(["/api/v1/auth/login", "/api/v1/auth/refresh"]);

/**
 * Sends the stored access token on every request that has none of its own
 * and, when the service refuses it (401: expired, or Redis restarted empty),
 * refreshes the tokens once — one refresh for all the calls refused at the
 * same time — and sends the request again with the new access token.
 */
function bearer(tokens: TokenStore, refresh: () => Promise<boolean>, send: typeof globalThis.fetch): Middleware {
  // A copy of each request sent with the stored tokens, in case it must be sent again.
  const sent = new Map<string, { copy: Request; tokens: Tokens }>();
  return {
    onRequest({ request, schemaPath, id }) {
      const current = tokens.get();
      if (current === null || TOKEN_CALLS.has(schemaPath) || request.headers.has("Authorization")) {
        return request;
      }
      request.headers.set("Authorization", `Bearer ${current.access_token}`);
      sent.set(id, { copy: request.clone(), tokens: current });
      return request;
    },
    async onResponse({ response, id }) {
      const request = sent.get(id);
      sent.delete(id);
      if (request === undefined || response.status !== 401) {
        return response;
      }
      // Tokens renewed since this request left need no refresh of their own.
      const renewed = tokens.get() !== request.tokens || (await refresh());
      const current = tokens.get();
      if (!renewed || current === null) {
        return response;
      }
      request.copy.headers.set("Authorization", `Bearer ${current.access_token}`);
      return send(request.copy);
    },
  };
}

function loginCall(client: UserApiClient, username: string, password: string, form: boolean) {
  const body = { username, password };
  if (form) {
    return client.POST("/api/v1/auth/login", {
      body,
      bodySerializer: (fields) => new URLSearchParams(fields),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
  }
  return client.POST("/api/v1/auth/login", { body });
}

function logoutCall(client: UserApiClient) {
  return client.POST("/api/v1/auth/logout");
}

function refreshCall(client: UserApiClient, refreshToken: string) {
  return client.POST("/api/v1/auth/refresh", { body: { refresh_token: refreshToken } });
}

export type LoginResult = Awaited<ReturnType<typeof loginCall>>;
export type LogoutResult = Awaited<ReturnType<typeof logoutCall>>;

export interface LoginOptions {
  /** Send `application/x-www-form-urlencoded`, as an HTML form would, instead of JSON. */
  form?: boolean;
}

export interface UserApi {
  /** Every operation, typed: `api.client.GET("/api/v1/users/{id}", ...)`. */
  client: UserApiClient;
  tokens: TokenStore;
  /** Logs in and keeps the tokens for the calls that follow. */
  login(username: string, password: string, options?: LoginOptions): Promise<LoginResult>;
  /**
   * Trades the stored refresh token for a new pair; false (and the tokens
   * forgotten) when the session has ended. Calls refused with 401 do this
   * by themselves: call it only to refresh ahead of time.
   */
  refresh(): Promise<boolean>;
  /** Ends the session on the server, then forgets the tokens (even if the server call failed). */
  logout(): Promise<LogoutResult>;
}

export function createUserApi(options: UserApiOptions): UserApi {
  const tokens = options.tokens ?? memoryTokenStore();
  const send = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const client = createClient<paths>({ baseUrl: options.baseUrl, fetch: send });

  // Concurrent callers share one refresh: a refresh token is spent by use.
  let refreshing: Promise<boolean> | null = null;
  async function refreshOnce(): Promise<boolean> {
    const current = tokens.get();
    if (current === null) {
      return false;
    }
    const { data } = await refreshCall(client, current.refresh_token);
    // Only replace what this refresh was for: a login meanwhile wins.
    if (tokens.get() === current) {
      tokens.set(data ?? null);
    }
    return data !== undefined;
  }
  function refresh(): Promise<boolean> {
    refreshing ??= refreshOnce().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  client.use(bearer(tokens, refresh, send));
  return {
    client,
    tokens,
    refresh,
    async login(username, password, loginOptions) {
      const result = await loginCall(client, username, password, loginOptions?.form ?? false);
      if (result.data !== undefined) {
        tokens.set(result.data);
      }
      return result;
    },
    async logout() {
      try {
        return await logoutCall(client);
      } finally {
        tokens.set(null);
      }
    },
  };
}

// Typed readers for the headers the document declares (components.headers).
// `fetch` hands every header over as a string: these parse and check them.

function integerHeader(response: Response, name: string): number | null {
  const value = response.headers.get(name);
  if (value === null || !/^\d+$/.test(value)) {
    return null;
  }
  return Number.parseInt(value, 10);
}

export interface RateLimit {
  limit: Headers["RateLimit-Limit"];
  remaining: Headers["RateLimit-Remaining"];
  /** Seconds until the full limit is back; on a 429, until a request is allowed (= `Retry-After`). */
  reset: Headers["RateLimit-Reset"];
}

/** `RateLimit-Limit`, `-Remaining` and `-Reset`, sent on every `/api` response. */
export function rateLimit(response: Response): RateLimit | null {
  const limit = integerHeader(response, "RateLimit-Limit");
  const remaining = integerHeader(response, "RateLimit-Remaining");
  const reset = integerHeader(response, "RateLimit-Reset");
  if (limit === null || remaining === null || reset === null) {
    return null;
  }
  return { limit, remaining, reset };
}

/** Seconds to wait, on a 429, a 503, and a 409 `update_in_progress`. */
export function retryAfter(response: Response): Headers["Retry-After"] | null {
  return integerHeader(response, "Retry-After");
}

/** The representation's `ETag`: send it back as `If-None-Match`. */
export function etag(response: Response): Headers["ETag"] | null {
  return response.headers.get("ETag");
}

/** `HIT` or `MISS`: whether a user came from the cache. */
export function cacheStatus(response: Response): CacheStatus | null {
  const value = response.headers.get("X-Cache");
  return value === "HIT" || value === "MISS" ? value : null;
}

/** The id to quote when reporting a problem (also `error.request_id` in error bodies). */
export function requestId(response: Response): Headers["X-Request-Id"] | null {
  return response.headers.get("X-Request-Id");
}

/**
 * True for a 304 to a request sent with `If-None-Match`: the copy you hold
 * is current. Check it before `error`: openapi-fetch reports a 304 (which is
 * not `ok`) in `error`, as an empty string, whatever its type says.
 */
export function notModified(response: Response): boolean {
  return response.status === 304;
}
