import { Counter, Registry } from 'prom-client';

/** The process's metrics, served by the admin listener at /metrics. */
export const metrics = new Registry();

export const toolDefinitionChanges = new Counter({
  name: 'switchboard_tool_definition_changes_total',
  help: 'Tool definitions that changed after they were pinned (rug pulls caught), by backend',
  labelNames: ['backend'] as const,
  registers: [metrics],
});
