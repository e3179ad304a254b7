// Wire shapes shared by the REST, WebSocket and SSE parts of the client.

/** A record: the declared fields plus the server-managed ones. */
export interface Rec {
  id: string;
  version?: number;
  created?: string;
  updated?: string;
  owner?: string | null;
  [field: string]: any;
}

export type FilterValue = string | number | boolean | null | Array<string | number>;
export type Filter = Record<string, FilterValue>;

export interface ListQuery {
  /** REST query keys: `brand`, `model__gte`, `id__in` (array or comma list), ... */
  filter?: Filter;
  /** `-model` or `['-model', 'brand']`. */
  ordering?: string | string[];
  limit?: number;
  offset?: number;
  /** Only these fields (plus `id`). */
  fields?: string[];
}

/** A list page: the wire page (`count`, `next`, `previous`, `results`) plus `items` = `results`. */
export interface Page<T = Rec> {
  count: number;
  items: T[];
  results: T[];
  next?: string | null;
  previous?: string | null;
  [key: string]: any;
}

export type TaskState = 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface TaskStep {
  name: string;
  state: 'pending' | 'running' | 'done' | 'failed' | 'skipped';
}

/** The task resource (http.md section 3). */
export interface Task {
  id: string;
  kind: string;
  state: TaskState;
  progress: number | null;
  message: string | null;
  eta: number | null;
  steps: TaskStep[];
  request?: { method: string; path: string; query: string; body: any };
  result: any;
  error: any;
  location: string | null;
  attempt: number;
  max_attempts: number;
  owner: string | null;
  created: string;
  started: string | null;
  finished: string | null;
  links?: { self: string; result: string };
  [key: string]: any;
}

export const FINAL_TASK_STATES: readonly TaskState[] = ['succeeded', 'failed', 'cancelled'];

export function isFinalTask(task: Pick<Task, 'state'> | null | undefined): boolean {
  return !!task && FINAL_TASK_STATES.includes(task.state);
}

/** True for a task resource (what a 202 answers with). */
export function isTask(value: unknown): value is Task {
  if (!value || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return typeof v.id === 'string' && typeof v.kind === 'string' && typeof v.state === 'string' &&
    ['pending', 'running', 'succeeded', 'failed', 'cancelled'].includes(v.state as string) && 'attempt' in v;
}

export interface User {
  id: string;
  username: string;
  admin?: boolean;
  [key: string]: any;
}

export interface LoginResult {
  token: string;
  expires: string;
  user: User;
}
