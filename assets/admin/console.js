// The admin console. It calls the service's own API and nothing else; the
// access token lives in this page's memory only (never in storage), and a
// reload continues the session through the refresh cookie when the server
// offers one.
'use strict';

// Figures refresh every 5 s, or as often as `?refresh_ms=` asks (at least
// every 0.5 s); the chart keeps the last 120 refreshes.
const POLL_MS = Math.max(500, Number(new URLSearchParams(window.location.search).get('refresh_ms')) || 5000);
const CHART_SAMPLES = 120;
const CHART_SECONDS = Math.round((POLL_MS * CHART_SAMPLES) / 1000);
const CHART_SPAN = CHART_SECONDS % 60 === 0 && CHART_SECONDS > 60
  ? `${CHART_SECONDS / 60} minutes` : `${CHART_SECONDS} seconds`;
const EVERY = `${POLL_MS / 1000} second${POLL_MS === 1000 ? '' : 's'}`;

const state = {
  token: null,
  me: null,
  features: { refresh: false, audit: false, endSessions: false, search: false, disable: false },
  view: 'cache',
  timer: null,
  lastCache: null,
  samples: [],
  eviction: null,
  users: new Map(),
  usersNext: null,
  usersFilter: '',
  openUser: null,
  auditNext: null,
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- the API

class ApiError extends Error {
  constructor(status, code, details, retryAfter, requestId) {
    super(code);
    this.status = status;
    this.code = code;
    this.details = details || [];
    this.retryAfter = retryAfter;
    this.requestId = requestId;
  }
}

async function api(method, path, { body, headers = {}, retry = true } = {}) {
  const init = { method, headers: { ...headers }, credentials: 'same-origin', cache: 'no-store' };
  if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'network');
  }
  // An access token ends after a few minutes: the refresh cookie, when the
  // server has one, gets a new one without asking for the password again.
  if (response.status === 401 && retry && state.token && (await refresh())) {
    return api(method, path, { body, headers, retry: false });
  }
  if (!response.ok) {
    let error = {};
    try {
      error = (await response.json()).error || {};
    } catch {
      // Not the envelope (a proxy's page, say): the status tells enough.
    }
    throw new ApiError(response.status, error.code || `http_${response.status}`, error.details,
      response.headers.get('Retry-After'), error.request_id);
  }
  return response;
}

const getJson = async (path) => (await api('GET', path)).json();

async function refresh() {
  if (!state.features.refresh) return false;
  try {
    const response = await fetch('/api/v1/auth/refresh', { method: 'POST', credentials: 'same-origin' });
    if (!response.ok) return false;
    state.token = (await response.json()).access_token;
    return Boolean(state.token);
  } catch {
    return false;
  }
}

/** What the server offers: parts of this page wait for routes that a
 * server may not have yet. */
async function detectFeatures() {
  try {
    const response = await fetch('/openapi.json', { credentials: 'omit' });
    const spec = await response.json();
    const paths = spec.paths || {};
    const has = (path, method) => Boolean(paths[path] && paths[path][method]);
    const listing = has('/api/v1/users', 'get') ? paths['/api/v1/users'].get.parameters || [] : [];
    // The fields a user update takes, wherever the document keeps its schema.
    const resolve = (schema) => (schema && schema.$ref
      ? ((spec.components || {}).schemas || {})[schema.$ref.split('/').pop()] : schema) || {};
    const update = has('/api/v1/users/{id}', 'put') ? paths['/api/v1/users/{id}'].put.requestBody : null;
    const updateSchema = resolve(update && update.content && update.content['application/json']
      && update.content['application/json'].schema);
    state.features = {
      refresh: has('/api/v1/auth/refresh', 'post'),
      audit: has('/api/v1/admin/audit', 'get'),
      endSessions: has('/api/v1/users/{id}/sessions', 'delete'),
      search: listing.some((parameter) => parameter.name === 'q'),
      disable: Boolean(updateSchema.properties && updateSchema.properties.disabled),
    };
  } catch {
    // Without the document, the page offers only what every server has.
  }
}

// ----------------------------------------------------------- the page's words

