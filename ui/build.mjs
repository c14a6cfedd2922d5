// Bundles the UI (src/main.tsx: Preact, the pages, rrweb-player loaded on the session page only) into the
// server's static files: index.html, app.js + app.css, and the player's lazily loaded chunk. The output is
// committed and `.ci/run` rebuilds it and fails on any difference, so the build must be deterministic: no
// timestamps, no absolute paths, chunk names from content hashes.
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const outdir = '../src/replayql/static/ui';
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
await esbuild.build({
  entryPoints: { app: 'src/main.tsx' },
  bundle: true,
  splitting: true,
  format: 'esm',
  minify: true,
  target: 'es2020',
  platform: 'browser',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  chunkNames: '[name]-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
  outdir,
});
copyFileSync('src/index.html', `${outdir}/index.html`);

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
for (const file of readdirSync(outdir).sort()) {
  const content = readFileSync(`${outdir}/${file}`);
  console.log(`${file}: ${kib(content.length)} min, ${kib(gzipSync(content).length)} gzip`);
}
