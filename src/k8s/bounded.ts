/**
 * Async work over many items with a bounded number in flight: requests to
 * the API server made together, neither one round trip after another nor
 * all at once.
 *
 * @module
 */

/**
 * Runs `work` over `items`, started in their order, at most `limit` at once.
 * After a rejection no further item starts; the promise rejects with the
 * first error once the items in flight settled.
 *
 * @example
 * ```ts
 * await bounded(objects, 16, (object) => client.request("POST", path, { body: object }));
 * ```
 */
export async function bounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  let first: unknown;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      try {
        await work(items[next++] as T);
      } catch (error) {
        if (!failed) first = error;
        failed = true;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failed) throw first;
}
