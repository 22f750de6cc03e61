#!/usr/bin/env node
// Builds native/activations.cc once per llama.cpp binary variant that node-llama-cpp ships for this
// platform (CPU, CUDA, Vulkan): compiled against llama.cpp's headers (from node-llama-cpp's
// llama/gitRelease.bundle) and linked to that variant's prebuilt libllama/libggml. No network, no
// llama.cpp compile: a build takes seconds.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const source = join(root, 'native', 'activations.cc');
const buildDir = join(root, 'native', 'build');
const vendorDir = join(root, 'native', 'vendor', 'llama.cpp');
const cxx = process.env.CXX || 'g++';

const log = (msg) => process.stderr.write(`build-native: ${msg}\n`);

/** A dependency's folder, found by walking node_modules (some packages do not export package.json). */
function packageDir(name) {
  for (const base of require.resolve.paths(name) ?? []) {
    if (existsSync(join(base, name, 'package.json'))) return join(base, name);
  }
  throw new Error(`package ${name} is not installed; run npm install`);
}

/** The llama.cpp headers matching node-llama-cpp's binaries, from the git bundle it ships. */
function ensureHeaders() {
  const bundle = join(packageDir('node-llama-cpp'), 'llama', 'gitRelease.bundle');
  const stamp = join(vendorDir, '.bundle-sha256');
  const bundleHash = createHash('sha256').update(readFileSync(bundle)).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === bundleHash) return;
  rmSync(vendorDir, { recursive: true, force: true });
  mkdirSync(dirname(vendorDir), { recursive: true });
  log('extracting llama.cpp headers from node-llama-cpp/llama/gitRelease.bundle');
  execFileSync('git', ['clone', '--quiet', '--no-checkout', bundle, vendorDir], { stdio: 'inherit' });
  execFileSync('git', ['-C', vendorDir, 'checkout', '--quiet', 'HEAD', '--', 'include', 'ggml/include'], {
    stdio: 'inherit',
  });
  rmSync(join(vendorDir, '.git'), { recursive: true, force: true });
  writeFileSync(stamp, bundleHash);
}

/** Every installed @node-llama-cpp/<platform>-<arch>[-gpu] prebuilt binaries folder. */
function findVariants() {
  // In a checkout they sit in ./node_modules; in an installed package npm hoists them to a parent's.
  const scopeDir = (require.resolve.paths('@node-llama-cpp') ?? [])
    .map((base) => join(base, '@node-llama-cpp'))
    .find((dir) => existsSync(dir));
  if (!scopeDir) return [];
  const prefix = `${process.platform}-${process.arch}`;
  const variants = [];
  for (const pkg of readdirSync(scopeDir)) {
    if (pkg !== prefix && !pkg.startsWith(`${prefix}-`)) continue;
    const binsRoot = join(scopeDir, pkg, 'bins');
    if (!existsSync(binsRoot)) continue;
    for (const name of readdirSync(binsRoot)) {
      const dir = join(binsRoot, name);
      const files = readdirSync(dir);
      const libllama = files.find((f) => /^libllama\..*so$/.test(f) || f === 'libllama.so');
      const libggml = files.find((f) => /^libggml\..*so$/.test(f) || f === 'libggml.so');
      if (!libllama || !libggml || !files.includes('libggml-base.so')) continue;
      variants.push({ name, dir, libs: [libllama, libggml, 'libggml-base.so'] });
    }
  }
  return variants;
}

function compileObject() {
  const obj = join(buildDir, 'activations.o');
  const includes = [
    join(packageDir('node-api-headers'), 'include'),
    packageDir('node-addon-api'),
    join(vendorDir, 'include'),
    join(vendorDir, 'ggml', 'include'),
  ];
  log(`compiling ${relative(root, source)}`);
  execFileSync(
    cxx,
    [
      '-std=c++17',
      '-O2',
      '-fPIC',
      '-fvisibility=hidden',
      '-Wall',
      '-DNAPI_VERSION=8',
      '-DNAPI_CPP_EXCEPTIONS',
      '-DNODE_ADDON_API_DISABLE_DEPRECATED',
      ...includes.map((dir) => `-I${dir}`),
      '-c',
      source,
      '-o',
      obj,
    ],
    { stdio: 'inherit' },
  );
  return obj;
}

function link(obj, variant) {
  const outDir = join(buildDir, variant.name);
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, 'mechroute-activations.node');
  // A relative runpath keeps the build valid if the checkout moves; when node-llama-cpp has already
  // loaded the same sonames, the loader reuses them and this path is not even consulted.
  const runpath = `$ORIGIN/${relative(outDir, variant.dir)}`;
  execFileSync(
    cxx,
    [
      '-shared',
      obj,
      '-o',
      out,
      `-L${variant.dir}`,
      ...variant.libs.map((lib) => `-l:${lib}`),
      `-Wl,-rpath,${runpath}`,
      '-Wl,--allow-shlib-undefined',
    ],
    { stdio: 'inherit' },
  );
  writeFileSync(
    join(outDir, 'variant.json'),
    `${JSON.stringify({ binsDir: variant.dir, libs: variant.libs })}\n`,
  );
  log(`built ${relative(root, out)}`);
}

if (process.platform !== 'linux') {
  log(`platform ${process.platform} is not supported by this build script yet (Linux only); skipping`);
  process.exit(0);
}
const variants = findVariants();
if (variants.length === 0) {
  log('no node-llama-cpp prebuilt binaries found under node_modules/@node-llama-cpp; run npm install');
  process.exit(1);
}
mkdirSync(buildDir, { recursive: true });
ensureHeaders();
const obj = compileObject();
for (const variant of variants) link(obj, variant);
rmSync(obj);
