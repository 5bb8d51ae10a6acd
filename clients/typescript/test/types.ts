// Compile-time checks: the generated types say what the API sends, with
// no `unknown` and no optional where the service always sends a value.
// Nothing runs here; `tsc` fails when one of them stops holding.

import type { components, paths } from "../src/schema.js";

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function holds<T extends true>(): T | undefined {
  return undefined;
}

type Responses<P extends keyof paths, M extends "get" | "put" | "post" | "delete"> = paths[P][M] extends {
  responses: infer R;
}
  ? R
  : never;

type GetUser = Responses<"/api/v1/users/{id}", "get">;
type Login = Responses<"/api/v1/auth/login", "post">;
type Schemas = components["schemas"];

export const checks = [
  // Headers of the cache-aside read, on 200 and on 304.
  holds<Equal<GetUser[200]["headers"]["X-Cache"], "HIT" | "MISS">>(),
  holds<Equal<GetUser[200]["headers"]["ETag"], string>>(),
  holds<Equal<GetUser[304]["headers"]["ETag"], string>>(),
  holds<Equal<GetUser[304]["headers"]["X-Cache"], "HIT" | "MISS">>(),
  holds<Equal<GetUser[304]["content"], undefined>>(), // no body
  holds<Equal<GetUser[200]["headers"]["RateLimit-Remaining"], number>>(),
  holds<Equal<GetUser[200]["headers"]["X-Request-Id"], string>>(),
  // The limiter's answer, and 401's challenge.
  holds<Equal<Login[429]["headers"]["Retry-After"], number>>(),
  // Absent when the connection guard, not the limiter, answered the 429.
  holds<Equal<Login[429]["headers"]["RateLimit-Reset"], number | undefined>>(),
  holds<Equal<GetUser[401]["headers"]["WWW-Authenticate"], string>>(),
  holds<Equal<GetUser[500]["content"]["application/json"], Schemas["ErrorResponse"]>>(),
  holds<Equal<Responses<"/api/v1/auth/register", "post">[201]["headers"]["Location"], string>>(),
  // The error envelope.
  holds<Equal<Schemas["ErrorBody"]["request_id"], string>>(),
  holds<Equal<Schemas["ErrorBody"]["code"], Schemas["ErrorCode"]>>(),
  holds<Equal<Schemas["ErrorBody"]["details"], Schemas["FieldError"][] | undefined>>(),
  holds<Equal<"validation_failed" | "rate_limited" | "internal" extends Schemas["ErrorCode"] ? true : false, true>>(),
  // Always present, sometimes null.
  holds<Equal<Schemas["UserPage"]["next_after_id"], number | null>>(),
  holds<Equal<Schemas["CacheStats"]["hit_ratio"], number | null>>(),
  // Enums, not strings.
  holds<Equal<Schemas["TokenResponse"]["token_type"], "bearer">>(),
  holds<Equal<Schemas["TokenResponse"]["refresh_token"], string>>(),
  holds<Equal<Schemas["SessionResponse"]["user_agent"], string | null>>(),
  holds<Equal<Schemas["Readiness"]["status"], "ready" | "unavailable">>(),
  holds<Equal<Schemas["Checks"]["redis"], "ok" | "failing" | "timeout">>(),
  holds<Equal<Schemas["Liveness"]["status"], "ok">>(),
];
