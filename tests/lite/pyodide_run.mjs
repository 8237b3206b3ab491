// Run a Python file in Pyodide under Node.js (tests/test_pyodide.py):
//   node pyodide_run.mjs PYODIDE_DIR SCRIPT.py HOST_DIR=GUEST_DIR...
// Each HOST_DIR is mounted (NODEFS) at GUEST_DIR and GUEST_DIR's parent goes
// on sys.path. The script runs with top-level await (runPythonAsync), as a
// JupyterLite cell does; its stdout is ours, an exception fails with code 1.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import path from "node:path";

const [pyodideDir, script, ...mounts] = process.argv.slice(2);
const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
const started = performance.now();
// NBFETCH_* variables reach the script's os.environ (the demo server's URL).
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("NBFETCH_")));
const py = await loadPyodide({ indexURL: pyodideDir + "/", env: { HOME: "/home/pyodide", ...env } });
console.error(`pyodide booted in ${((performance.now() - started) / 1000).toFixed(2)} s`);
const paths = new Set();
for (const mount of mounts) {
  const [host, guest] = mount.split("=");
  py.FS.mkdirTree(guest);
  py.FS.mount(py.FS.filesystems.NODEFS, { root: host }, guest);
  paths.add(path.posix.dirname(guest));
}
py.runPython(`import sys; sys.path[:0] = ${JSON.stringify([...paths])}`);
try {
  await py.runPythonAsync(readFileSync(script, "utf8"), { filename: script });
} catch (err) {
  console.error(String(err));
  process.exit(1);
}
