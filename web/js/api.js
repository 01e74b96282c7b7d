// REST calls.  The session cookie is HttpOnly; state-changing calls echo the readable CSRF
// cookie in X-CSRF-Token (double submit).

import { serverText, t } from './i18n.js';

// One session (and CSRF cookie) per side: the server tells which side this page is on.
let side = 'internet';
export function setSide(value) {
  side = value;
}
export function currentSide() {
  return side;
}
const SAFE = new Set(['GET', 'HEAD']);
// A read with no complete answer after this long is given up as a network error, which the
// caller shows and may retry: a response lost on the way (a proxy, a phone changing networks)
// would otherwise leave, say, history paging waiting for ever.  Writes are not timed out: an
// upload on a slow line may take longer, and its outcome is not known until it answers.
const READ_TIMEOUT_MS = 20000;

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message_en || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || (status === 0 ? 'network' : 'http_error');
    this.error = error;
    this.details = error.details || {};
  }

  /** A sentence in the screen's language. */
  get text() {
    if (this.status === 0) return t('error.network');
    if (this.error.message || this.error.message_en) return serverText(this.error);
    return t('error.unknown');
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(';')) {
    const [name, ...rest] = part.trim().split('=');
    if (name === `kakehashi_csrf_${side}`) return decodeURIComponent(rest.join('='));
  }
  return '';
}

let onUnauthenticated = () => {};
export function setUnauthenticatedHandler(fn) {
  onUnauthenticated = fn;
}

export async function api(method, path, { json, body, contentType, timeout = READ_TIMEOUT_MS } = {}) {
  const headers = {};
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = body;
    if (contentType) headers['Content-Type'] = contentType;
  }
  if (!SAFE.has(method)) headers['X-CSRF-Token'] = csrfToken();
  let timer;
  if (SAFE.has(method) && timeout) {
    const abort = new AbortController();
    timer = setTimeout(() => abort.abort(), timeout);
    init.signal = abort.signal;
  }
  let response;
  let data = null;
  try {
    response = await fetch(path, init);
    data = await response.json().catch((err) => {
      if (init.signal?.aborted) throw err; // timed out while the body arrived
      return null; // a body that is not JSON
    });
  } catch {
    throw new ApiError(0, null);
  } finally {
    clearTimeout(timer);
  }
  if (!response.ok) {
    const err = new ApiError(response.status, data);
    if (response.status === 401 && !path.startsWith('/api/auth/login')) onUnauthenticated(err);
    throw err;
  }
  return data;
}

/** `timeout`: milliseconds, 0 for none (a read that may take long, e.g. checking the whole audit log). */
export const get = (path, { timeout } = {}) => api('GET', path, { timeout });
export const post = (path, json) => api('POST', path, { json: json ?? {} });
