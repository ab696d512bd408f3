import { expect } from "chai";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { repoRoot } from "./support/service-process.js";

// The house rules, checked mechanically: a service reaches another only through gen/ clients,
// internal/ and the gateway import no service, and no module imports itself in a cycle.

const sourceRoots = ["internal", "services", "gateway", "test", "bench", "scripts"];
const importPattern = /(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function sourceFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((name) => {
    const path = join(dir, name);
    if (name === "node_modules") return [];
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative import of every source file, resolved to a repo-relative .ts path. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceRoots.flatMap((root) => sourceFiles(join(repoRoot, root)))) {
    const text = readFileSync(file, "utf8");
    const targets: string[] = [];
    for (const match of text.matchAll(importPattern)) {
      const spec = match[1] ?? match[2];
      if (!spec.startsWith(".")) continue;
      targets.push(relative(repoRoot, resolve(dirname(file), spec)).replace(/\.js$/, ".ts"));
    }
    graph.set(relative(repoRoot, file), targets);
  }
  return graph;
}

const serviceOf = (path: string) => /^services\/([^/]+)\//.exec(path)?.[1];

describe("architecture rules", () => {
  const graph = importGraph();

  it("finds the sources it guards", () => {
    expect([...graph.keys()].some((f) => f.startsWith("internal/rpc/"))).to.equal(true);
    expect([...graph.keys()].some((f) => f.startsWith("services/session/"))).to.equal(true);
  });

  it("never lets a service import another service's folder", () => {
    const offenders = [...graph].flatMap(([file, targets]) =>
      targets.filter((t) => serviceOf(file) && serviceOf(t) && serviceOf(t) !== serviceOf(file)).map((t) => `${file} -> ${t}`),
    );
    expect(offenders).to.deep.equal([]);
  });

  it("keeps internal/ and the gateway free of service imports", () => {
    const offenders = [...graph].flatMap(([file, targets]) =>
      file.startsWith("internal/") || file.startsWith("gateway/")
        ? targets.filter((t) => t.startsWith("services/") || (file.startsWith("internal/") && t.startsWith("gateway/"))).map((t) => `${file} -> ${t}`)
        : [],
    );
    expect(offenders).to.deep.equal([]);
  });

  it("has no circular imports", () => {
    const cycles: string[] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
        return;
      }
      state.set(file, "visiting");
      for (const target of graph.get(file) ?? []) visit(target, [...path, file]);
      state.set(file, "done");
    };
    for (const file of graph.keys()) visit(file, []);
    expect(cycles).to.deep.equal([]);
  });
});
