// Builds the panel into liveparams/panel-dist/ (package data the wheel ships; gitignored):
// panel.js and panel.css bundled by esbuild from the pinned npm packages, and index.html.
// Run by scripts/setup.sh; by hand: `node panel/build.mjs`.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'liveparams', 'panel-dist');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { panel: join(here, 'src', 'main.js') },
  bundle: true,
  minify: true,
  format: 'esm',
  target: ['es2022'],
  outdir: out,
  legalComments: 'linked', // the licences of supabase-js and uPlot, shipped beside the bundle
  logLevel: 'warning',
});
copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
console.log(`panel built into ${out}`);
