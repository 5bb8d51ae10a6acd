// The client used as a frontend app would use it, against the running
// service: every value below is typed by the generated schema, with no
// cast anywhere (scripts/check-no-casts.mjs enforces it).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  cacheStatus,
  createUserApi,
  etag,
  notModified,
  rateLimit,
  requestId,
  retryAfter,
  type ErrorCode,
  type User,
  type UserApi,
} from "../src/index.js";
import { admin, baseUrl, unique } from "./env.js";

const password = "correct horse battery";

async function signUp(api: UserApi, name: string): Promise<User> {
  const username = unique(name);
  const { data, error, response } = await api.client.POST("/api/v1/auth/register", {
    body: { username, email: `${username}@example.com`, password },
  });
  assert.equal(error, undefined);
  assert.ok(data, `register answered ${response.status}`);
  assert.equal(response.status, 201);
  assert.equal(response.headers.get("Location"), `/api/v1/users/${data.id}`);
  return data;
}

async function signedIn(name: string): Promise<{ api: UserApi; user: User }> {
  const api = createUserApi({ baseUrl });
  const user = await signUp(api, name);
  const { data } = await api.login(user.username, password);
  assert.ok(data);
  return { api, user };
}

test("a visitor registers, logs in with JSON and with a form, and reads itself", async () => {
  const api = createUserApi({ baseUrl });
  const user = await signUp(api, "reader");
  assert.equal(user.role, "user");

  const json = await api.login(user.username, password);
  assert.ok(json.data);
  const tokenType: "bearer" = json.data.token_type;
  assert.equal(tokenType, "bearer");
  assert.ok(json.data.expires_in > 0);

  const me = await api.client.GET("/api/v1/users/me");
  assert.ok(me.data);
  assert.equal(me.data.id, user.id);
  assert.equal(me.data.email, user.email);
  assert.ok(cacheStatus(me.response) !== null);
  assert.ok(etag(me.response));

  // A second login (as a form) ends the first session: single login.
  const firstToken = json.data.access_token;
  const form = await api.login(user.username, password, { form: true });
  assert.ok(form.data);
  assert.notEqual(form.data.access_token, firstToken);
  const again = await api.client.GET("/api/v1/users/me");
  assert.equal(again.data?.username, user.username);
  const stale = await api.client.GET("/api/v1/users/me", {
    headers: { Authorization: `Bearer ${firstToken}` },
  });
  assert.equal(stale.response.status, 401);
  const code: ErrorCode | undefined = stale.error?.error.code;
  assert.equal(code, "unauthorized");
});

test("a user reads another user, and revalidates the copy it holds with its ETag after an update", async () => {
  const { api: alice } = await signedIn("alice");
  const { api: bob, user: bobUser } = await signedIn("bob");
  const path = { params: { path: { id: bobUser.id } } };

  const first = await alice.client.GET("/api/v1/users/{id}", path);
  assert.ok(first.data);
  assert.equal(first.data.username, bobUser.username);
  const tag = etag(first.response);
  assert.ok(tag);

  const cached = await alice.client.GET("/api/v1/users/{id}", path);
  assert.equal(cacheStatus(cached.response), "HIT");
  assert.equal(etag(cached.response), tag);

  const unchanged = await alice.client.GET("/api/v1/users/{id}", {
    params: { path: { id: bobUser.id }, header: { "If-None-Match": tag } },
  });
  assert.ok(notModified(unchanged.response));
  assert.equal(etag(unchanged.response), tag);

  const renamed = unique("robert");
  const update = await bob.client.PUT("/api/v1/users/{id}", {
    params: { path: { id: bobUser.id } },
    body: { username: renamed },
  });
  assert.ok(update.data, `update answered ${update.response.status}`);
  assert.equal(update.data.username, renamed);

  const changed = await alice.client.GET("/api/v1/users/{id}", {
    params: { path: { id: bobUser.id }, header: { "If-None-Match": tag } },
  });
  assert.equal(notModified(changed.response), false);
  assert.ok(changed.data);
  assert.equal(changed.data.username, renamed);
  assert.equal(cacheStatus(changed.response), "MISS");
  const newTag = etag(changed.response);
  assert.ok(newTag);
  assert.notEqual(newTag, tag);
});

test("an invalid registration is refused with a typed validation error naming each field", async () => {
  const api = createUserApi({ baseUrl });
  const { data, error, response } = await api.client.POST("/api/v1/auth/register", {
    body: { username: unique("invalid"), email: "not-an-address", password: "short" },
  });
  assert.equal(data, undefined);
  assert.ok(error);
  assert.equal(response.status, 422);
  const code: ErrorCode = error.error.code;
  assert.equal(code, "validation_failed");
  const fields = (error.error.details ?? []).map((detail) => detail.field).sort();
  assert.deepEqual(fields, ["email", "password"]);
  assert.equal(error.error.request_id, requestId(response));
});

