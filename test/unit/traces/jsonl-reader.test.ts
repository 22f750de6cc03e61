import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Command } from 'commander';
import { registerTracesCommand } from '../../../src/cli/commands/traces.js';
import { FileUnreadableError, InvalidFileError } from '../../../src/errors.js';
import { openTraceAppender, readTraces, writeTraces } from '../../../src/traces/jsonl-reader.js';
import { summarizeTraces } from '../../../src/traces/trace-stats.js';
import { SHARED_DATA } from '../../support/mmlu-slice.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-traces-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const good = (id: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ id, prompt: `prompt ${id}`, outcomes: { weak: true, strong: false }, ...extra });

// Line by line: what each line is, and the error expected for it.
const badFile = [
  good('a'), //                                                        1 ok
  '', //                                                               2 blank: ignored
  '{not json', //                                                      3 invalid JSON
  JSON.stringify({ prompt: 'p', outcomes: {} }), //                    4 missing id
  JSON.stringify({ id: 'b', prompt: 'p', messages: [{ role: 'user', content: 'p' }], outcomes: {} }), // 5 both
  JSON.stringify({ id: 'c', prompt: 'p', outcomes: { weak: { score: 1.5 } } }), // 6 score out of range
  good('a'), //                                                        7 duplicate id
  JSON.stringify({
    id: 'd',
    messages: [{ role: 'user', content: 'hi' }],
    outcomes: { weak: { score: 0.2 } },
  }), // 8 ok
  '[1, 2]', //                                                         9 not an object
  '   ', //                                                            10 blank
].join('\n');

describe('readTraces', () => {
  test('reports every bad line with its number and reason, keeps every good one', async () => {
    const file = join(dir, 'bad.jsonl');
    await writeFile(file, `${badFile}\n`);
    const { traces, errors, lines } = await readTraces(file);
    assert.deepEqual(
      traces.map((t) => t.id),
      ['a', 'd'],
    );
    assert.equal(lines, 10);
    assert.deepEqual(
      errors.map((e) => e.line),
      [3, 4, 5, 6, 7, 9],
    );
    const reason = (line: number) => errors.find((e) => e.line === line)!.reason;
    assert.match(reason(3), /^invalid JSON/);
    assert.match(reason(4), /^id: /);
    assert.match(reason(5), /not both/);
    assert.match(reason(6), /outcomes\.weak\.score: .*<=1/);
    assert.match(reason(7), /duplicate id "a" \(first on line 1\)/);
    assert.match(reason(9), /expected object/);
    assert.equal(errors.find((e) => e.line === 5)!.id, 'b');
    assert.equal(errors.find((e) => e.line === 3)!.id, undefined);
  });

  test('throwOnError lists the first errors with line numbers and counts the rest', async () => {
    const file = join(dir, 'bad-throw.jsonl');
    await writeFile(file, badFile);
    await assert.rejects(
      readTraces(file, { throwOnError: true, maxErrorsInMessage: 2 }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidFileError);
        assert.match(error.message, /line 3: invalid JSON/);
        assert.match(error.message, /line 4: id:/);
        assert.doesNotMatch(error.message, /line 5/);
        assert.match(error.message, /and 4 more bad lines/);
        return true;
      },
    );
  });

  test('a missing file or a directory is a clear error, not a crash', async () => {
    await assert.rejects(readTraces(join(dir, 'missing.jsonl')), (error: unknown) => {
      assert.ok(error instanceof FileUnreadableError);
      assert.match(error.message, /no such file/);
      return true;
    });
    await assert.rejects(readTraces(dir), /it is a directory/);
  });

  test('handles CRLF line ends and a byte-order mark', async () => {
    const file = join(dir, 'crlf.jsonl');
    await writeFile(file, `\uFEFF${good('x')}\r\n${good('y')}\r\n`);
    const { traces, errors } = await readTraces(file);
    assert.deepEqual(errors, []);
    assert.equal(traces.length, 2);
  });
});

