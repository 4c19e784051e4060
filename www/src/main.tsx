import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "./App";
import "./styles.css";

// Where the transport goes: this origin (the emulator), or the Trigger.dev API when the server
// was started with TRIGGER_SECRET_KEY. The server says which (`GET /api/chat/config`).
const configured = fetch("/api/chat/config")
  .then((res) => (res.ok ? res.json() : null))
  .then((config) => (config?.mode === "trigger" && typeof config.baseURL === "string" ? config.baseURL : null))
  .catch(() => null);

configured.then((apiBase) =>
  createRoot(document.getElementById("root")!).render(
    <StrictMode>
      <App baseURL={apiBase ?? window.location.origin} />
    </StrictMode>,
  ),
);
