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

export async function api(method, path, { json, body, contentType } = {}) {
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
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, null);
  }
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const err = new ApiError(response.status, data);
    if (response.status === 401 && !path.startsWith('/api/auth/login')) onUnauthenticated(err);
    throw err;
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, json) => api('POST', path, { json: json ?? {} });
