/**
 * Async work a notebook cell starts and might forget to await.
 *
 * Under noiselab's kernel (tools/kernel/deno/proxy.py) a cell is finished only
 * when the async work it started through noiselab (exports, displays, training,
 * sweeps) has finished: the kernel's check after each cell waits for every
 * promise registered here. A registered promise that rejects while nothing
 * awaited it (`an.exportFigure(...)` without `await`) becomes an error of the
 * cell, instead of passing silently. Outside that kernel (CLI, tests) this is a
 * no-op.
 * @module
 */

type Pending = { pending?: Set<Promise<unknown>>; errors?: { kind: string; error: unknown }[] };

/**
 * A promise that notes whether anyone awaited it (`await p` and `p.then(...)`
 * both call `then`). Derived promises are plain Promises.
 */
class TrackedPromise<T> extends Promise<T> {
  awaited = false;
  static override get [Symbol.species]() {
    return Promise;
  }
  override then<A = T, B = never>(
    onFulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    this.awaited = true;
    return super.then(onFulfilled, onRejected);
  }
}

/**
 * Register `p` as work of the running cell (see the module doc) and return a
 * promise with the same outcome. `what` names the call in the error message,
 * e.g. `exportFigure("01-accuracy-vs-eta")`.
 */
export function tracked<T>(what: string, p: Promise<T>): Promise<T> {
  const g = (globalThis as unknown as { __noiselab?: Pending }).__noiselab;
  if (!g?.pending || !g.errors) return p;
  const pending = g.pending, errors = g.errors;
  let resolve!: (v: T) => void, reject!: (e: unknown) => void;
  const t = new TrackedPromise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Our own observation must not mark t as awaited: use the base `then`.
  Promise.prototype.then.call(
    p,
    (v: T) => {
      pending.delete(t);
      resolve(v);
    },
    (e: unknown) => {
      pending.delete(t);
      if (!t.awaited) errors.push({ kind: `${what} failed and nothing awaited it (a missing await?)`, error: e });
      // Rejecting t is unobserved when nothing awaited it; the error is reported above instead.
      Promise.prototype.then.call(t, undefined, () => {});
      reject(e);
    },
  );
  pending.add(t);
  return t;
}