test("an admin pages through users and evicts a user's cache entries", async () => {
  const api = createUserApi({ baseUrl });
  const login = await api.login(admin.username, admin.password);
  assert.ok(login.data, `admin login answered ${login.response.status}`);
  const created: number[] = [];
  for (const name of ["page_a", "page_b", "page_c"]) {
    created.push((await signUp(api, name)).id);
  }

  const seen: number[] = [];
  let after: number | null = null;
  for (let page = 0; page < 1000; page += 1) {
    const query: { limit: number; after_id?: number } =
      after === null ? { limit: 2 } : { limit: 2, after_id: after };
    const { data } = await api.client.GET("/api/v1/users", { params: { query } });
    assert.ok(data);
    assert.ok(data.items.length <= 2);
    seen.push(...data.items.map((user) => user.id));
    after = data.next_after_id;
    if (after === null) {
      break;
    }
  }
  assert.equal(after, null, "the last page has no next_after_id");
  for (const id of created) {
    assert.ok(seen.includes(id), `user ${id} was not listed`);
  }
  assert.deepEqual([...seen].sort((a, b) => a - b), seen, "pages are in ascending id order");

  const target = created[0];
  assert.ok(target !== undefined);
  await api.client.GET("/api/v1/users/{id}", { params: { path: { id: target } } });
  const evicted = await api.client.DELETE("/api/v1/admin/cache/keys", {
    params: { query: { suffix: `:${target}` } },
  });
  assert.ok(evicted.data, `eviction answered ${evicted.response.status}`);
  assert.ok(evicted.data.deleted >= 1);
  const reread = await api.client.GET("/api/v1/users/{id}", { params: { path: { id: target } } });
  assert.equal(cacheStatus(reread.response), "MISS");

  const nothing = await api.client.DELETE("/api/v1/admin/cache/keys", {
    params: { query: { prefix: unique("nothing:") } },
  });
  assert.equal(nothing.response.status, 404);
  assert.equal(nothing.error?.error.code, "not_found");

  const stats = await api.client.GET("/api/v1/admin/cache/stats");
  assert.ok(stats.data);
  const ratio: number | null = stats.data.hit_ratio;
  assert.ok(ratio === null || (ratio >= 0 && ratio <= 1));
});

test("logins over the limit get a 429 whose Retry-After and RateLimit headers agree", async () => {
  // A client of its own (the service trusts the loopback proxy here), so
  // that the other tests' logins do not count against this limit.
  const client = `198.51.100.${1 + Math.floor(Math.random() * 250)}`;
  const api = createUserApi({
    baseUrl,
    fetch: (input, init) => {
      const request = new Request(input, init);
      request.headers.set("X-Forwarded-For", client);
      return fetch(request);
    },
  });
  const account = unique("nobody");
  const first = await api.login(account, "wrong password");
  assert.equal(first.error?.error.code, "invalid_credentials");
  const limits = rateLimit(first.response);
  assert.ok(limits, "login answers carry RateLimit headers");
  let refused = first;
  for (let attempt = 1; attempt <= limits.limit && refused.response.status !== 429; attempt += 1) {
    refused = await api.login(account, "wrong password");
  }
  assert.equal(refused.response.status, 429);
  assert.equal(refused.error?.error.code, "rate_limited");
  const wait = retryAfter(refused.response);
  assert.ok(wait !== null && wait >= 1);
  const headers = rateLimit(refused.response);
  assert.ok(headers);
  assert.equal(headers.limit, limits.limit);
  assert.equal(headers.remaining, 0);
  assert.equal(headers.reset, wait);
});

test("a refused access token is refreshed once for the calls refused together, which are sent again", async () => {
  let refreshes = 0;
  const api = createUserApi({
    baseUrl,
    fetch: (input, init) => {
      const request = new Request(input, init);
      refreshes += Number(new URL(request.url).pathname === "/api/v1/auth/refresh");
      return fetch(request);
    },
  });
  const user = await signUp(api, "refresher");
  const login = await api.login(user.username, password);
  assert.ok(login.data);
  const before = login.data;
  assert.ok(before.refresh_expires_in > before.expires_in);

  // As if the access token had expired: refused, while the refresh token is good.
  api.tokens.set({ ...before, access_token: `${before.access_token}0` });
  const [me, read] = await Promise.all([
    api.client.GET("/api/v1/users/me"),
    api.client.GET("/api/v1/users/{id}", { params: { path: { id: user.id } } }),
  ]);
  assert.equal(me.data?.id, user.id);
  assert.equal(read.data?.id, user.id);
  assert.equal(refreshes, 1);
  const after = api.tokens.get();
  assert.ok(after);
  assert.notEqual(after.refresh_token, before.refresh_token);

  const sessions = await api.client.GET("/api/v1/auth/sessions");
  assert.ok(sessions.data);
  assert.equal(sessions.data.items.filter((session) => session.current).length, 1);

  // Logging out ends the refresh token too.
  await api.logout();
  const spent = await api.client.POST("/api/v1/auth/refresh", { body: { refresh_token: after.refresh_token } });
  assert.equal(spent.response.status, 401);
  assert.equal(spent.error?.error.code, "unauthorized");
});

test("logging out ends the session: its token is refused afterwards", async () => {
  const { api } = await signedIn("leaver");
  const token = api.tokens.get();
  assert.ok(token);
  const logout = await api.logout();
  assert.equal(logout.response.status, 204);
  assert.equal(api.tokens.get(), null);

  const after = await api.client.GET("/api/v1/users/me", {
    headers: { Authorization: `Bearer ${token.access_token}` },
  });
  assert.equal(after.response.status, 401);
  assert.equal(after.error?.error.code, "unauthorized");
  assert.equal(after.response.headers.get("WWW-Authenticate"), "Bearer");
});
