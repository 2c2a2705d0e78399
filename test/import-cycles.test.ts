// No module of src/ imports itself through others: a cycle makes the order modules are initialised in depend on
// which one is imported first (src/cli/start.ts and reload-command.ts had one, through runtimePaths). The import
// graph is esbuild's metafile of every file of src/; cycles are its strongly connected components (Tarjan).
import { build } from "esbuild";
import { readdirSync } from "node:fs";
import { join, relative } from "node:path";
import { expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..");
const SOURCE_DIRS = ["src", "src/cli", "src/helper", "src/plugin"];

/** file → the files it imports, for every module reachable from a file of src/ (node: builtins left out). */
async function importGraph(): Promise<Map<string, string[]>> {
  const entryPoints = SOURCE_DIRS.flatMap((dir) =>
    readdirSync(join(ROOT, dir))
      .filter((name) => name.endsWith(".ts") && !name.endsWith(".d.ts"))
      .map((name) => join(ROOT, dir, name)),
  );
  const result = await build({
    entryPoints,
    bundle: true,
    write: false,
    metafile: true,
    platform: "node",
    format: "esm",
    outdir: join(ROOT, "build", "import-cycles"),
    logLevel: "silent",
    absWorkingDir: ROOT,
  });
  const graph = new Map<string, string[]>();
  for (const [file, input] of Object.entries(result.metafile.inputs))
    graph.set(
      file,
      input.imports.filter((edge) => !edge.external).map((edge) => edge.path),
    );
  return graph;
}

/** The strongly connected components of more than one file, or of one file importing itself. */
function cyclesOf(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (file: string): void => {
    index.set(file, next);
    low.set(file, next++);
    stack.push(file);
    onStack.add(file);
    for (const imported of graph.get(file) ?? []) {
      if (!index.has(imported)) {
        visit(imported);
        low.set(file, Math.min(low.get(file)!, low.get(imported)!));
      } else if (onStack.has(imported)) {
        low.set(file, Math.min(low.get(file)!, index.get(imported)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || (graph.get(file) ?? []).includes(file))
      cycles.push(component.map((path) => relative(ROOT, join(ROOT, path))).sort());
  };
  for (const file of graph.keys()) if (!index.has(file)) visit(file);
  return cycles;
}

it("finds a cycle when there is one (the check itself)", () => {
  const graph = new Map([
    ["a.ts", ["b.ts"]],
    ["b.ts", ["c.ts"]],
    ["c.ts", ["a.ts"]],
    ["d.ts", ["a.ts"]],
  ]);
  expect(cyclesOf(graph)).toEqual([["a.ts", "b.ts", "c.ts"]]);
});

it("src/ has no import cycle", async () => {
  const graph = await importGraph();
  expect(graph.size).toBeGreaterThan(50);
  expect(cyclesOf(graph)).toEqual([]);
});