const plural = (n, one, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;

function explain(error, words = {}) {
  const own = words[error.code];
  if (own) return typeof own === 'function' ? own(error) : own;
  const again = error.retryAfter ? ` Try again in ${error.retryAfter} s.` : ' Try again shortly.';
  switch (error.code) {
    case 'network': return 'The server could not be reached. Check the connection and try again.';
    case 'rate_limited': return `Too many requests from here for now.${again}`;
    case 'update_in_progress': return `Someone else is changing this user right now.${again}`;
    case 'unauthorized': return 'Your session has ended. Please sign in again.';
    case 'invalid_credentials': return 'That username or password is wrong.';
    case 'account_disabled': return 'This account is disabled.';
    case 'email_not_verified': return 'This account has not confirmed its e-mail address yet.';
    case 'forbidden': return 'Only admins may do this.';
    case 'not_found': return 'That no longer exists.';
    case 'conflict': return `That ${error.details.map((d) => d.field).join(' and ') || 'value'} is already taken.`;
    case 'precondition_failed': return 'Someone changed this meanwhile. It has been reloaded: check it and try again.';
    case 'payload_too_large': return 'That is too much text to send.';
    case 'validation_failed':
      return `Please check: ${error.details.map((d) => `${d.field.replace(/_/g, ' ')} ${d.message}`).join('; ') || 'the form'}.`;
    case 'unavailable': return `The service cannot answer right now (its cache or database is not responding).${again}`;
    default:
      return `Something went wrong on the server (status ${error.status}).${error.requestId ? ` Reference: ${error.requestId}.` : ''}`;
  }
}

function say(text, kind = 'info') {
  const notice = $('notice');
  notice.textContent = text;
  notice.className = `notice ${kind}`;
}

/** Runs an action; an ended session leads back to the sign-in form, any
 * other failure is told in the page's words. */
async function attempt(action, words) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    if (error.code === 'unauthorized') {
      signedOut(explain(error), 'error');
    } else {
      say(explain(error, words), 'error');
    }
    return undefined;
  }
}

// ---------------------------------------------------------------- session

async function signIn(event) {
  event.preventDefault();
  const username = $('sign-in-username').value.trim();
  const password = $('sign-in-password').value;
  say('Signing in…');
  try {
    const response = await api('POST', '/api/v1/auth/login', { body: { username, password } });
    state.token = (await response.json()).access_token;
    $('sign-in-password').value = '';
    await startSession();
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    say(explain(error), 'error');
  }
}

async function startSession() {
  const me = await attempt(() => getJson('/api/v1/users/me'));
  if (!me) return;
  if (me.role !== 'admin') {
    await endSession();
    signedOut(`This page is for admins. ${me.username} is not an admin, so the sign-in was ended.`, 'error');
    return;
  }
  state.me = me;
  $('account-name').textContent = me.username;
  $('account').hidden = false;
  $('views').hidden = false;
  $('sign-in').hidden = true;
  say(`Signed in as ${me.username}.`, 'done');
  state.timer = setInterval(tick, POLL_MS);
  showView('cache');
}

async function endSession() {
  try {
    await api('POST', '/api/v1/auth/logout', { retry: false });
  } catch {
    // The token is forgotten here whatever the server said.
  }
  state.token = null;
}

function signedOut(message, kind = 'info') {
  state.token = null;
  state.me = null;
  clearInterval(state.timer);
  state.timer = null;
  state.lastCache = null;
  state.samples = [];
  state.users.clear();
  state.openUser = null;
  for (const id of ['account', 'views', 'view-cache', 'view-users', 'view-audit', 'view-jobs', 'user-detail']) {
    $(id).hidden = true;
  }
  $('users-table').tBodies[0].replaceChildren();
  $('sign-in').hidden = false;
  say(message, kind);
  $('sign-in-username').focus();
}

async function signOut() {
  await endSession();
  signedOut('You are signed out.');
}

// ------------------------------------------------------------------ views

