import type { Target } from './naming.ts';

/** How a session's downstream names resolve, for the prefix modes that need a listing. */
export interface NameIndex {
  readonly exact: ReadonlyMap<string, Target>;
  /** Resource templates, to route URIs that no list names. */
  readonly templates: ReadonlyArray<{ readonly pattern: RegExp; readonly backend: string }>;
}

/**
 * Indexes per (session, namespace), least recently used evicted first. Lives on the route
 * runtime, so a config reload starts it afresh.
 */
export class IndexCache {
  private readonly entries = new Map<string, NameIndex>();
  private readonly capacity: number;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  get(sid: string, namespace: string): NameIndex | undefined {
    const key = `${sid}/${namespace}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }

  forget(sid: string, namespace: string): void {
    this.entries.delete(`${sid}/${namespace}`);
  }

  set(sid: string, namespace: string, index: NameIndex): void {
    const key = `${sid}/${namespace}`;
    this.entries.delete(key);
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, index);
  }
}

/** RFC 6570 template to a matcher: simple expressions match one path segment, reserved ones anything. */
export function templatePattern(template: string): RegExp {
  let source = '';
  let last = 0;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    source += escape(template.slice(last, m.index));
    const op = m[1]![0];
    source += op === '+' || op === '#' ? '.*' : op === '?' || op === '&' ? '(?:[?&].*)?' : '[^/?#]*';
    last = m.index + m[0].length;
  }
  return new RegExp(`^${source}${escape(template.slice(last))}$`);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
