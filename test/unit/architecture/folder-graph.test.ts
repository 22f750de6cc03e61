import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, test } from 'node:test';
import { packageRoot } from '../../../src/paths.js';

/**
 * The folders of src/ form layers (issue 15 #6): an import from one folder into another never comes back
 * round, so each folder can be read, tested and moved with what it stands on only. The graph is read
 * from the TypeScript sources, every relative `from '…'` and `import('…')`, type-only imports included.
 */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

const IMPORT = /(?:from\s+|import\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g;

/** Every relative import as [importing file, imported file], both relative to the package root. */
function imports(top: string): [string, string][] {
  return sources(join(packageRoot, top)).flatMap((file) =>
    [...readFileSync(file, 'utf8').matchAll(IMPORT)].map((m): [string, string] => [
      relative(packageRoot, file),
      relative(packageRoot, resolve(dirname(file), m[1]!.replace(/\.js$/, '.ts'))),
    ]),
  );
}

/** `src/policy/route.ts` → `policy`; files directly in src/ are the root, which any folder may use. */
const folderOf = (path: string): string | undefined => {
  const parts = path.split(sep);
  return parts[0] === 'src' && parts.length > 2 ? parts[1] : undefined;
};

/** The folder cycles of a graph, each as the path that closes it (depth-first search). */
export function folderCycles(edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const cycles: string[][] = [];
  const done = new Set<string>();
  const visit = (node: string, path: string[]) => {
    const at = path.indexOf(node);
    if (at >= 0) {
      cycles.push([...path.slice(at), node]);
      return;
    }
    if (done.has(node)) return;
    for (const next of edges.get(node) ?? []) visit(next, [...path, node]);
    done.add(node);
  };
  for (const node of edges.keys()) visit(node, []);
  return cycles;
}

describe('folder graph', () => {
  test('folderCycles finds a cycle and only a cycle', () => {
    const graph = (pairs: string[]) => {
      const edges = new Map<string, Set<string>>();
      for (const pair of pairs) {
        const [a, b] = pair.split('>') as [string, string];
        edges.set(a, (edges.get(a) ?? new Set()).add(b));
      }
      return edges;
    };
    assert.deepEqual(folderCycles(graph(['a>b', 'b>c', 'a>c'])), []);
    assert.deepEqual(folderCycles(graph(['a>b', 'b>c', 'c>a'])), [['a', 'b', 'c', 'a']]);
  });

  test('no cycles among the folders of src/', () => {
    const edges = new Map<string, Set<string>>();
    const why = new Map<string, string>();
    for (const [from, to] of imports('src')) {
      const a = folderOf(from);
      const b = folderOf(to);
      if (!a || !b || a === b) continue;
      edges.set(a, (edges.get(a) ?? new Set()).add(b));
      why.set(`${a}>${b}`, `${from} imports ${to}`);
    }
    const cycles = folderCycles(edges).map((cycle) =>
      cycle
        .slice(1)
        .map((b, i) => why.get(`${cycle[i]}>${b}`))
        .join('; '),
    );
    assert.deepEqual(cycles, []);
  });

  test('src/ stands on itself: only the CLI loads training/, nothing loads tests or benchmarks', () => {
    const outside = imports('src').filter(([from, to]) => {
      if (to.startsWith(`src${sep}`)) return false;
      return !(to.startsWith(`training${sep}`) && from.startsWith(join('src', 'cli') + sep));
    });
    assert.deepEqual(outside, []);
  });

  test('training/ loads src/ only: no tests or benchmarks', () => {
    const outside = imports('training').filter(
      ([, to]) => !to.startsWith(`src${sep}`) && !to.startsWith(`training${sep}`),
    );
    assert.deepEqual(outside, []);
  });
});
