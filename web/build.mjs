// Bundles editor.js and the CodeMirror packages it imports into modelspec/assets/editor.js: one minified
// script that needs no other file and no network, which the wheel ships. Run by `npm run build` (`make assets`
// at the top of the repository runs `npm ci` first, so that the packages are package-lock.json's).
// It prints the packages the bundle holds, with their versions: modelspec/assets/LICENSES.txt names them.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build, version as esbuildVersion } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "modelspec", "assets", "editor.js");
const versionOf = (name) => JSON.parse(readFileSync(join(here, "node_modules", name, "package.json"))).version;
const direct = Object.keys(JSON.parse(readFileSync(join(here, "package.json"))).dependencies);

const result = await build({
  absWorkingDir: here,
  entryPoints: ["editor.js"],
  outfile: out,
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  metafile: true,
  banner: {
    js: `/* modelspec editor: CodeMirror 6 (${direct.map((n) => `${n} ${versionOf(n)}`).join(", ")}), `
      + `bundled by web/build.mjs with esbuild ${esbuildVersion}; MIT, see LICENSES.txt */`,
  },
});

const held = new Set(Object.keys(result.metafile.inputs)
  .map((path) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path)?.[1])
  .filter(Boolean));
console.log(`${out}: ${result.metafile.outputs[Object.keys(result.metafile.outputs)[0]].bytes} bytes, holding`);
for (const name of [...held].sort()) console.log(`  ${name} ${versionOf(name)}`);
