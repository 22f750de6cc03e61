import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { InvalidFileError, ModelNotFoundError } from '../../../src/errors.js';
import { DEFAULT_ENCODER_MODEL } from '../../../src/models/manifest.js';
import { createManifestRegistry, loadManifest, modelPath } from '../../../src/models/manifest-registry.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mechroute-manifests-'));
  dirs.push(dir);
  return dir;
}
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const validManifest = (name = 'tiny-model') => ({
  name,
  file: `${name}.gguf`,
  sha256: 'a'.repeat(64),
  size: 10,
  architecture: 'llama',
  layers: 2,
  embedding_width: 8,
  context_length: 128,
  sources: [{ type: 'url', url: 'https://example.com/tiny.gguf' }],
});

describe('manifest registry', () => {
  test('the shipped manifests load and include the default encoder', () => {
    const registry = createManifestRegistry();
    const manifest = registry.get(DEFAULT_ENCODER_MODEL);
    assert.equal(manifest.file, 'gemma-3-270m-q4_k_m.gguf');
    assert.ok(manifest.sources.some((s) => s.type === 'pypi-chunks'));
  });

  test('a bad manifest names the file and the path of every issue', () => {
    const dir = tempDir();
    const file = join(dir, 'bad.json');
    const { layers: _drop, ...noLayers } = validManifest();
    writeFileSync(
      file,
      JSON.stringify({
        ...noLayers,
        sources: [
          { type: 'url', url: 'https://example.com/x.gguf' },
          { type: 'pypi-chunks', chunks: [{ package: 'p', version: '1', member: 'm', wheel_sha256: 'XYZ' }] },
        ],
      }),
    );
    assert.throws(
      () => loadManifest(file),
      (error: unknown) => {
        assert.ok(error instanceof InvalidFileError);
        assert.match(error.message, new RegExp(file.replace(/[.\\/]/g, '\\$&')));
        assert.match(error.message, /- layers: /);
        assert.match(error.message, /- sources\.1\.chunks\.0\.wheel_sha256: must be a lowercase hex sha256/);
        return true;
      },
    );
    // The registry refuses the whole folder rather than silently skipping the broken file.
    assert.throws(() => createManifestRegistry(dir), InvalidFileError);
  });

  test('a file that is not JSON is an InvalidFileError naming it', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'broken.json'), '{ "name": ');
    assert.throws(
      () => createManifestRegistry(dir),
      (error: unknown) => {
        assert.ok(error instanceof InvalidFileError);
        assert.match(error.message, /broken\.json/);
        return true;
      },
    );
  });

  test('two manifests with one name are refused', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.json'), JSON.stringify(validManifest('same')));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(validManifest('same')));
    assert.throws(() => createManifestRegistry(dir), /declared twice/);
  });

  test('an unknown name lists the known ones', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.json'), JSON.stringify(validManifest('alpha')));
    writeFileSync(join(dir, 'b.json'), JSON.stringify(validManifest('beta')));
    const registry = createManifestRegistry(dir);
    assert.deepEqual(registry.names, ['alpha', 'beta']);
    assert.throws(
      () => registry.get('gamma'),
      (error: unknown) => error instanceof ModelNotFoundError && /alpha, beta/.test(error.message),
    );
  });

  test('modelPath lives under $MECHROUTE_HOME/models', () => {
    const home = tempDir();
    assert.equal(modelPath({ file: 'x.gguf' }, { MECHROUTE_HOME: home }), join(home, 'models', 'x.gguf'));
  });
});
