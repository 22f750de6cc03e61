import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * Puts `body` between `<!-- key:start -->` and `<!-- key:end -->` in a markdown file: replacing the
 * section of an earlier run, or appending it (to a new file starting with `title`). How the benchmark
 * suites keep BENCHMARKS.md and RELIABILITY.md current without touching the prose around them.
 */
export function writeMarkdownSection(file: string, key: string, body: string, title: string): void {
  const start = `<!-- ${key}:start -->`;
  const end = `<!-- ${key}:end -->`;
  const section = `${start}\n${body}\n${end}`;
  const current = existsSync(file) ? readFileSync(file, 'utf8') : `${title}\n`;
  const next = current.includes(start)
    ? current.replace(new RegExp(`${start}[\\s\\S]*?${end}`), () => section)
    : `${current.trimEnd()}\n\n${section}\n`;
  writeFileSync(file, next);
}
