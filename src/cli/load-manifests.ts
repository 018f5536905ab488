/**
 * Reads Kubernetes manifests from files and folders: YAML (multi-document)
 * or JSON, each object tagged with where it came from so errors can name it.
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import { parseAllDocuments } from "yaml";

/** A parsed object and the file (and document index) it came from. */
export interface SourcedObject {
  object: unknown;
  source: string;
}

/** A manifest that could not be read or parsed. */
export class ManifestError extends Error {
  override name = "ManifestError";
}

const MANIFEST_EXTENSIONS = new Set([".yaml", ".yml", ".json"]);

function manifestFiles(path: string): string[] {
  let stat;
  try {
    stat = statSync(path);
  } catch (cause) {
    throw new ManifestError(`Cannot read manifests from "${path}": no such file or folder`, { cause });
  }
  if (!stat.isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((name) => {
      const child = join(path, name);
      if (statSync(child).isDirectory()) return manifestFiles(child);
      return MANIFEST_EXTENSIONS.has(extname(name)) ? [child] : [];
    });
}

/**
 * Parses every manifest under the given paths.
 *
 * @example
 * ```ts
 * const objects = loadManifests(["examples/demo.yaml"]);
 * ```
 */
export function loadManifests(paths: string[]): SourcedObject[] {
  const out: SourcedObject[] = [];
  for (const file of paths.flatMap(manifestFiles)) {
    const text = readFileSync(file, "utf8");
    const docs = parseAllDocuments(text);
    const list = Array.isArray(docs) ? docs : [docs];
    list.forEach((doc, index) => {
      const error = doc.errors[0];
      if (error) {
        throw new ManifestError(`Cannot parse "${file}" document ${index + 1}: ${error.message}`);
      }
      const object: unknown = doc.toJS();
      if (object !== null && object !== undefined) {
        out.push({ object, source: list.length > 1 ? `${file}#${index + 1}` : file });
      }
    });
  }
  return out;
}
