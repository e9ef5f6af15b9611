import type { BackendIR, GuardIR } from '../../ir/types.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { ArgumentValidator } from './arguments.ts';
import { BackendGuard, type GuardEvents } from './backend-guard.ts';

/**
 * Every backend's guard, kept across config reloads while a backend's guard settings stay
 * the same (so pins learned on first use survive); a changed setting starts afresh.
 */
export class Guards {
  private readonly guards = new Map<string, BackendGuard>();
  private readonly validator = new ArgumentValidator();
  private readonly events: GuardEvents;
  private readonly logger: Logger;

  constructor(events: GuardEvents, logger: Logger) {
    this.events = events;
    this.logger = logger;
  }

  for(backend: BackendIR): BackendGuard {
    const existing = this.guards.get(backend.name);
    if (existing && sameConfig(existing.config, backend.guard)) return existing;
    void existing?.close();
    const guard = new BackendGuard(backend.name, backend.guard, this.validator, this.events, this.logger);
    this.guards.set(backend.name, guard);
    return guard;
  }

  get(backend: string): BackendGuard | undefined {
    return this.guards.get(backend);
  }

  all(): BackendGuard[] {
    return [...this.guards.values()];
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.guards.values()].map((g) => g.close()));
    this.guards.clear();
  }
}

function sameConfig(a: GuardIR, b: GuardIR): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
