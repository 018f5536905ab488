/**
 * Waiting for the signal that stops a long-running command (SIGINT or
 * SIGTERM), for every process that runs until told to stop.
 *
 * @module
 */

/**
 * Resolves with the first SIGINT or SIGTERM received from now on; the
 * handlers are removed then, so a second signal has Node's default effect.
 *
 * @example
 * ```ts
 * const signal = await stopSignal();
 * logger.info({ signal }, "Stopping on signal");
 * ```
 */
export function stopSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      resolve(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}
