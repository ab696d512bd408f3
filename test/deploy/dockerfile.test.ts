// deploy/Dockerfile, read without Docker: a multi-stage build whose runtime stage holds compiled
// JavaScript and production dependencies only, runs as a numeric non-root user, and copies what exists.
import { expect } from "chai";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { meshProcesses, repoRoot } from "./mesh-config.js";

interface Instruction {
  readonly keyword: string;
  readonly args: string;
}
interface Stage {
  readonly name: string;
  readonly instructions: Instruction[];
}

/** The Dockerfile's stages with their instructions (continuation lines joined, comments dropped). */
function readStages(file: string): Stage[] {
  const text = readFileSync(file, "utf8").replace(/\\\n/g, " ");
  const stages: Stage[] = [];
  for (const line of text.split("\n").map((l) => l.trim())) {
    if (line === "" || line.startsWith("#")) continue;
    const [keyword, ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(" ") };
    if (instruction.keyword === "FROM") {
      stages.push({ name: /\bAS\s+(\S+)/i.exec(instruction.args)?.[1] ?? String(stages.length), instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

const dockerfile = join(repoRoot, "deploy/Dockerfile");
const stages = readStages(dockerfile);
const runtime = stages.at(-1)!;
const of = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

describe("deploy/Dockerfile", () => {
  it("builds in stages and ships a runtime stage without TypeScript or dev dependencies", () => {
    expect(stages.map((s) => s.name)).to.include.members(["build", "deps", "runtime"]);
    const copies = of(runtime, "COPY");
    expect(copies).to.include("--from=deps /app/node_modules node_modules");
    expect(copies).to.include("--from=build /app/dist dist");
    // The runtime stage installs nothing and copies no source.
    expect(of(runtime, "RUN").join(" ")).to.not.match(/npm (install|ci)/);
    for (const copy of copies.filter((c) => !c.startsWith("--from="))) expect(copy).to.equal("package.json ./");
  });

  it("installs only production dependencies for the runtime, with npm install (the mirror here breaks npm ci)", () => {
    const deps = stages.find((s) => s.name === "deps")!;
    expect(of(deps, "RUN").join(" ")).to.match(/npm install --omit=dev\b/);
    expect(stages.flatMap((s) => of(s, "RUN")).join(" ")).to.not.match(/npm ci\b/);
  });

  it("runs as a numeric non-root user, so Kubernetes' runAsNonRoot can verify it", () => {
    const users = of(runtime, "USER");
    expect(users).to.have.length(1);
    const [uid, gid] = users[0].split(":").map(Number);
    expect(uid).to.be.greaterThan(0);
    expect(gid).to.be.greaterThan(0);
  });

  it("compiles every folder tsconfig.build.json includes, so each process's entry point is in dist/", () => {
    const build = stages.find((s) => s.name === "build")!;
    const copied = of(build, "COPY").map((c) => c.split(/\s+/)[0]);
    const { include } = JSON.parse(readFileSync(join(repoRoot, "tsconfig.build.json"), "utf8")) as { include: string[] };
    expect(copied).to.include.members(include);
    for (const process of meshProcesses) expect(copied.some((dir) => process.dir.startsWith(dir)), process.name).to.equal(true);
    expect(of(build, "RUN").join(" ")).to.include("scripts/copy-assets.sh");
  });

  it("copies only paths that exist and that its .dockerignore lets through", () => {
    const ignored = readFileSync(join(repoRoot, "deploy/Dockerfile.dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    for (const stage of stages) {
      for (const copy of of(stage, "COPY").filter((c) => !c.startsWith("--from="))) {
        const sources = copy.split(/\s+/).slice(0, -1);
        for (const source of sources) {
          expect(existsSync(join(repoRoot, source)), source).to.equal(true);
          expect(ignored, `${source} is excluded from the build context`).to.not.include(source);
        }
      }
    }
  });
});
