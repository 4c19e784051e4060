import { defineConfig } from "vite";

// The demo is served by chat-devserver (`--static-dir www/dist`), same origin as the emulated
// Trigger.dev API and the /api/chat/* customer endpoints. For `npm run dev`, point the proxy at a
// running chat-devserver (default http://127.0.0.1:8787, or CHAT_SERVER_URL).
const server = process.env.CHAT_SERVER_URL ?? "http://127.0.0.1:8787";

export default defineConfig({
  resolve: {
    // trigger-chat-wasm is linked from ../pkg: make its `react` / `ai` imports resolve to this
    // app's copies (one React, one AI SDK), as they would from node_modules.
    dedupe: ["react", "react-dom", "ai", "@ai-sdk/react"],
  },
  // The wasm package instantiates its .wasm with `new URL(..., import.meta.url)`; pre-bundling it
  // in dev would move the JS away from the .wasm file.
  optimizeDeps: { exclude: ["trigger-chat-wasm"] },
  server: {
    // The linked package lives outside this folder (../pkg); let the dev server read its .wasm.
    fs: { allow: [".", "../pkg"] },
    proxy: {
      "/api": server,
      "/realtime": server,
      "/__admin": server,
    },
  },
  build: {
    target: "es2022",
    rollupOptions: {
      onwarn(warning, warn) {
        // `"use client"` marks React client modules for server-component bundlers; a
        // client-only bundle has nothing to preserve.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE") return;
        warn(warning);
      },
    },
  },
});
