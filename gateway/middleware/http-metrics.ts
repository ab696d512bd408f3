// RED metrics for the REST surface, labelled with route templates so cardinality stays bounded.
import type { RequestHandler } from "express";
import type { Registry } from "prom-client";
import { getOrCreateCounter, getOrCreateHistogram } from "../../internal/metrics/registry.js";
import { routeOf } from "../request-context.js";
import { onResponseEnd } from "./response-end.js";

const durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const knownMethods = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/**
 * Counts every request in `http_requests_total{method,route,status}` and observes its duration in
 * `http_request_duration_seconds{method,route}` when the response is over (status 499 when the client
 * left before the headers went out). `route` is the template from routeOf ("/users/:id"), never the
 * raw path: "unmatched" when no route claimed the request (404s, probes). Methods outside the usual
 * seven are labelled "OTHER". Throws at creation if the registry holds these names with other types
 * or labels.
 */
export function createHttpMetricsMiddleware(registry: Registry): RequestHandler {
  const requests = getOrCreateCounter(registry, {
    name: "http_requests_total",
    help: "HTTP requests answered by the gateway, by method, route template and status.",
    labelNames: ["method", "route", "status"],
  });
  const duration = getOrCreateHistogram(registry, {
    name: "http_request_duration_seconds",
    help: "Time from request to the end of its response, by method and route template.",
    labelNames: ["method", "route"],
    buckets: durationBuckets,
  });
  return (req, res, next) => {
    const stopTimer = duration.startTimer();
    onResponseEnd(res, ({ status }) => {
      const method = knownMethods.has(req.method) ? req.method : "OTHER";
      const route = routeOf(res) ?? "unmatched";
      stopTimer({ method, route });
      requests.inc({ method, route, status: String(status) });
    });
    next();
  };
}
