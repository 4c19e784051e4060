// Assembles the multi-tab harness into target/e2e/tabs-dist (tests/e2e/run calls it):
//   index.html + harness.js        plain ES modules, no bundler
//   pkg/                           a copy of the built package (harness.js imports ./pkg/index.js)
//   pkg-moved/, elsewhere/         the package again, its .wasm moved to elsewhere/module.wasm
//   sandboxed.html                 the harness in a sandboxed iframe (an opaque origin)
//   official-chat.js               the official TriggerChatTransport (@trigger.dev/sdk/chat 4.8.3,
//                                  installed in tests/official) bundled for the browser by esbuild
// The official browser build needs `--external:node:*` (inventory W2: a dynamic `node:http2`
// import in @s2-dev/streamstore, never reached in a browser).
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const out = join(root, "target", "e2e", "tabs-dist");
const official = join(root, "tests", "official");

if (!existsSync(join(official, "node_modules", "@trigger.dev", "sdk"))) {
  execFileSync("npm", ["ci", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: official, stdio: ["ignore", 2, 2] });
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
cpSync(join(here, "harness.js"), join(out, "harness.js"));
cpSync(join(root, "pkg"), join(out, "pkg"), { recursive: true });
// The package once more without its .wasm, which is served from elsewhere (init's argument).
cpSync(join(root, "pkg"), join(out, "pkg-moved"), { recursive: true, filter: (src) => !src.endsWith(".wasm") });
mkdirSync(join(out, "elsewhere"));
cpSync(join(root, "pkg", "trigger_chat_wasm_bg.wasm"), join(out, "elsewhere", "module.wasm"));
cpSync(join(here, "sandboxed.html"), join(out, "sandboxed.html"));

await build({
  stdin: {
    contents: 'export { TriggerChatTransport } from "@trigger.dev/sdk/chat";',
    resolveDir: official,
    sourcefile: "official-entry.js",
  },
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  external: ["node:*"],
  define: { "process.env.NODE_ENV": '"production"' },
  outfile: join(out, "official-chat.js"),
  logLevel: "warning",
});
// Last: tests/e2e/run takes index.html as the stamp of a complete build.
cpSync(join(here, "index.html"), join(out, "index.html"));
