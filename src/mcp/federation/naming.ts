import type { NamingIR } from '../../ir/types.ts';

/** Where a downstream name points: the backend and the name the upstream knows. */
export interface Target {
  readonly backend: string;
  readonly name: string;
}

/**
 * The reversible mapping between upstream names (tool and prompt names, resource URIs and
 * URI templates) and the names the downstream client sees: `backend<separator>name`.
 * One mechanism for every kind of name.
 */
export class Naming {
  readonly mode: NamingIR['mode'];
  private readonly separator: string;
  private readonly backends: ReadonlySet<string>;

  constructor(naming: NamingIR, backends: readonly string[]) {
    this.mode = naming.mode;
    this.separator = naming.separator;
    this.backends = new Set(backends);
  }

  prefixed(backend: string, name: string): string {
    return `${backend}${this.separator}${name}`;
  }

  /**
   * Reads a prefixed name. Backend names cannot contain the separator, so the first
   * separator ends the backend name, whatever the upstream name contains.
   */
  split(downstream: string): Target | undefined {
    const at = downstream.indexOf(this.separator);
    if (at <= 0) return undefined;
    const backend = downstream.slice(0, at);
    if (!this.backends.has(backend)) return undefined;
    return { backend, name: downstream.slice(at + this.separator.length) };
  }
}
