/**
 * The cluster's identity table as the agents and the operator watch it:
 * every PalisadeIdentity object, indexed by the key it numbers.
 *
 * @module
 */
import type { KubeClient } from "../k8s/client.ts";
import { Informer } from "../k8s/informer.ts";
import type { Logger } from "../k8s/logger.ts";
import { Resources } from "../k8s/resource.ts";
import type { PalisadeIdentity } from "../policy/api-types.ts";
import { IDENTITY_KEY_INDEX, identityKeyIndex } from "../policy/identity-object.ts";

/**
 * An informer over every PalisadeIdentity, indexed by key
 * ({@linkcode IDENTITY_KEY_INDEX}); `transform` narrows each object before it
 * is cached (an agent's `identityFields`).
 *
 * @example
 * ```ts
 * const informer = identityInformer(client, logger);
 * informer.start();
 * informer.cache.byIndex(IDENTITY_KEY_INDEX, key);
 * ```
 */
export function identityInformer(client: KubeClient, logger: Logger, transform?: (obj: PalisadeIdentity) => PalisadeIdentity): Informer<PalisadeIdentity> {
  return new Informer<PalisadeIdentity>({ client, logger, resource: Resources.palisadeIdentities, indexers: { [IDENTITY_KEY_INDEX]: identityKeyIndex }, ...(transform ? { transform } : {}) });
}
