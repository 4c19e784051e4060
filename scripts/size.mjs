// Reports the shipped size of the built package, raw / gzip -9 / brotli q11:
//   - the optimized .wasm;
//   - the JavaScript as an app ships it: index.js + transport.js + subagents.js + the wasm-bindgen
//     glue, bundled and minified with esbuild (what any bundler does), and also as published.
//     `ai` stays external: it is a peer dependency the app already ships for `useChat`.
//
//   node scripts/size.mjs pkg                 print a table
//   node scripts/size.mjs pkg --json          print JSON
//   node scripts/size.mjs pkg --budget 46080  also fail (exit 1) if wasm + bundled JS gzip > budget
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { build } from "esbuild";

const args = process.argv.slice(2);
const dir = args[0] ?? "pkg";
const json = args.includes("--json");
const budgetAt = args.indexOf("--budget");
const budget = budgetAt >= 0 ? Number(args[budgetAt + 1]) : undefined;

function measure(name, bytes) {
  return {
    file: name,
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  };
}

function read(name) {
  const path = join(dir, name);
  if (!existsSync(path)) {
    console.error(`size: ${path} is missing (run scripts/build)`);
    process.exit(1);
  }
  return readFileSync(path);
}

const wasm = measure("trigger_chat_wasm_bg.wasm", read("trigger_chat_wasm_bg.wasm"));
const bundled = await build({
  entryPoints: [join(dir, "index.js")],
  bundle: true,
  minify: true,
  format: "esm",
  platform: "browser",
  write: false,
  outdir: join(tmpdir(), "trigger-chat-wasm-size"),
  loader: { ".wasm": "file" },
  external: ["ai"],
  logLevel: "silent",
});
const js = bundled.outputFiles.find((f) => f.path.endsWith(".js"));
const shipped = measure("JS, bundled + minified", Buffer.from(js.contents));
const published = ["index.js", "transport.js", "trigger_chat_wasm.js"].map((f) => measure(`  ${f} (as published)`, read(f)));
const total = {
  file: "total (wasm + bundled JS)",
  raw: wasm.raw + shipped.raw,
  gzip: wasm.gzip + shipped.gzip,
  brotli: wasm.brotli + shipped.brotli,
};

if (json) {
  console.log(JSON.stringify({ wasm, js: shipped, published, total }, null, 2));
} else {
  const kb = (n) => (n / 1024).toFixed(1).padStart(7) + " KB";
  console.log("file                                raw        gzip      brotli");
  for (const r of [wasm, shipped, total, ...published]) {
    console.log(`${r.file.padEnd(32)}${kb(r.raw)}${kb(r.gzip)}${kb(r.brotli)}`);
  }
}
if (budget !== undefined) {
  if (!(total.gzip <= budget)) {
    console.error(`size: ${total.gzip} bytes gzip exceeds the budget of ${budget} bytes`);
    process.exit(1);
  }
  console.log(`size: ${total.gzip} bytes gzip is within the budget of ${budget} bytes`);
}
