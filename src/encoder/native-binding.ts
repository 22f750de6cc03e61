import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Llama, LlamaGpuType } from 'node-llama-cpp';
import { NoEncoderBinaryError } from '../errors.js';
import { packageRoot } from '../paths.js';
import type { ActivationAddon, AddonDevice } from './addon-types.js';

export type GpuPreference = 'auto' | 'cuda' | 'vulkan' | false;

export interface LoadedBinding {
  addon: ActivationAddon;
  /** node-llama-cpp's instance: it chose the llama.cpp variant, and the addon shares its libraries. */
  llama: Llama;
  /** Folder name of the variant under native/build (e.g. linux-x64, linux-x64-cuda). */
  variant: string;
  gpu: LlamaGpuType;
  devices: AddonDevice[];
}

const buildRoot = join(packageRoot, 'native', 'build');
const addonFile = 'mechroute-activations.node';

interface BuiltVariant {
  name: string;
  addonPath: string;
  binsDir: string;
}

function builtVariants(): BuiltVariant[] {
  if (!existsSync(buildRoot)) return [];
  return readdirSync(buildRoot).flatMap((name) => {
    const meta = join(buildRoot, name, 'variant.json');
    const addonPath = join(buildRoot, name, addonFile);
    if (!existsSync(meta) || !existsSync(addonPath)) return [];
    const { binsDir } = JSON.parse(readFileSync(meta, 'utf8')) as { binsDir: string };
    return [{ name, addonPath, binsDir }];
  });
}

/**
 * The folder of the libllama node-llama-cpp actually loaded. Reading the process's own mappings gives
 * the exact choice its getLlama() made (CUDA, Vulkan or CPU), with no second guess of its rules.
 */
function loadedLlamaDir(): string | undefined {
  if (process.platform !== 'linux') return undefined;
  const maps = readFileSync('/proc/self/maps', 'utf8');
  const line = maps.split('\n').find((l) => /\/libllama[^/]*\.so/.test(l));
  const path = line?.slice(line.indexOf('/'));
  return path ? dirname(path.trim()) : undefined;
}

function pickVariant(gpu: LlamaGpuType): BuiltVariant {
  const variants = builtVariants();
  const loadedDir = loadedLlamaDir();
  const byDir = loadedDir ? variants.find((v) => v.binsDir === loadedDir) : undefined;
  const suffix = gpu === false ? '' : `-${gpu}`;
  const byName = variants.find((v) => v.name === `${process.platform}-${process.arch}${suffix}`);
  const chosen = byDir ?? byName;
  if (!chosen) {
    throw new NoEncoderBinaryError(
      `${process.platform}-${process.arch}${suffix}`,
      join(buildRoot, `${process.platform}-${process.arch}${suffix}`, addonFile),
    );
  }
  return chosen;
}

/**
 * Loads the addon in a throwaway child first, so a broken binary (missing library, ABI mismatch) fails
 * there with a readable error instead of crashing this process. A passing binary is remembered by its
 * size and mtime, so the check runs once per build.
 */
function smokeTest(variant: BuiltVariant): void {
  const stampPath = join(dirname(variant.addonPath), '.smoke-ok');
  const stat = statSync(variant.addonPath);
  const stamp = `${stat.size}:${stat.mtimeMs}`;
  if (existsSync(stampPath) && readFileSync(stampPath, 'utf8') === stamp) return;
  const script = `require(${JSON.stringify(variant.addonPath)});`;
  const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  if (child.status !== 0) {
    const reason = (child.stderr || child.error?.message || `exit ${child.status ?? child.signal}`).trim();
    throw new NoEncoderBinaryError(variant.name, variant.addonPath, new Error(reason));
  }
  try {
    writeFileSync(stampPath, stamp);
  } catch {
    // A read-only install just repeats the check next time.
  }
}

let loading: Promise<LoadedBinding> | undefined;

/**
 * One binding per process: node-llama-cpp picks the llama.cpp variant (never compiling one), then the
 * addon built for that same variant is smoke-tested and loaded next to it.
 */
const CANCELLED_DECODE =
  /graph_compute: ggml_backend_sched_graph_compute_async failed with error 1|process_ubatch: failed to compute graph, compute status: 1|llama_decode: failed to decode, ret = 2/;

export function loadActivationBinding(gpu: GpuPreference = 'auto'): Promise<LoadedBinding> {
  loading ??= (async () => {
    // Imported here: node-llama-cpp takes most of a second to load, which CLI commands that never touch
    // the encoder should not pay.
    const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
    const llama = await getLlama({
      gpu,
      build: 'never',
      logLevel: LlamaLogLevel.error,
      progressLogs: false,
      logger: (_level, message) => {
        // A decode stopped on purpose (client gone, deadline) ends in llama.cpp's "failed to decode";
        // the caller already has that as a cancellation, and operators should not read it as a fault.
        if (!CANCELLED_DECODE.test(message)) process.stderr.write(`[node-llama-cpp] ${message.trimEnd()}\n`);
      },
    });
    const variant = pickVariant(llama.gpu);
    smokeTest(variant);
    let addon: ActivationAddon;
    try {
      addon = createRequire(import.meta.url)(variant.addonPath) as ActivationAddon;
    } catch (error) {
      throw new NoEncoderBinaryError(variant.name, variant.addonPath, error);
    }
    const devices = addon.initBackends(variant.binsDir);
    return { addon, llama, variant: variant.name, gpu: llama.gpu, devices };
  })();
  loading.catch(() => {
    loading = undefined;
  });
  return loading;
}
