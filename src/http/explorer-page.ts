import { randomBytes } from "node:crypto";
import { EXPLORER_PREFIX, packageVersion } from "./explorer-assets.js";

/** An operation, its variables and request headers that the explorer starts with. */
export interface ExplorerPrefill {
  readonly document: string;
  readonly variables: Readonly<Record<string, unknown>>;
  readonly headers: Readonly<Record<string, string>>;
}

/** Apollo's embeddable Sandbox (the default explorer), and the origin of the frame it opens. */
export const SANDBOX_CDN = "https://embeddable-sandbox.cdn.apollographql.com";
const SANDBOX_SCRIPT = `${SANDBOX_CDN}/v2/embeddable-sandbox.umd.production.min.js`;
const SANDBOX_FRAME = "https://sandbox.embed.apollographql.com";
/** How long the page waits for Sandbox's script before it opens the local explorer instead. */
export const SANDBOX_LOAD_TIMEOUT_MS = 8000;

/** JSON for inside a `<script>`: nothing in it can close the element or start markup. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/**
 * The page at `GET /graphql` (outside production). Apollo Sandbox is the default, loaded from
 * Apollo's CDN with its telemetry off, exactly as Apollo Server's own landing page embeds it. When
 * that script fails to load (offline, a proxy, DNS) or has not loaded within
 * {@link SANDBOX_LOAD_TIMEOUT_MS}, the page opens a local explorer instead: GraphiQL with React,
 * served by the gateway itself under `/explorer/` (src/http/explorer-assets.ts), so nothing leaves
 * the machine. `/graphql#local` opens the local explorer at once. Both start from the same prefill.
 */
export function explorerPageHtml(prefill: ExplorerPrefill | undefined): string {
  const nonce = randomBytes(16).toString("base64");
  const sandboxConfig = {
    target: "#embeddableSandbox",
    initialState: {
      ...(prefill === undefined ? {} : { document: prefill.document, variables: { ...prefill.variables }, headers: { ...prefill.headers } }),
      includeCookies: false,
      pollForSchemaUpdates: false,
    },
    hideCookieToggle: false,
    endpointIsEditable: false,
    runtime: `@apollo/server@${packageVersion("@apollo/server") ?? "5"}`,
    runTelemetry: false,
    allowDynamicStyles: false,
  };
  const localConfig = {
    assets: EXPLORER_PREFIX,
    document: prefill?.document ?? "",
    variables: prefill === undefined ? "" : JSON.stringify(prefill.variables, null, 2),
    headers: prefill === undefined || Object.keys(prefill.headers).length === 0 ? "" : JSON.stringify(prefill.headers, null, 2),
    sandboxScript: SANDBOX_SCRIPT,
    timeoutMs: SANDBOX_LOAD_TIMEOUT_MS,
  };
  const csp = [
    `script-src 'self' 'nonce-${nonce}' ${SANDBOX_CDN}`,
    // GraphiQL (CodeMirror's hints and widgets) writes style attributes into its markup, which a
    // nonce cannot cover. Scripts stay nonce-bound; the page holds no markup from anyone else.
    `style-src 'self' 'unsafe-inline' ${SANDBOX_CDN} https://fonts.googleapis.com`,
    "img-src 'self' data:",
    "font-src 'self' data: https://fonts.gstatic.com",
    `frame-src ${SANDBOX_FRAME}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
  return `<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta http-equiv="Content-Security-Policy" content="${csp}" />
    <meta name="viewport" content="width=device-width,initial-scale=1" />
    <meta name="referrer" content="no-referrer" />
    <title>Worker Session Gateway · GraphQL</title>
    <style>
      html, body { margin: 0; height: 100%; overflow: hidden; font-family: system-ui, sans-serif; }
      #embeddableSandbox { position: absolute; inset: 0; }
      #embeddableSandbox iframe { width: 100%; height: 100%; border: none; background: white; }
      #localExplorer { display: none; position: absolute; inset: 0; flex-direction: column; }
      #localExplorer.open { display: flex; }
      #localExplorer .note { padding: 6px 12px; font-size: 13px; background: #fff8e1; border-bottom: 1px solid #e0c97f; color: #4a3b00; }
      #localExplorer .graphiql-mount { flex: 1; min-height: 0; }
      #localExplorer code { font-size: 12px; }
    </style>
  </head>
  <body>
    <div id="embeddableSandbox"></div>
    <div id="localExplorer">
      <div class="note" id="localExplorerNote"></div>
      <div class="graphiql-mount" id="graphiql"></div>
    </div>
    <script nonce="${nonce}">
      (function () {
        var sandboxConfig = ${scriptJson(sandboxConfig)};
        var local = ${scriptJson(localConfig)};
        var endpoint = window.location.origin + window.location.pathname;
        var settled = false;
        var timer;

        function loadScript(src, done, failed) {
          var script = document.createElement("script");
          script.src = src;
          script.onload = done;
          script.onerror = failed;
          document.body.appendChild(script);
        }

        function openLocalExplorer(reason) {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          document.getElementById("embeddableSandbox").remove();
          var root = document.getElementById("localExplorer");
          var note = document.getElementById("localExplorerNote");
          note.textContent = reason + " This is GraphiQL, served by the gateway from its own packages: operations go to " + endpoint + " only.";
          root.className = "open";
          var css = document.createElement("link");
          css.rel = "stylesheet";
          css.href = local.assets + "graphiql.min.css";
          document.head.appendChild(css);
          var files = ["react.production.min.js", "react-dom.production.min.js", "graphiql.min.js"];
          var failed = function () { note.textContent = "The local explorer's files could not be loaded from " + local.assets + "; use curl (README: Quick start)."; };
          (function next(i) {
            if (i < files.length) return loadScript(local.assets + files[i], function () { next(i + 1); }, failed);
            var fetcher = window.GraphiQL.createFetcher({ url: endpoint });
            var props = { fetcher: fetcher, defaultEditorToolsVisibility: true, shouldPersistHeaders: false, isHeadersEditorEnabled: true };
            if (local.document) props.query = local.document;
            if (local.variables) props.variables = local.variables;
            if (local.headers) props.headers = local.headers;
            window.ReactDOM.createRoot(document.getElementById("graphiql")).render(window.React.createElement(window.GraphiQL, props));
          })(0);
        }

        if (window.location.hash === "#local") return openLocalExplorer("The local explorer was asked for (#local).");
        timer = setTimeout(function () {
          openLocalExplorer("Apollo Sandbox did not load within " + local.timeoutMs / 1000 + " s.");
        }, local.timeoutMs);
        loadScript(
          local.sandboxScript + "?runtime=" + encodeURIComponent(sandboxConfig.runtime),
          function () {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            sandboxConfig.initialEndpoint = endpoint;
            new window.EmbeddedSandbox(sandboxConfig);
          },
          function () { openLocalExplorer("Apollo Sandbox could not be loaded from Apollo's CDN (offline?)."); },
        );
      })();
    </script>
  </body>
</html>
`;
}
