/**
 * An `apiextensions.k8s.io/v1` CustomResourceDefinition with one version,
 * assembled from the structural schemas of a resource's spec and status.
 *
 * @module
 */
import type { StructuralSchema, ValidationRule } from "./structural-schema.ts";

/** A column `kubectl get` prints for the resource. */
export interface PrinterColumn {
  name: string;
  type: "integer" | "number" | "string" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  /** 0 = always shown; higher = only with `-o wide`. */
  priority?: number;
}

/** What a CustomResourceDefinition is made of. */
export interface CustomResourceOptions {
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  shortNames?: string[];
  /** Groups for `kubectl get <category>`. */
  categories?: string[];
  scope: "Namespaced" | "Cluster";
  /** What the resource is, for the top of its schema. */
  description: string;
  spec: StructuralSchema;
  /** The status schema; when present, `status` is a subresource. */
  status?: StructuralSchema;
  printerColumns?: PrinterColumn[];
  /** CEL rules on the whole object (they may read `self.metadata.name`). */
  validations?: readonly ValidationRule[];
}

/** An `apiextensions.k8s.io/v1` CustomResourceDefinition, as plain data. */
export interface CustomResourceDefinition {
  apiVersion: "apiextensions.k8s.io/v1";
  kind: "CustomResourceDefinition";
  metadata: { name: string };
  spec: {
    group: string;
    names: { kind: string; listKind: string; plural: string; singular: string; shortNames?: string[]; categories?: string[] };
    scope: "Namespaced" | "Cluster";
    versions: {
      name: string;
      served: true;
      storage: true;
      schema: { openAPIV3Schema: StructuralSchema };
      subresources?: { status: Record<string, never> };
      additionalPrinterColumns?: PrinterColumn[];
    }[];
  };
}

/**
 * Builds the CustomResourceDefinition of a resource.
 *
 * @example
 * ```ts
 * customResourceDefinition({ group: "palisade.dev", version: "v1alpha1", kind: "Thing", plural: "things", singular: "thing", scope: "Cluster", description: "A thing.", spec: { type: "object" } }).metadata.name;
 * // "things.palisade.dev"
 * ```
 */
export function customResourceDefinition(options: CustomResourceOptions): CustomResourceDefinition {
  const { group, version, kind, plural, singular, shortNames, categories, scope, description, spec, status, printerColumns, validations } = options;
  const properties: Record<string, StructuralSchema> = {
    apiVersion: {
      type: "string",
      description: "The versioned schema of this representation of an object; servers convert recognized schemas to the latest internal value.",
    },
    kind: { type: "string", description: "The REST resource this object represents, in CamelCase." },
    metadata: { type: "object" },
    spec,
  };
  if (status !== undefined) properties.status = status;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular,
        ...(shortNames === undefined ? {} : { shortNames }),
        ...(categories === undefined ? {} : { categories }),
      },
      scope,
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              description,
              type: "object",
              properties,
              required: ["spec"],
              ...(validations === undefined ? {} : { "x-kubernetes-validations": [...validations] }),
            },
          },
          ...(status === undefined ? {} : { subresources: { status: {} } }),
          ...(printerColumns === undefined ? {} : { additionalPrinterColumns: printerColumns }),
        },
      ],
    },
  };
}
