// A tiny process for shutdown.test.ts: registers a step, listens for signals, says "ready", then idles.
// With the argument "hang" its step never finishes, so only a second signal ends it.
import { createShutdown } from "../shutdown.js";

const hang = process.argv[2] === "hang";
const write = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
const shutdown = createShutdown({
  logger: { info: (msg) => write(`info: ${msg}`), error: (msg) => write(`error: ${msg}`) },
  graceMs: 10_000,
});

const idle = setInterval(() => undefined, 60_000);
shutdown.onShutdown("idle timer", () => clearInterval(idle));
shutdown.onShutdown("fixture step", async () => {
  if (hang) await new Promise(() => undefined);
  write("step ran");
});
shutdown.listen();
write("ready");
