// What a process cannot serve without, and how its state is read: one shape and one timeout rule for
// gRPC health, the admin port's /readyz and the gateway's /readyz.

/** A dependency the process cannot serve without; check() resolving false or throwing means down. */
export interface DependencyCheck {
  readonly name: string;
  check(): Promise<boolean>;
}

/** Never rejects: a throw, a rejection, false, or no answer within timeoutMs all mean down. */
export async function isUp(dependency: DependencyCheck, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => (timer = setTimeout(resolve, timeoutMs, false)));
  try {
    return (await Promise.race([Promise.resolve().then(() => dependency.check()), timedOut])) === true;
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** Checks every dependency in parallel; returns each one's state by name. */
export async function checkAll(dependencies: readonly DependencyCheck[], timeoutMs: number): Promise<Record<string, boolean>> {
  const states = await Promise.all(dependencies.map((d) => isUp(d, timeoutMs)));
  return Object.fromEntries(dependencies.map((d, i) => [d.name, states[i]]));
}
