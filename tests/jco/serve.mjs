// Runs `jco serve` for the end-to-end tests (tests/tests/gateway_on_standard_hosts.rs)
// and stops it, with every process it started, as soon as the test goes
// away: when this script's standard input closes (the test dropped its
// handle, or died), on SIGTERM/SIGINT, or when jco exits by itself.
//
//   node serve.mjs <component.wasm> <host> <port>
//
// The component's configuration is this process's environment: jco's WASI
// shim hands it to the component as wasi:cli/environment (no --sandbox).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const [wasm, host, port] = process.argv.slice(2);
if (!wasm || !host || !port) {
  console.error("usage: node serve.mjs <component.wasm> <host> <port>");
  process.exit(2);
}
const jco = fileURLToPath(
  new URL("./node_modules/@bytecodealliance/jco/dist/jco.js", import.meta.url),
);
// Its own process group: jco serve starts a second node process that runs
// the transpiled component; killing the group stops both.
const child = spawn(
  process.execPath,
  [jco, "serve", wasm, "--host", host, "--port", port],
  { stdio: ["ignore", "inherit", "inherit"], detached: true },
);

let stopping = false;
function stop(code) {
  if (stopping) return;
  stopping = true;
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    // already gone
  }
  process.exit(code);
}

process.stdin.on("end", () => stop(0));
process.stdin.on("close", () => stop(0));
process.stdin.resume();
process.on("SIGTERM", () => stop(0));
process.on("SIGINT", () => stop(0));
child.on("exit", (code, signal) => {
  if (!stopping) {
    console.error(`jco serve exited (${signal ?? code})`);
    stop(1);
  }
});
