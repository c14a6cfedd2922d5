// Bundles the GraphiQL page (src/main.jsx: React, GraphiQL and their CSS) into one minified script and one
// stylesheet in the server's static files, so a replayql server serves GraphiQL without a CDN.
import { statSync } from 'node:fs';
import * as esbuild from 'esbuild';

const outdir = '../src/replayql/static/graphiql';
await esbuild.build({
  entryPoints: { graphiql: 'src/main.jsx' },
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  platform: 'browser',
  jsx: 'automatic',
  define: { 'process.env.NODE_ENV': '"production"' },
  // Only reached for websocket subscriptions, which replayql does not offer: left out of the bundle.
  external: ['graphql-ws'],
  legalComments: 'none',
  logLevel: 'warning',
  outdir,
});
for (const file of ['graphiql.js', 'graphiql.css']) {
  console.log(`${file}: ${(statSync(`${outdir}/${file}`).size / 1024).toFixed(1)} KiB`);
}
