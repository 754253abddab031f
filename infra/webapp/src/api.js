// The public JSON APIs (shorten and analytics, both behind the same nginx), called with the API
// key of the session; the live stats stream too (`live`: Server-Sent Events read with fetch). The
// key lives in sessionStorage: gone when the tab closes, never in a cookie (so no request carries
// it unless this code adds it) and never in a URL.

import { createParser } from "eventsource-parser";

const KEY = "shortlink.apiKey";

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key.trim()),
  signOut: () => sessionStorage.removeItem(KEY),
};

/** An API answer that was not 2xx: the JSON error shape {error: {code, message, field}}. */
export class ApiError extends Error {
  constructor(status, code, message, field = null, retryAfter = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

async function failure(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: described by the status alone */
  }
  const error = body && body.error ? body.error : {};
  return new ApiError(
    response.status,
    error.code || `http_${response.status}`,
    error.message || `${response.status} ${response.statusText || "error"}`,
    error.field || null,
    response.headers.get("Retry-After"),
  );
}

/** fetch with the session's key; JSON in, JSON (or a Blob, or null for 204) out; ApiError else. */
export async function call(path, { method = "GET", body, query, as = "json", signal } = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, String(value));
  }
  const headers = { Accept: as === "json" ? "application/json" : "*/*" };
  const key = session.key();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "the server could not be reached");
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return as === "blob" ? response.blob() : response.json();
}

const enc = encodeURIComponent;

/**
 * GET /api/v1/links/{code}/live, a Server-Sent Events stream, read with fetch() and a streamed body
 * so the key travels in the Authorization header like every other call: EventSource cannot send
 * headers, and a key (or a token standing for it) in the URL would end up in nginx logs, the
 * browser history and Referer headers. eventsource-parser splits the bytes into events.
 * `onEvent(name, data)` gets each event (`ready`, `clicks`, `end`) with its JSON data. Resolves when
 * the stream ends, rejects with ApiError when refused (404, 403, 503 with retryAfter...) or the
 * connection drops, with an AbortError when `signal` aborts.
 */
export async function live(code, { signal, onEvent }) {
  const headers = { Accept: "text/event-stream" };
  const key = session.key();
  if (key) headers.Authorization = `Bearer ${key}`;
  let response;
  try {
    response = await fetch(new URL(`/api/v1/links/${enc(code)}/live`, window.location.origin), {
      headers,
      signal,
      cache: "no-store",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "the server could not be reached");
  }
  if (!response.ok) throw await failure(response);
  const parser = createParser({ onEvent: (message) => onEvent(message.event, JSON.parse(message.data)) });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.feed(value);
    }
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", "the live stream was interrupted");
  }
}

export const api = {
  createLink: (fields) => call("/api/v1/links", { method: "POST", body: fields }),
  getLink: (code) => call(`/api/v1/links/${enc(code)}`),
  updateLink: (code, changes) => call(`/api/v1/links/${enc(code)}`, { method: "PATCH", body: changes }),
  deleteLink: (code) => call(`/api/v1/links/${enc(code)}`, { method: "DELETE" }),
  listLinks: ({ q, tag, cursor, limit }) => call("/api/v1/links", { query: { q, tag, cursor, limit } }),
  qr: (code, { format = "svg", size = 240, margin = 4 } = {}) =>
    call(`/api/v1/links/${enc(code)}/qr`, { query: { format, size, margin }, as: "blob" }),
  stats: (code, { from, to, interval, includeBots }) =>
    call(`/api/v1/links/${enc(code)}/stats`, {
      query: { from, to, interval, include_bots: includeBots ? "true" : undefined },
    }),
  top: ({ window, limit, tag, includeBots }) =>
    call("/api/v1/top", { query: { window, limit, tag, include_bots: includeBots ? "true" : undefined } }),
};
