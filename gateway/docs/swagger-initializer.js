// Starts Swagger UI on the gateway's own document (replaces the package's petstore initializer).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // Cookie auth works from this page as is; "Try it out" sends the browser's session cookie.
    withCredentials: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
