// Reads a V8 .cpuprofile (node --cpu-prof) and prints where the CPU went: the top functions by self time,
// and self time summed per package (node_modules/<pkg>), per project folder and for node internals.
// Usage: node --import tsx bench/cpuprofile-top.ts <file.cpuprofile> [top=30]
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error("usage: bench/cpuprofile-top.ts <file.cpuprofile> [top]");
  process.exit(2);
}
const top = Number(topArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));

// Self time per node: each sample's delta goes to the node that was on top of the stack.
const selfUs = new Map<number, number>();
for (let i = 0; i < profile.samples.length; i++) {
  const delta = profile.timeDeltas[i + 1] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + delta);
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const idle = [...selfUs].filter(([id]) => byId.get(id)?.callFrame.functionName === "(idle)").reduce((a, [, us]) => a + us, 0);
const gc = [...selfUs].filter(([id]) => byId.get(id)?.callFrame.functionName === "(garbage collector)").reduce((a, [, us]) => a + us, 0);
const busy = total - idle;

function where(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, "");
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith("node:")) return "node:" + url.slice(5).split("/")[0];
  const project = /\/(dist\/|)(gateway|internal\/[^/]+|services\/[^/]+|gen|bench)\//.exec(url);
  if (project) return project[2];
  return url === "" ? "(native/vm)" : url;
}

const byFunction = new Map<string, number>();
const byPlace = new Map<string, number>();
for (const [id, us] of selfUs) {
  const frame = byId.get(id)?.callFrame;
  if (!frame || frame.functionName === "(idle)") continue;
  const name = `${frame.functionName || "(anonymous)"}  ${frame.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/(dist\/)?/, "")}:${frame.lineNumber + 1}`;
  byFunction.set(name, (byFunction.get(name) ?? 0) + us);
  byPlace.set(where(frame), (byPlace.get(where(frame)) ?? 0) + us);
}

// Inclusive time of project functions (gateway/, internal/, services/): each sample counts once for every
// distinct project function on its stack, so "what does this middleware cost, callees included".
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
const inclusive = new Map<string, number>();
const isProject = (url: string) => !url.includes("node_modules") && /\/(dist\/)?(gateway|internal|services)\//.test(url);
for (const [id, us] of selfUs) {
  const seen = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const frame = byId.get(at)?.callFrame;
    if (!frame || !isProject(frame.url)) continue;
    seen.add(`${frame.functionName || "(anonymous)"}  ${frame.url.replace(/^file:\/\/.*?\/(dist\/)?/, "")}:${frame.lineNumber + 1}`);
  }
  for (const key of seen) inclusive.set(key, (inclusive.get(key) ?? 0) + us);
}

const pct = (us: number) => `${((100 * us) / busy).toFixed(1).padStart(5)} %`;
console.log(`${file}\nwall ${(total / 1e6).toFixed(1)} s, busy ${(busy / 1e6).toFixed(2)} s (idle ${(idle / 1e6).toFixed(1)} s), GC ${pct(gc)} of busy`);
console.log(`\nself time by package / folder (% of busy):`);
for (const [place, us] of [...byPlace].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`  ${pct(us)}  ${place}`);
console.log(`\ntop ${top} functions by self time (% of busy):`);
for (const [name, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${name}`);
console.log(`\ntop ${top} project functions by inclusive time (callees included, % of busy):`);
for (const [name, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${name}`);
