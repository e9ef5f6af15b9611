/** Requests whose repetition changes nothing on the server. */
const SAFE_METHODS: ReadonlySet<string> = new Set([
  'ping',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
]);

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method);
}
