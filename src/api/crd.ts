// Generates structural CustomResourceDefinitions from the zod schemas, so the schemas stay the single source of truth.
import yaml from "js-yaml";
import { z } from "zod";
import { KUSTOMIZE_GROUP, KUSTOMIZE_VERSION, KustomizationSpec, KustomizationStatus } from "./kustomize.ts";
import { OCIRepositorySpec, OCIRepositoryStatus, SOURCE_GROUP, SOURCE_VERSION } from "./source.ts";

type JsonSchema = { [key: string]: unknown };

const SAFE_INTEGER_BOUNDS = [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];

/** Rewrites zod's OpenAPI output into what a structural CRD schema allows. */
function structural(schema: JsonSchema): JsonSchema {
  const result: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$schema" || key === "id") continue;
    if (key === "additionalProperties" && value === false) continue;
    if ((key === "minimum" || key === "maximum") && SAFE_INTEGER_BOUNDS.includes(value as number)) continue;
    if (key === "properties") {
      const properties = Object.entries(value as Record<string, JsonSchema>);
      result.properties = Object.fromEntries(properties.map(([name, child]) => [name, structural(child)]));
    } else if ((key === "items" || key === "additionalProperties") && typeof value === "object" && value !== null) {
      result[key] = structural(value as JsonSchema);
    } else {
      result[key] = value;
    }
  }
  if (result.type === "integer" && result.format === undefined) result.format = "int64";
  if (result.format === "date-time" && typeof result.pattern === "string") delete result.pattern;
  return result;
}

export function openApiSchema(schema: z.ZodType): JsonSchema {
  return structural(z.toJSONSchema(schema, { io: "input", target: "openapi-3.0" }) as JsonSchema);
}

interface ResourceDefinition {
  readonly group: string;
  readonly version: string;
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: readonly string[];
  readonly categories: readonly string[];
  readonly spec: z.ZodType;
  readonly status: z.ZodType;
  readonly description: string;
  readonly revisionPath: string;
}

const READY_STATUS = ".status.conditions[?(@.type==\"Ready\")].status";
const READY_MESSAGE = ".status.conditions[?(@.type==\"Ready\")].message";

export function customResourceDefinition(definition: ResourceDefinition) {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${definition.plural}.${definition.group}` },
    spec: {
      group: definition.group,
      names: {
        kind: definition.kind,
        listKind: `${definition.kind}List`,
        plural: definition.plural,
        singular: definition.singular,
        shortNames: [...definition.shortNames],
        categories: [...definition.categories],
      },
      scope: "Namespaced",
      versions: [
        {
          name: definition.version,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Ready", type: "string", jsonPath: READY_STATUS },
            { name: "Status", type: "string", jsonPath: READY_MESSAGE },
            { name: "Revision", type: "string", jsonPath: definition.revisionPath },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: definition.description,
              required: ["spec"],
              properties: {
                apiVersion: { type: "string" },
                kind: { type: "string" },
                metadata: { type: "object" },
                spec: openApiSchema(definition.spec),
                status: { ...openApiSchema(definition.status), default: { observedGeneration: -1 } },
              },
            },
          },
        },
      ],
    },
  };
}

export const CRDS = {
  [`${SOURCE_GROUP}_ocirepositories.yaml`]: customResourceDefinition({
    group: SOURCE_GROUP,
    version: SOURCE_VERSION,
    kind: "OCIRepository",
    plural: "ocirepositories",
    singular: "ocirepository",
    shortNames: ["ocirepo"],
    categories: ["all", "ferry", "ferry-sources"],
    spec: OCIRepositorySpec,
    status: OCIRepositoryStatus,
    description: "OCIRepository follows an OCI artifact (a tag, semver range or digest), verifies it and keeps it in the controller's cache.",
    revisionPath: ".status.artifact.revision",
  }),
  [`${KUSTOMIZE_GROUP}_kustomizations.yaml`]: customResourceDefinition({
    group: KUSTOMIZE_GROUP,
    version: KUSTOMIZE_VERSION,
    kind: "Kustomization",
    plural: "kustomizations",
    singular: "kustomization",
    shortNames: ["ks"],
    categories: ["all", "ferry", "ferry-appliers"],
    spec: KustomizationSpec,
    status: KustomizationStatus,
    description: "Kustomization builds a directory of an artifact with kustomize and applies it with server-side apply, keeping an inventory to prune.",
    revisionPath: ".status.lastAppliedRevision",
  }),
};

/** The files of crds/, rendered: file name -> YAML text. */
export function renderCrds(): Map<string, string> {
  const header = "# Generated from the zod schemas in src/api by `npm run crds`. Do not edit.\n";
  return new Map(Object.entries(CRDS).map(([file, crd]) => [file, `${header}${yaml.dump(crd, { lineWidth: -1, noRefs: true })}`]));
}
