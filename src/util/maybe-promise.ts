/**
 * A value now, or later. The per-call path stays synchronous unless something really
 * waits (a guardrail, Redis): even `await` on a plain value costs a promise and a turn
 * of the microtask queue, and every tool call would pay it.
 */
export type MaybePromise<T> = T | Promise<T>;

/** Applies `next` now when the value is at hand, after it resolves otherwise. */
export function andThen<T, U>(value: MaybePromise<T>, next: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}
