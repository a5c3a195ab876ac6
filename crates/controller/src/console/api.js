// api.js: the REST client. JSON in and out under /api/v1, the session cookie sent by the
// browser, the CSRF token (kept in memory only) on every state-changing request, and
// errors turned into messages a person can act on.

const PREFIX = '/api/v1';
let csrfToken = null;
let onSessionLost = () => {};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Called when the API answers 401 to a request made inside a session (it expired). */
export function whenSessionLost(callback) {
  onSessionLost = callback;
}

const STATUS_TEXT = {
  400: 'The request was refused as invalid',
  401: 'Not signed in (or the session expired)',
  403: 'Forbidden',
  404: 'Not found',
  409: 'It already exists',
  429: 'Too many attempts; wait a little and try again',
  502: 'The database server refused',
  503: 'No Synced node to run this on; wait until a node is Synced',
};

export async function request(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let response;
  try {
    response = await fetch(PREFIX + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (error) {
    throw new ApiError(0, `The controller could not be reached (${error.message}).`);
  }
  if (!response.ok) {
    let message = null;
    try {
      message = (await response.json()).error;
    } catch {
      // Not JSON (a proxy in between, or an empty body): fall back to the status.
    }
    const fallback = STATUS_TEXT[response.status] || `${response.status} ${response.statusText}`;
    const error = new ApiError(response.status, message || `${fallback}.`);
    if (response.status === 401 && csrfToken !== null && path !== '/login') {
      csrfToken = null;
      onSessionLost(error);
    }
    throw error;
  }
  if (response.status === 204) return null;
  const type = response.headers.get('Content-Type') || '';
  return type.includes('json') ? response.json() : response.text();
}

export const get = (path) => request('GET', path);
export const post = (path, body) => request('POST', path, body === undefined ? {} : body);
export const del = (path) => request('DELETE', path);

/** A path segment: `%` in a host pattern must travel as %25. */
export const segment = (text) => encodeURIComponent(text);

export async function login(username, password) {
  try {
    const session = await request('POST', '/login', {username, password});
    csrfToken = session.csrf_token;
    return session;
  } catch (error) {
    if (error.status === 401) throw new ApiError(401, 'Wrong user name or password.');
    if (error.status === 429) {
      throw new ApiError(429, `Too many sign-in attempts. ${error.message}`);
    }
    if (error.status === 503) {
      throw new ApiError(503, `The controller is busy with other sign-ins. ${error.message}`);
    }
    throw error;
  }
}

/** The session the cookie carries, or null when there is none. */
export async function resumeSession() {
  try {
    const session = await get('/session');
    csrfToken = session.csrf_token;
    return session;
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

export async function logout() {
  try {
    await post('/logout');
  } finally {
    csrfToken = null;
  }
}
