// Builds the hook harness with React's development build (StrictMode double-renders and
// double-runs effects only there): tests/e2e/run does
//   vite build --mode development --config tests/e2e/harness/vite.config.mjs
// The package comes from pkg/, React and the AI SDK from www/node_modules (one copy of each).
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..", "..");
const modules = join(root, "www", "node_modules");

export default {
  root: here,
  logLevel: "warn",
  mode: "development",
  define: { "process.env.NODE_ENV": JSON.stringify("development") },
  resolve: {
    alias: [
      { find: /^trigger-chat-wasm(\/react)?$/, replacement: join(root, "pkg") + "$1" },
      { find: /^(react|react-dom|ai|@ai-sdk\/react)(\/.*)?$/, replacement: `${modules}/$1$2` },
    ],
  },
  build: {
    outDir: join(root, "target", "e2e", "harness-dist"),
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
    rollupOptions: {
      onwarn(warning, warn) {
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
};
