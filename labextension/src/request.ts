/**
 * The one way the frontend talks to aqua_lab's REST API under <base_url>aqua/ (in the style of
 * jupyterlab/extension-template's request.ts): ServerConnection.makeRequest adds the base URL,
 * the token and the XSRF header, so it works under any base_url and in OCI notebook sessions.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { Error as ErrorBody } from './schema';

export type Query = Record<string, string | number | undefined | null>;

/** One problem the server named: where (a field path such as `models[1].gpu_count`), what, the fix. */
export interface Problem {
  field: string;
  message: string;
  fix?: string | null;
}

/** An answer that was not 2xx, or no answer at all (`status` 0). */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly problems: Problem[] = [],
    readonly requestId: string | null = null
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** The server could not be reached or failed itself: worth retrying later. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500;
  }

  /** The problem reported for one field path (exact, or the path's parent such as `models[1]`). */
  problemFor(field: string): Problem | undefined {
    return this.problems.find(p => p.field === field) ?? this.problems.find(p => field.startsWith(p.field + '.'));
  }
}

let settings: ServerConnection.ISettings | null = null;

function serverSettings(): ServerConnection.ISettings {
  return (settings ??= ServerConnection.makeSettings());
}

/** For tests and for a plugin that was given other settings. */
export function setServerSettings(value: ServerConnection.ISettings): void {
  settings = value;
}

export function apiUrl(endpoint: string, query: Query = {}): string {
  const url = URLExt.join(serverSettings().baseUrl, 'aqua', endpoint);
  const params = Object.entries(query)
    .filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
  return params.length ? `${url}?${params.join('&')}` : url;
}

/** Turn a non-2xx answer into an ApiError carrying the server's JSON message and field paths. */
export async function errorFrom(response: Response): Promise<ApiError> {
  const text = await response.text();
  return parseError(response.status, text, response.statusText);
}

export function parseError(status: number, text: string, statusText = ''): ApiError {
  let body: Partial<ErrorBody> | null = null;
  try {
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  if (body && typeof body.message === 'string') {
    const problems = (body.errors ?? []).map(e => ({
      field: e.field ?? '',
      message: e.message ?? '',
      fix: e.fix ?? null
    }));
    return new ApiError(body.message, status, problems, body.request_id ?? null);
  }
  const snippet = text.trim().slice(0, 200);
  return new ApiError(`${status} ${statusText || 'error'}${snippet ? `: ${snippet}` : ''}`, status);
}

async function send(endpoint: string, init: RequestInit, query: Query): Promise<Response> {
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(endpoint, query), init, serverSettings());
  } catch (error) {
    if (init.signal?.aborted) {
      throw error;
    }
    throw new ApiError(`the Jupyter server did not answer (${(error as Error).message})`, 0);
  }
  if (!response.ok) {
    throw await errorFrom(response);
  }
  return response;
}

/** Call `endpoint` (relative to aqua/) and return its JSON body. */
export async function requestAPI<T>(endpoint: string, init: RequestInit = {}, query: Query = {}): Promise<T> {
  const response = await send(endpoint, init, query);
  const text = await response.text();
  if (!text) {
    return undefined as T;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(`the server's answer to ${endpoint} is not JSON: ${text.slice(0, 120)}`, response.status);
  }
}

/** Call `endpoint` and return its body as text (an HTML report). */
export async function requestText(endpoint: string, query: Query = {}): Promise<string> {
  return (await send(endpoint, {}, query)).text();
}

/** POST a JSON body and return the response for its body to be streamed (SSE). */
export async function requestStream(
  endpoint: string,
  body: unknown,
  signal: AbortSignal,
  query: Query = {}
): Promise<Response> {
  return send(endpoint, { method: 'POST', body: JSON.stringify(body), signal }, query);
}

export function postJSON<T>(endpoint: string, body: unknown, query: Query = {}): Promise<T> {
  return requestAPI<T>(endpoint, { method: 'POST', body: JSON.stringify(body) }, query);
}

/** What to show the user for any thrown value. */
export function describe(error: unknown): string {
  if (error instanceof ApiError) {
    // a problem the message already states (with its fix written differently) is not repeated
    const said = (p: Problem) => error.message.includes(`${p.field ? p.field + ': ' : ''}${p.message}`);
    const extra = error.problems.filter(p => !said(p)).map(p => `${p.field ? p.field + ': ' : ''}${p.message}${p.fix ? ` (${p.fix})` : ''}`);
    return [error.message, ...extra].join('\n');
  }
  return error instanceof Error ? error.message : String(error);
}