function showView(name) {
  state.view = name;
  for (const button of document.querySelectorAll('#views button')) {
    if (button.dataset.view === name) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  for (const view of ['cache', 'users', 'audit', 'jobs']) {
    $(`view-${view}`).hidden = view !== name;
  }
  $(`${name}-title`).focus();
  if (name === 'cache') refreshCache();
  if (name === 'users' && state.users.size === 0) attempt(() => loadUsers(true));
  if (name === 'audit') showAudit();
  if (name === 'jobs') refreshJobs();
}

function tick() {
  refreshCache();
  if (state.view === 'jobs') refreshJobs();
}

// ------------------------------------------------------------------ cache

function formatBytes(bytes) {
  if (bytes >= 1024 * 1024 * 1024) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

const percent = (ratio) => (ratio === null || ratio === undefined ? '–' : `${(ratio * 100).toFixed(1)} %`);

async function refreshCache() {
  if (!state.token) return;
  let stats;
  try {
    stats = await getJson('/api/v1/admin/cache/stats');
  } catch (error) {
    if (error.code === 'unauthorized') signedOut(explain(error), 'error');
    else $('cache-updated').textContent = `Could not refresh the figures: ${explain(error)}`;
    return;
  }
  $('cache-ratio').textContent = percent(stats.hit_ratio);
  $('cache-hits').textContent = stats.hits.toLocaleString('en');
  $('cache-misses').textContent = stats.misses.toLocaleString('en');
  $('cache-keys').textContent = stats.keys.toLocaleString('en');
  $('cache-memory').textContent = formatBytes(stats.redis_used_memory_bytes);
  $('cache-namespace').textContent = stats.namespace;
  $('cache-updated').textContent =
    `Figures of the instance that answered, refreshed every ${EVERY}; last at ${new Date().toLocaleTimeString('en-GB')}.`;
  recordSample(stats);
  drawChart();
}

/** The ratio over the last interval, from the growth of the counters; a
 * counter that went down (another instance answered, or a restart) starts
 * over. */
function recordSample(stats) {
  const last = state.lastCache;
  state.lastCache = stats;
  if (!last) return;
  const reads = (s) => s.hits + s.misses + s.bypasses;
  const grown = reads(stats) - reads(last);
  const fresh = stats.hits < last.hits || grown < 0;
  const ratio = !fresh && grown > 0 ? (stats.hits - last.hits) / grown : null;
  state.samples.push(ratio);
  if (state.samples.length > CHART_SAMPLES) state.samples.shift();
}

function svg(name, attributes, text) {
  const element = document.createElementNS('http://www.w3.org/2000/svg', name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

function drawChart() {
  const chart = $('cache-chart');
  // Drawn at the size shown, so that the labels keep their size on a phone.
  const width = Math.max(240, Math.round(chart.getBoundingClientRect().width) || 600);
  chart.setAttribute('viewBox', `0 0 ${width} 160`);
  const [left, right, top, bottom] = [44, width - 8, 10, 140];
  const parts = [];
  for (const level of [0, 0.5, 1]) {
    const y = bottom - level * (bottom - top);
    parts.push(svg('line', { x1: left, x2: right, y1: y, y2: y, class: 'grid' }));
    parts.push(svg('text', { x: left - 6, y: y + 4, 'text-anchor': 'end', class: 'axis' }, `${level * 100}%`));
  }
  parts.push(svg('text', { x: left, y: 156, class: 'axis' }, `${CHART_SPAN} ago`));
  parts.push(svg('text', { x: right, y: 156, 'text-anchor': 'end', class: 'axis' }, 'now'));
  const step = (right - left) / (CHART_SAMPLES - 1);
  const offset = CHART_SAMPLES - state.samples.length;
  let run = [];
  const flush = () => {
    if (run.length > 1) parts.push(svg('polyline', { points: run.join(' '), class: 'line' }));
    if (run.length === 1) {
      const [x, y] = run[0].split(',');
      parts.push(svg('circle', { cx: x, cy: y, r: 2.5, class: 'dot' }));
    }
    run = [];
  };
  state.samples.forEach((ratio, index) => {
    if (ratio === null) return flush();
    const x = left + (offset + index) * step;
    const y = bottom - ratio * (bottom - top);
    run.push(`${x.toFixed(1)},${y.toFixed(1)}`);
    return undefined;
  });
  flush();
  const known = state.samples.filter((ratio) => ratio !== null);
  const caption = `Hit ratio between refreshes (every ${EVERY}), last ${CHART_SPAN}`;
  $('cache-chart-caption').textContent = caption;
  const summary = known.length ? `${caption}; latest ${percent(known[known.length - 1])}` : `${caption}: no reads yet`;
  parts.unshift(svg('title', {}, summary));
  chart.replaceChildren(...parts);
}

function describeSelector({ selector, value }) {
  return `${selector === 'suffix' ? 'ending with' : 'starting with'} “${value}”`;
}

async function previewEviction(event) {
  event.preventDefault();
  const selector = $('evict-form').elements.selector.value;
  const value = $('evict-value').value;
  const query = new URLSearchParams({ [selector]: value, limit: '20' });
  const preview = await attempt(() => getJson(`/api/v1/admin/cache/keys?${query}`), {
    validation_failed: (error) => `The ${selector} is not usable: ${error.details.map((d) => d.message).join('; ')}.`,
  });
  if (!preview) return;
  const chosen = { selector, value };
  if (preview.count === 0) {
    state.eviction = null;
    $('evict-preview').hidden = true;
    say(`No cache key ${describeSelector(chosen)}: nothing would be deleted.`);
    return;
  }
  state.eviction = chosen;
  const shown = preview.keys.length < preview.count ? `; the first ${preview.keys.length}:` : ':';
  $('evict-preview-text').textContent =
    `${plural(preview.count, 'cache key')} ${describeSelector(chosen)} would be deleted${shown}`;
  $('evict-preview-keys').replaceChildren(...preview.keys.map((key) => {
    const item = document.createElement('li');
    item.textContent = key;
    return item;
  }));
  $('evict-confirm').textContent = `Delete ${plural(preview.count, 'key')}`;
  $('evict-preview').hidden = false;
  say('Check the keys, then confirm or cancel.');
  $('evict-confirm').focus();
}

async function confirmEviction() {
  const chosen = state.eviction;
  if (!chosen) return;
  state.eviction = null;
  $('evict-preview').hidden = true;
  const query = new URLSearchParams({ [chosen.selector]: chosen.value });
  const result = await attempt(async () => (await api('DELETE', `/api/v1/admin/cache/keys?${query}`)).json(), {
    not_found: `Nothing was deleted: no cache key ${describeSelector(chosen)} is left (they may have expired meanwhile).`,
  });
  if (result) say(`Deleted ${plural(result.deleted, 'cache key')} ${describeSelector(chosen)}.`, 'done');
  $('evict-value').focus();
  refreshCache();
}

function cancelEviction() {
  state.eviction = null;
  $('evict-preview').hidden = true;
  say('Nothing was deleted.');
  $('evict-value').focus();
}

// ------------------------------------------------------------------ users

const MAX_SCAN_PAGES = 20;

async function loadUsers(reset) {
  if (reset) {
    state.users.clear();
    state.usersNext = null;
  }
  const params = new URLSearchParams({ limit: '100' });
  if (state.usersNext !== null) params.set('after_id', state.usersNext);
  if (state.features.search && state.usersFilter) params.set('q', state.usersFilter);
  const page = await getJson(`/api/v1/users?${params}`);
  for (const user of page.items) state.users.set(user.id, user);
  state.usersNext = page.next_after_id;
  renderUsers();
}

function matches(user) {
  if (state.features.search || !state.usersFilter) return true;
  const needle = state.usersFilter.toLowerCase();
  return user.username.toLowerCase().includes(needle) || (user.email || '').toLowerCase().includes(needle);
}

function userState(user) {
  if (typeof user.disabled !== 'boolean') return 'active';
  return user.disabled ? 'disabled' : 'active';
}

function renderUsers() {
  const rows = [...state.users.values()].filter(matches).map((user) => {
    const row = document.createElement('tr');
    for (const value of [user.id, user.username, user.email || '', user.role, userState(user)]) {
      const cell = document.createElement('td');
      cell.textContent = value;
      row.append(cell);
    }
    const cell = document.createElement('td');
    const open = document.createElement('button');
    open.type = 'button';
    open.textContent = 'Open';
    open.setAttribute('aria-label', `Open ${user.username}`);
    open.addEventListener('click', () => attempt(() => openUser(user.id), { not_found: 'That user no longer exists.' }));
    cell.append(open);
    row.append(cell);
    return row;
  });
  $('users-table').tBodies[0].replaceChildren(...rows);
  $('users-more').hidden = state.usersNext === null;
  const shown = `${plural(rows.length, 'user')} shown`;
  $('users-hint').textContent = state.features.search
    ? shown
    : `${shown}. This server cannot search yet: the search looks through the users loaded here (up to ${MAX_SCAN_PAGES * 100}).`;
}

async function searchUsers(event) {
  event.preventDefault();
  state.usersFilter = $('users-query').value.trim();
  if (state.features.search) {
    await attempt(() => loadUsers(true));
  } else {
    // No search on the server: load pages until the list is complete.
    await attempt(async () => {
      for (let page = 0; state.usersNext !== null && page < MAX_SCAN_PAGES; page += 1) await loadUsers(false);
    });
    renderUsers();
  }
  const found = [...state.users.values()].filter(matches).length;
  say(found ? `${plural(found, 'user')} found.` : 'No user matches that search.');
}

async function openUser(id) {
  const response = await api('GET', `/api/v1/users/${id}`);
  const user = await response.json();
  state.openUser = { user, etag: response.headers.get('ETag') };
  state.users.set(user.id, user);
  renderUsers();
  renderUser();
  $('user-detail').hidden = false;
  $('user-detail-title').focus();
}

function renderUser() {
  const { user } = state.openUser;
  $('user-detail-title').textContent = `${user.username} (id ${user.id})`;
  const fields = [
    ['E-mail', user.email || '–'],
    ['Role', user.role],
    ['State', userState(user)],
    ['Created', new Date(user.created_at).toLocaleString('en-GB')],
    ['Updated', new Date(user.updated_at).toLocaleString('en-GB')],
  ];
  if (typeof user.email_verified === 'boolean') fields.splice(1, 0, ['E-mail verified', user.email_verified ? 'yes' : 'no']);
  $('user-detail-fields').replaceChildren(...fields.flatMap(([name, value]) => {
    const term = document.createElement('dt');
    term.textContent = name;
    const detail = document.createElement('dd');
    detail.textContent = value;
    return [term, detail];
  }));
  $('user-role').value = user.role;
  const canDisable = state.features.disable && typeof user.disabled === 'boolean';
  $('user-disable').hidden = !canDisable;
  $('user-disable').textContent = user.disabled ? 'Enable account' : 'Disable account';
  $('user-sessions').hidden = !state.features.endSessions;
  const missing = [];
  if (!canDisable) missing.push('disable accounts');
  if (!state.features.endSessions) missing.push("end a user's sessions");
  $('user-missing').textContent = missing.length ? `This server cannot ${missing.join(' or ')} yet.` : '';
  $('user-delete-confirm').hidden = true;
}

const userWords = {
  not_found: 'That user no longer exists.',
  update_in_progress: (error) => `Someone else is changing this user right now. Try again in ${error.retryAfter || 1} s.`,
};

/** A change to the open user, sent with its ETag so that a change made
 * meanwhile by someone else is not overwritten. */
async function changeUser(changes, done) {
  const { user, etag } = state.openUser;
  const headers = etag ? { 'If-Match': etag } : {};
  const result = await attempt(async () => {
    const response = await api('PUT', `/api/v1/users/${user.id}`, { body: changes, headers });
    return { user: await response.json(), etag: response.headers.get('ETag') };
  }, userWords);
  if (!result) {
    await attempt(() => openUser(user.id), userWords);
    return;
  }
  state.openUser = result;
  state.users.set(result.user.id, result.user);
  renderUsers();
  renderUser();
  say(done(result.user), 'done');
  if (result.user.id === state.me.id && changes.role === 'user') {
    signedOut('You are no longer an admin: this page is for admins.', 'error');
  }
}

function saveRole(event) {
  event.preventDefault();
  const role = $('user-role').value;
  if (role === state.openUser.user.role) {
    say(`${state.openUser.user.username} already has the role ${role}.`);
    return;
  }
  changeUser({ role }, (user) => `${user.username} is now ${user.role === 'admin' ? 'an admin' : 'a user'}; their current sign-in has ended.`);
}

function toggleDisabled() {
  const disabled = !state.openUser.user.disabled;
  changeUser({ disabled }, (user) => (user.disabled
    ? `${user.username} is disabled: every session of theirs has ended and they cannot sign in.`
    : `${user.username} is enabled again and can sign in.`));
}

async function endUserSessions() {
  const { user } = state.openUser;
  const ended = await attempt(() => api('DELETE', `/api/v1/users/${user.id}/sessions`), userWords);
  if (ended) say(`Every session of ${user.username} has ended.`, 'done');
}

function askDelete() {
  $('user-delete-text').textContent = `Delete ${state.openUser.user.username} for good? Their sessions end at once.`;
  $('user-delete-confirm').hidden = false;
  $('user-delete-no').focus();
}

async function deleteUser() {
  const { user } = state.openUser;
  $('user-delete-confirm').hidden = true;
  const deleted = await attempt(() => api('DELETE', `/api/v1/users/${user.id}`), userWords);
  if (!deleted) return;
  state.users.delete(user.id);
  closeUser();
  renderUsers();
  say(`${user.username} was deleted.`, 'done');
}

function closeUser() {
  state.openUser = null;
  $('user-detail').hidden = true;
  $('users-query').focus();
}

// ------------------------------------------------------------------ audit

const AUDIT_ACTIONS = ['user.registered', 'auth.login', 'auth.login_failed', 'auth.logout', 'auth.logout_all',
  'auth.refresh_reused', 'auth.password_changed', 'auth.password_reset_requested', 'auth.password_reset',
  'auth.email_verified', 'session.revoked', 'user.updated', 'user.disabled', 'user.enabled', 'user.deleted',
  'admin.cache_evicted'];

function showAudit() {
  const offered = state.features.audit;
  $('audit-missing').hidden = offered;
  $('audit-filter').hidden = !offered;
  $('audit-wrap').hidden = !offered;
  if (offered && $('audit-table').tBodies[0].rows.length === 0) attempt(() => loadAudit(true));
}

async function loadAudit(reset) {
  const params = new URLSearchParams({ limit: '50' });
  for (const name of ['subject_id', 'actor_id', 'action']) {
    const value = $('audit-filter').elements[name].value.trim();
    if (value) params.set(name, value);
  }
  if (!reset && state.auditNext !== null) params.set('before_id', state.auditNext);
  const page = await getJson(`/api/v1/admin/audit?${params}`);
  const body = $('audit-table').tBodies[0];
  if (reset) body.replaceChildren();
  for (const event of page.items) {
    const row = document.createElement('tr');
    const cells = [new Date(event.at).toLocaleString('en-GB'), event.action, event.actor_id ?? '–',
      event.subject_id ?? '–', event.ip ?? '–', JSON.stringify(event.details || {})];
    cells.forEach((value, index) => {
      const cell = document.createElement('td');
      cell.textContent = value;
      if (index === 5) cell.className = 'details';
      row.append(cell);
    });
    body.append(row);
  }
  state.auditNext = page.next_before_id;
  $('audit-more').hidden = state.auditNext === null;
  if (reset) say(page.items.length ? `${plural(body.rows.length, 'event')} shown, newest first.` : 'No event matches.');
}

// ------------------------------------------------------------------- jobs

async function refreshJobs() {
  const stats = await attempt(() => getJson('/api/v1/admin/jobs/stats'));
  if (!stats) return;
  for (const name of ['pending', 'in_flight', 'delayed', 'dead', 'outbox', 'delivered']) {
    $(`jobs-${name}`).textContent = (stats[name] ?? 0).toLocaleString('en');
  }
}

async function replayDead() {
  const result = await attempt(async () => (await api('POST', '/api/v1/admin/jobs/dead/replay')).json());
  if (!result) return;
  say(result.replayed ? `Replayed ${plural(result.replayed, 'dead job')}: back in the queue.` : 'No job was dead: nothing to replay.', 'done');
  refreshJobs();
}

// ------------------------------------------------------------------ start

document.addEventListener('DOMContentLoaded', async () => {
  $('sign-in-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  for (const button of document.querySelectorAll('#views button')) {
    button.addEventListener('click', () => showView(button.dataset.view));
  }
  $('evict-form').addEventListener('submit', previewEviction);
  $('evict-confirm').addEventListener('click', confirmEviction);
  $('evict-cancel').addEventListener('click', cancelEviction);
  $('users-search').addEventListener('submit', searchUsers);
  $('users-more').addEventListener('click', () => attempt(() => loadUsers(false)));
  $('user-role-form').addEventListener('submit', saveRole);
  $('user-disable').addEventListener('click', toggleDisabled);
  $('user-sessions').addEventListener('click', endUserSessions);
  $('user-delete').addEventListener('click', askDelete);
  $('user-delete-yes').addEventListener('click', deleteUser);
  $('user-delete-no').addEventListener('click', () => { $('user-delete-confirm').hidden = true; });
  $('user-close').addEventListener('click', closeUser);
  $('audit-filter').addEventListener('submit', (event) => {
    event.preventDefault();
    attempt(() => loadAudit(true));
  });
  $('audit-more').addEventListener('click', () => attempt(() => loadAudit(false)));
  $('audit-actions').replaceChildren(...AUDIT_ACTIONS.map((action) => {
    const option = document.createElement('option');
    option.value = action;
    return option;
  }));
  $('jobs-replay').addEventListener('click', replayDead);
  drawChart();
  window.addEventListener('resize', drawChart);

  await detectFeatures();
  $('users-query-label').textContent = state.features.search ? 'Search by username or e-mail' : 'Find in the users loaded';
  if (await refresh()) {
    await startSession();
  } else {
    $('sign-in-username').focus();
  }
});
