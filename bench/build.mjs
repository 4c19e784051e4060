// Builds the bench pages into bench/dist/ (served by chat-devserver --static-dir) and measures
// the official transport's shipped size. Used by run.mjs; `node build.mjs` builds the pages only.
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
export const DIST = join(here, "dist");

export function measure(bytes) {
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

/** The three pages: ours (pkgDir), official (@trigger.dev/sdk), raw (the minimal reader). */
export async function buildPages(pkgDir) {
  rmSync(DIST, { recursive: true, force: true });
  for (const name of ["ours", "official", "raw"]) {
    const out = join(DIST, name);
    mkdirSync(out, { recursive: true });
    await build({
      entryPoints: [join(here, "page", `${name}.js`)],
      bundle: true,
      minify: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      outfile: join(out, "page.js"),
      // @trigger.dev/core's barrel reaches a dynamic `import("node:http2")` (inventory W2).
      external: ["node:*"],
      alias: { "trigger-chat-wasm": resolve(pkgDir, "index.js") },
      logLevel: "error",
    });
    writeFileSync(
      join(out, "index.html"),
      `<!doctype html><meta charset="utf-8"><title>bench ${name}</title><script type="module" src="./page.js"></script>\n`,
    );
  }
  // The default init() fetches the .wasm next to the module that imports it: the bundle.
  copyFileSync(join(pkgDir, "trigger_chat_wasm_bg.wasm"), join(DIST, "ours", "trigger_chat_wasm_bg.wasm"));
}

/**
 * The official transport as an app ships it: `import { TriggerChatTransport } from
 * "@trigger.dev/sdk/chat"` bundled, tree-shaken and minified by esbuild for the browser
 * (shared/reference/js-transport-inventory.md §5; `--external:node:*` is required, W2).
 */
export async function officialSize() {
  const result = await build({
    stdin: {
      contents: `export { TriggerChatTransport } from "@trigger.dev/sdk/chat";\n`,
      resolveDir: here,
      loader: "js",
    },
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    external: ["node:*"],
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  const js = Buffer.from(result.outputFiles[0].contents);
  const byPackage = {};
  const [output] = Object.values(result.metafile.outputs);
  for (const [file, info] of Object.entries(output.inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
    if (m) byPackage[m[1]] = (byPackage[m[1]] ?? 0) + info.bytesInOutput;
  }
  return { ...measure(js), byPackage };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await buildPages(resolve(here, process.argv[2] ?? "../pkg"));
  console.log(JSON.stringify(await officialSize(), null, 2));
}
