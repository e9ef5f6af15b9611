/** Small ways of tying AbortControllers to signals and time, each letting go of what it holds once its controller aborts. */

/** Resolves when the signal aborts. */
export function whenAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}

/** Aborts `controller` when `signal` aborts (at once if it has). */
export function abortWith(signal: AbortSignal, controller: AbortController): void {
  if (signal.aborted) return controller.abort();
  const abort = (): void => controller.abort();
  signal.addEventListener('abort', abort, { once: true });
  controller.signal.addEventListener('abort', () => signal.removeEventListener('abort', abort), { once: true });
}

/** Aborts `controller` after `ms`. */
export function abortAfter(controller: AbortController, ms: number): void {
  const timer = setTimeout(() => controller.abort(), ms);
  controller.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
}