describe('appending and writing', () => {
  test('appends whole lines, starts fresh after a torn last line, keeps unknown keys', async () => {
    const file = join(dir, 'append.jsonl');
    const appender = await openTraceAppender(file);
    await appender.append({ id: 'one', prompt: 'p1', outcomes: { weak: true }, note: 'kept' });
    await appender.close();
    await assert.rejects(appender.append({ id: 'late', prompt: 'p', outcomes: {} }));

    await appendFile(file, '{"id": "torn", "prom'); // a run killed mid-record
    const again = await openTraceAppender(file);
    await again.append({ id: 'two', prompt: 'p2', outcomes: { strong: { score: 0.75 } } });
    await assert.rejects(again.append({ id: 'bad', outcomes: {} } as never), InvalidFileError);
    await again.close();

    const { traces, errors } = await readTraces(file);
    assert.deepEqual(
      traces.map((t) => t.id),
      ['one', 'two'],
    );
    assert.equal(traces[0]!.note, 'kept');
    assert.deepEqual(
      errors.map((e) => [e.line, e.reason.startsWith('invalid JSON')]),
      [[2, true]],
    );
  });

  test('writeTraces replaces a file with exactly the given records', async () => {
    const file = join(dir, 'written.jsonl');
    await writeFile(file, 'old content\n');
    const source = await readTraces(join(dir, 'bad.jsonl'));
    await writeTraces(file, source.traces);
    const back = await readTraces(file);
    assert.deepEqual(back.traces, source.traces);
    assert.deepEqual(back.errors, []);
    assert.equal((await readFile(file, 'utf8')).split('\n').length, 3); // two lines and the final newline
  });
});

describe('traces validate (command)', () => {
  async function run(args: string[]): Promise<{ out: string; exitCode: number | string | undefined }> {
    let out = '';
    // Output settings are inherited by subcommands when they are created, so configure before registering.
    const program = new Command().exitOverride().configureOutput({ writeOut: (s) => (out += s) });
    registerTracesCommand(program);
    const before = process.exitCode;
    process.exitCode = undefined;
    try {
      await program.parseAsync(['node', 'mechroute', ...args]);
      return { out, exitCode: process.exitCode };
    } finally {
      process.exitCode = before;
    }
  }

  test('--json: counts, rates and bad lines; exit code 1', async () => {
    const { out, exitCode } = await run(['traces', 'validate', join(dir, 'bad.jsonl'), '--json']);
    const report = JSON.parse(out);
    assert.equal(exitCode, 1);
    assert.equal(report.records, 2);
    assert.equal(report.bad, 6);
    assert.deepEqual(report.tiers.weak, { n: 2, successes: 1, rate: 0.5 }); // a: true, d: score 0.2 → false
    assert.deepEqual(report.tiers.strong, { n: 1, successes: 0, rate: 0 });
    assert.equal(report.errors[0].line, 3);
  });

  test('text output of a clean file; exit code unset', async () => {
    const file = join(dir, 'clean.jsonl');
    await writeFile(file, `${good('p', { dataset: 'toy' })}\n${good('q')}\n`);
    const { out, exitCode } = await run(['traces', 'validate', file]);
    assert.equal(exitCode, undefined);
    assert.match(out, /records: 2 valid, 0 bad \(2 lines\)/);
    assert.match(out, /weak\s+100\.0 % {2}\(2\/2\)/);
    assert.match(out, /toy: 1 records/);
    assert.match(out, /bad lines: none/);
  });
});

// The real traces live beside the repository (see DESIGN.md); checkouts without them skip only this part.
const sharedData = SHARED_DATA;
const skipShared = existsSync(sharedData) ? false : `shared traces not found at ${sharedData}`;

describe('shared trace files', { skip: skipShared }, () => {
  // Expected base rates from ../shared/data/README.md.
  const cases = [
    { file: 'mmlu-traces.jsonl', records: 10_475, mixtral: 0.667, gpt4: 0.799, oracle: 0.851 },
    { file: 'gsm8k-traces.jsonl', records: 975, mixtral: 0.643, gpt4: 0.858, oracle: 0.928 },
  ];
  for (const c of cases) {
    test(`${c.file} loads as it is, with the documented base rates`, async () => {
      const { traces, errors } = await readTraces(join(sharedData, c.file));
      assert.deepEqual(errors, []);
      assert.equal(traces.length, c.records);
      const summary = summarizeTraces(traces);
      const rate = (tier: string) => summary.tiers[tier]!.rate;
      assert.ok(Math.abs(rate('mixtral-8x7b-instruct') - c.mixtral) < 0.0005);
      assert.ok(Math.abs(rate('gpt-4-1106-preview') - c.gpt4) < 0.0005);
      assert.ok(Math.abs(summary.oracle.rate - c.oracle) < 0.0005);
    });
  }
});
