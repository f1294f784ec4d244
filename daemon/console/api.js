// The console's side of docs/http.md: JSON over fetch, the session's CSRF
// token on every POST, 401 means "log in again".

export class ApiError extends Error {
  constructor(status, message, retryAfter = null, data = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.retryAfter = retryAfter;
    this.data = data; // the error answer's JSON (e.g. a 409's "changed", "state")
  }
}

let csrf = null;
let onLoginRequired = () => {};

export function setCsrf(token) {
  csrf = token || null;
}

/** fn() is called when an API request answers 401 (the session ended). */
export function onUnauthorized(fn) {
  onLoginRequired = fn;
}

/**
 * One request.  opts: method, json (a body sent as JSON), form (an object
 * sent as application/x-www-form-urlencoded).  Resolves to the parsed JSON
 * answer (or null); rejects with ApiError(status, message, retryAfter).
 */
export async function request(path, opts = {}) {
  const method = opts.method || 'GET';
  const headers = { Accept: 'application/json' };
  let body;
  if (opts.form) {
    body = new URLSearchParams(opts.form);
  } else if (opts.json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(opts.json);
  }
  if (method !== 'GET' && path !== '/login' && csrf) headers['X-CSRF-Token'] = csrf;
  let r;
  try {
    r = await fetch(path, { method, headers, body, credentials: 'same-origin', cache: 'no-store' });
  } catch {
    throw new ApiError(0, 'cannot reach the server');
  }
  let data = null;
  const type = r.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try {
      data = await r.json();
    } catch {
      data = null;
    }
  }
  if (!r.ok) {
    const msg = data && typeof data.error === 'string' && data.error ? data.error : 'HTTP ' + r.status;
    const retry = r.headers.get('Retry-After');
    const err = new ApiError(r.status, msg, retry !== null && /^\d+$/.test(retry) ? Number(retry) : null, data);
    if (r.status === 401 && path !== '/login' && path !== '/api/session') onLoginRequired(err);
    throw err;
  }
  return data;
}

const enc = encodeURIComponent;

export const api = {
  session: () => request('/api/session'),
  login: (user, password) => request('/login', { method: 'POST', form: { user, password } }),
  logout: () => request('/logout', { method: 'POST' }),
  items: (state) => request('/api/items?state=' + enc(state)),
  item: (id) => request('/api/items/' + enc(id)),
  audioUrl: (id) => '/api/items/' + enc(id) + '/audio',
  // version: the item's, as GET /api/items/ID gave it; the server refuses
  // (409) a decision on an item that has changed since.
  decide: (id, action, reason, version) =>
    request('/api/items/' + enc(id) + '/' + (action === 'reject' ? 'reject' : 'release'), {
      method: 'POST',
      json: { reason, version },
    }),
  falseAlarm: (id, finding, note) =>
    request('/api/items/' + enc(id) + '/false-alarm', { method: 'POST', json: { finding, note } }),
};
