// Builds the npm module (ESM, dependencies left to the app's bundler), the one-file script-tag build (IIFE,
// everything bundled, `window.replayql`), the type declarations, and copies the script into the server's
// static files so a replayql server serves its own SDK at /sdk/replayql.js.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const common = {
  entryPoints: ['src/index.ts'],
  bundle: true,
  target: 'es2019',
  platform: 'browser',
  legalComments: 'none',
  logLevel: 'warning',
};

rmSync('dist', { recursive: true, force: true });
await esbuild.build({
  ...common,
  format: 'esm',
  outfile: 'dist/index.mjs',
  external: Object.keys(pkg.dependencies ?? {}),
});
await esbuild.build({
  ...common,
  format: 'iife',
  globalName: 'replayql',
  minify: true,
  outfile: 'dist/replayql.min.js',
});
execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });

const staticDir = '../src/replayql/static/sdk';
mkdirSync(staticDir, { recursive: true });
copyFileSync('dist/replayql.min.js', `${staticDir}/replayql.js`);

const script = readFileSync('dist/replayql.min.js');
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`dist/replayql.min.js: ${kib(statSync('dist/replayql.min.js').size)} min, ` +
  `${kib(gzipSync(script, { level: 9 }).length)} min+gzip`);
