// The Node flags every process of the mesh runs with, wherever it runs (make run, the benchmark, the
// image: deploy/Dockerfile sets the same through NODE_OPTIONS; a deploy test keeps the two equal).

/**
 * Young-generation semi-spaces of at most 2 MiB (Node 20's default grows to 16 MiB and stays committed
 * once a burst of load has grown it: +25–30 MiB of idle RSS per process). The extra scavenges cost less
 * than a run-to-run difference in the benchmark (docs/performance.md, idle RSS).
 */
export const meshNodeFlags: readonly string[] = ["--max-semi-space-size=2"];
