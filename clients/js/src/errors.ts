// Typed errors. Every livebase error is an RFC 9457 problem (application/problem+json); the
// WebSocket carries the same status with a list of `errors`. Both become a ProblemError.

/** What went wrong, by HTTP status (and problem type for validation). */
export type ProblemKind =
  | 'validation' // 400 with type /problems/validation (field errors in `errors`)
  | 'bad_request' // other 400s (malformed JSON, bad query parameter: see `parameter`)
  | 'unauthorized' // 401
  | 'forbidden' // 403
  | 'not_found' // 404
  | 'method_not_allowed' // 405
  | 'conflict' // 409 (unique field, task already finished, idempotency key in flight)
  | 'gone' // 410 (task cancelled/expired, realtime history gone)
  | 'precondition_failed' // 412 (If-Match / version mismatch)
  | 'too_large' // 413, 414, 431
  | 'unsupported_media_type' // 415
  | 'unprocessable' // 422 (Idempotency-Key reused with a different request)
  | 'throttled' // 429 (see retryAfter)
  | 'unavailable' // 503 (see retryAfter)
  | 'server' // other 5xx
  | 'other';

/** The problem+json body as sent by the server (extra members are kept). */
export interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: Record<string, string[]>;
  parameter?: string;
  [key: string]: unknown;
}

export function problemKind(status: number, type?: string): ProblemKind {
  switch (status) {
    case 400:
      return type === '/problems/validation' || (type ?? '').endsWith('/validation') ? 'validation' : 'bad_request';
    case 401: return 'unauthorized';
    case 403: return 'forbidden';
    case 404: return 'not_found';
    case 405: return 'method_not_allowed';
    case 409: return 'conflict';
    case 410: return 'gone';
    case 412: return 'precondition_failed';
    case 413: case 414: case 431: return 'too_large';
    case 415: return 'unsupported_media_type';
    case 422: return 'unprocessable';
    case 429: return 'throttled';
    case 503: return 'unavailable';
    default: return status >= 500 ? 'server' : 'other';
  }
}

export interface ProblemInit {
  status: number;
  body?: ProblemBody | null;
  retryAfter?: number;
  requestId?: string | null;
  /** 'http' for REST/SSE, 'ws' for a WebSocket reply. */
  source?: 'http' | 'ws';
}

/** An error answered by the server. Subclasses exist per status; `kind` names it too. */
export class ProblemError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly body: ProblemBody;
  readonly kind: ProblemKind;
  /** Seconds, from `Retry-After` (429/503) or a WebSocket reply's `retry_after`. */
  readonly retryAfter?: number;
  /** Field errors of a validation problem (field -> messages). */
  readonly errors?: Record<string, string[]>;
  /** The offending query parameter of a 400 bad-parameter problem. */
  readonly parameter?: string;
  readonly requestId: string | null;
  readonly source: 'http' | 'ws';

  constructor(init: ProblemInit) {
    const body: ProblemBody = init.body ?? {};
    const title = typeof body.title === 'string' ? body.title : `HTTP ${init.status}`;
    const detail = typeof body.detail === 'string' ? body.detail : '';
    super(detail ? `${init.status} ${title}: ${detail}` : `${init.status} ${title}`);
    this.name = new.target.name;
    this.status = init.status;
    this.type = typeof body.type === 'string' ? body.type : 'about:blank';
    this.title = title;
    this.detail = detail;
    this.body = body;
    this.kind = problemKind(init.status, body.type);
    if (init.retryAfter !== undefined) this.retryAfter = init.retryAfter;
    if (body.errors && typeof body.errors === 'object') this.errors = body.errors;
    if (typeof body.parameter === 'string') this.parameter = body.parameter;
    this.requestId = init.requestId ?? null;
    this.source = init.source ?? 'http';
  }
}

export class BadRequestError extends ProblemError {}
export class ValidationError extends BadRequestError {}
export class UnauthorizedError extends ProblemError {}
export class ForbiddenError extends ProblemError {}
export class NotFoundError extends ProblemError {}
export class ConflictError extends ProblemError {}
export class GoneError extends ProblemError {}
export class PreconditionFailedError extends ProblemError {}
export class UnprocessableError extends ProblemError {}
export class ThrottledError extends ProblemError {}
export class ServerError extends ProblemError {}

/** Builds the most specific ProblemError subclass for a status. */
export function makeProblem(init: ProblemInit): ProblemError {
  switch (problemKind(init.status, init.body?.type)) {
    case 'validation': return new ValidationError(init);
    case 'bad_request': return new BadRequestError(init);
    case 'unauthorized': return new UnauthorizedError(init);
    case 'forbidden': return new ForbiddenError(init);
    case 'not_found': return new NotFoundError(init);
    case 'conflict': return new ConflictError(init);
    case 'gone': return new GoneError(init);
    case 'precondition_failed': return new PreconditionFailedError(init);
    case 'unprocessable': return new UnprocessableError(init);
    case 'throttled': return new ThrottledError(init);
    case 'unavailable': case 'server': return new ServerError(init);
    default: return new ProblemError(init);
  }
}

/** A WebSocket request that could not be answered (socket closed, timed out, client closed). */
export class ConnectionError extends Error {
  readonly code?: number;
  constructor(message: string, code?: number) {
    super(message);
    this.name = 'ConnectionError';
    if (code !== undefined) this.code = code;
  }
}

/** Parses `Retry-After` (delta seconds or an HTTP date) into seconds. */
export function parseRetryAfter(value: string | null | undefined): number | undefined {
  if (!value) return undefined;
  const n = Number(value);
  if (Number.isFinite(n)) return n;
  const t = Date.parse(value);
  if (Number.isNaN(t)) return undefined;
  return Math.max(0, Math.round((t - Date.now()) / 1000));
}
