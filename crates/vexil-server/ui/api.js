// The one way the UI talks to the server: same-origin JSON over the admin API, authenticated by
// the session cookie, with the CSRF token on every write and errors turned into `ApiError`s.

/** An error answer from the server, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, code, message, details = []) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    /** `[{path, message}]` for validation errors; paths are relative to the definition sent. */
    this.details = details;
  }
}

let csrfToken = null;

/**
 * A header value carrying UTF-8. Browsers send header strings as one byte per character and
 * refuse characters above U+00FF, while the server reads `X-Vexil-Comment` as UTF-8: so send the
 * UTF-8 bytes, one character each ("é" → "\u00c3\u00a9"). Line breaks become spaces.
 */
function utf8Header(text) {
  const bytes = new TextEncoder().encode(text.replace(/[\r\n]+/g, ' '));
  let out = '';
  for (const b of bytes) out += String.fromCharCode(b);
  return out;
}

/** Remembers the CSRF token of the current session; sent as `X-Vexil-CSRF` on every write. */
export function setCsrf(token) {
  csrfToken = token || null;
}

/**
 * Calls the admin API. Resolves to `{status, etag, data}`; `etag` is the version number from the
 * `ETag` header when there is one. Anything but a 2xx throws an `ApiError`, and a 401 also tells
 * the shell that the session is gone (`vexil:signed-out`).
 */
export async function api(method, path, options = {}) {
  try {
    return await request(method, path, options);
  } catch (e) {
    // The session changed under this tab (signed out and in again in another one): its CSRF
    // token is stale. Fetch the current one and try once more.
    if (!(e instanceof ApiError && e.code === 'csrf_failed') || path === '/api/v1/session') throw e;
    if (!(await session())) throw e;
    return request(method, path, options);
  }
}

async function request(method, path, { body, ifMatch, ifNoneMatch, comment, query } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (typeof ifMatch === 'number') headers['If-Match'] = `"${ifMatch}"`;
  // `'*'` on a PUT: create only, never replace.
  if (ifNoneMatch) headers['If-None-Match'] = ifNoneMatch;
  if (comment) headers['X-Vexil-Comment'] = utf8Header(comment);
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-Vexil-CSRF'] = csrfToken;

  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
    }
    const qs = params.toString();
    if (qs) url += (url.includes('?') ? '&' : '?') + qs;
  }

  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network_error', `Cannot reach the vexil server (${e.message}). Check your connection and try again.`);
  }

  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }

  if (!response.ok) {
    const err = data && typeof data === 'object' && data.error ? data.error : {};
    let message = err.message || `The server answered ${response.status} ${response.statusText || ''}`.trim();
    if (response.status === 401) {
      // The server's wording is about API keys; in the browser it means the session is over.
      message = 'Your session has ended. Sign in again, then retry.';
      window.dispatchEvent(new Event('vexil:signed-out'));
    }
    throw new ApiError(response.status, err.code || `http_${response.status}`, message, Array.isArray(err.details) ? err.details : []);
  }

  const etag = parseEtag(response.headers.get('ETag'));
  if (method !== 'GET') announceFlagChange(path, data);
  return { status: response.status, etag, data };
}

/**
 * After any write to a flag (a save, a kill switch, a revert from the history page), tells
 * whoever shows that flag to refresh: `vexil:flag-changed` with `detail: {key, version}`
 * (`version` is null after an archive).
 */
function announceFlagChange(path, data) {
  const m = /^\/api\/v1\/flags\/([^/?]+)(\/[^?]*)?/.exec(path);
  if (!m || m[2] === '/explain') return; // evaluating changes nothing
  const key = decodeURIComponent(m[1]);
  const version = data && typeof data === 'object' && typeof data.version === 'number' ? data.version : null;
  window.dispatchEvent(new CustomEvent('vexil:flag-changed', { detail: { key, version } }));
}

/** `"12"` or `W/"12"` → 12; anything else → null. */
function parseEtag(value) {
  if (!value) return null;
  const m = /^(?:W\/)?"?(\d+)"?$/.exec(value.trim());
  return m ? Number(m[1]) : null;
}

/** The current session, or null when signed out. Other failures throw. */
export async function session() {
  try {
    const { data } = await api('GET', '/api/v1/session');
    setCsrf(data.csrf);
    return data;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      setCsrf(null);
      return null;
    }
    throw e;
  }
}

/** Signs in with an admin key; `name` is the person the audit log will show. */
export async function signIn(key, name) {
  const body = { key };
  if (name && name.trim()) body.name = name.trim();
  // A wrong key answers 401, which also fires `vexil:signed-out`: harmless, since the sign-in
  // page is what is showing then.
  const { data } = await api('POST', '/api/v1/session', { body });
  setCsrf(data.csrf);
  return data;
}

/** Ends the session on the server and forgets the CSRF token. */
export async function signOut() {
  try {
    await api('DELETE', '/api/v1/session');
  } finally {
    setCsrf(null);
  }
}
