import { ErrorCode, JsonRpcError } from '../jsonrpc/errors.ts';
import type { Naming } from './federation/naming.ts';

/**
 * MCP tasks: task ids are minted by upstreams, so the gateway hands the client
 * `backend<separator>taskId` (whatever the route's prefix mode) and routes by it.
 */
const RELATED_TASK = 'io.modelcontextprotocol/related-task';

export function splitTaskId(naming: Naming, taskId: unknown): { backend: string; name: string } {
  const target = typeof taskId === 'string' ? naming.split(taskId) : undefined;
  if (!target) throw new JsonRpcError(ErrorCode.InvalidParams, `Unknown task: ${String(taskId)}`);
  return target;
}

/** Rewrites the task ids a result carries (a task, a created task, related-task metadata) to their downstream form. */
export function mapTaskIds(naming: Naming, backend: string, result: Record<string, unknown>): Record<string, unknown> {
  let out = result;
  if (typeof out.taskId === 'string') out = { ...out, taskId: naming.prefixed(backend, out.taskId) };
  const task = out.task as Record<string, unknown> | undefined;
  if (task && typeof task.taskId === 'string') out = { ...out, task: { ...task, taskId: naming.prefixed(backend, task.taskId) } };
  const meta = out._meta as Record<string, unknown> | undefined;
  const related = meta?.[RELATED_TASK] as Record<string, unknown> | undefined;
  if (related && typeof related.taskId === 'string') {
    out = { ...out, _meta: { ...meta, [RELATED_TASK]: { ...related, taskId: naming.prefixed(backend, related.taskId) } } };
  }
  return out;
}
