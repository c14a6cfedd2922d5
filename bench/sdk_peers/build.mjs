// Bundles every entry the same way replayql's own script-tag build is made (bundle, minify, IIFE, es2019,
// browser) into dist/<name>.js and prints, as JSON, each bundle's path and the version of the package it holds.
import { readdirSync, readFileSync } from 'node:fs';
import * as esbuild from 'esbuild';

// package.json files are read from their folders: some packages' "exports" do not expose them
const PACKAGES = {
  replayql: '../../sdk',
  posthog: 'node_modules/posthog-js',
  'posthog-full': 'node_modules/posthog-js',
  openreplay: 'node_modules/@openreplay/tracker',
  logrocket: 'node_modules/logrocket',
  highlight: 'node_modules/highlight.run',
};
const names = readdirSync('entries').filter((f) => f.endsWith('.js') && !f.includes('-options'))
  .map((f) => f.slice(0, -3));
const out = {};
for (const name of names) {
  await esbuild.build({
    entryPoints: [`entries/${name}.js`],
    bundle: true,
    minify: true,
    format: 'iife',
    target: 'es2019',
    platform: 'browser',
    legalComments: 'none',
    logLevel: 'warning',
    outfile: `dist/${name}.js`,
  });
  const pkg = JSON.parse(readFileSync(`${PACKAGES[name]}/package.json`, 'utf8'));
  out[name] = { bundle: `dist/${name}.js`, package: pkg.name, version: pkg.version };
}
console.log(JSON.stringify(out));
