// Reports the shipped size of the built package: the optimized .wasm plus the JS a browser loads
// (wasm-bindgen glue + our index.js), raw / gzip -9 / brotli q11.
//
//   node scripts/size.mjs pkg                 print a table
//   node scripts/size.mjs pkg --json          print JSON
//   node scripts/size.mjs pkg --budget 45000  also fail (exit 1) if wasm + JS glue gzip > budget bytes
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";

const args = process.argv.slice(2);
const dir = args[0] ?? "pkg";
const json = args.includes("--json");
const budgetAt = args.indexOf("--budget");
const budget = budgetAt >= 0 ? Number(args[budgetAt + 1]) : undefined;

const files = ["trigger_chat_wasm_bg.wasm", "trigger_chat_wasm.js", "transport.js", "index.js"];
const rows = [];
for (const name of files) {
  const path = join(dir, name);
  if (!existsSync(path)) {
    console.error(`size: ${path} is missing (run scripts/build)`);
    process.exit(1);
  }
  const bytes = readFileSync(path);
  rows.push({
    file: name,
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: 9 }).length,
    brotli: brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11 },
    }).length,
  });
}
const total = rows.reduce(
  (t, r) => ({ file: "total", raw: t.raw + r.raw, gzip: t.gzip + r.gzip, brotli: t.brotli + r.brotli }),
  { raw: 0, gzip: 0, brotli: 0 },
);

if (json) {
  console.log(JSON.stringify({ files: rows, total }, null, 2));
} else {
  const kb = (n) => (n / 1024).toFixed(1).padStart(7) + " KB";
  console.log("file                          raw        gzip      brotli");
  for (const r of [...rows, total]) {
    console.log(`${r.file.padEnd(26)}${kb(r.raw)}${kb(r.gzip)}${kb(r.brotli)}`);
  }
}
if (budget !== undefined) {
  if (!(total.gzip <= budget)) {
    console.error(`size: ${total.gzip} bytes gzip exceeds the budget of ${budget} bytes`);
    process.exit(1);
  }
  console.log(`size: ${total.gzip} bytes gzip is within the budget of ${budget} bytes`);
}
