import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gradeWithCommand } from '../../../training/grade-command.js';

/**
 * The grading command's contract, against real child processes: a node script the test writes acts
 * on what it reads and exits as the test asks it to.
 */
describe('gradeWithCommand', () => {
  let dir: string;
  let script: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mechroute-grade-cmd-'));
    script = join(dir, 'grader.mjs');
    // Echoes what it got into a file, then does what the answer says: exit N, hang, or print.
    await writeFile(
      script,
      `import { readFileSync, writeFileSync } from 'node:fs';
const input = JSON.parse(readFileSync(0, 'utf8'));
writeFileSync(process.argv[2], JSON.stringify({
  input,
  env: process.env,
  answerFile: readFileSync(process.env.MECHROUTE_GRADE_ANSWER_FILE, 'utf8'),
  codeFile: readFileSync(process.env.MECHROUTE_GRADE_CODE_FILE, 'utf8'),
}));
const [verb, arg] = input.code.split(' ');
if (verb === 'hang') setInterval(() => {}, 1000);
else { console.log('checked 3 tests'); console.error('stderr says ' + verb); process.exit(Number(arg)); }
`,
    );
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  const trace = { id: 'mbpp/1', prompt: 'Write f', outcomes: {}, tests: ['f(1) == 1'] };
  const grade = (answer: string, seen: string, timeoutMs = 10_000) =>
    gradeWithCommand(
      { command: `node ${script} ${seen}`, timeoutMs },
      { tier: 'big', trace, answer, reference_answer: null, finish_reason: 'stop' },
    );

  it('hands the grader the trace and answer on stdin and in files, and reads exit 0 as a pass', async () => {
    const seen = join(dir, 'seen-pass.json');
    process.env.MECHROUTE_TEST_SECRET_KEY = 'sk-must-not-leak';
    try {
      const g = await grade('Sure:\n```py\nexit 0\n```', seen);
      assert.deepEqual(g, { method: 'command', verdict: 'pass', how: 'checked 3 tests' });
    } finally {
      delete process.env.MECHROUTE_TEST_SECRET_KEY;
    }
    const got = JSON.parse(await readFile(seen, 'utf8'));
    assert.deepEqual(got.input, {
      version: 1,
      tier: 'big',
      trace,
      answer: 'Sure:\n```py\nexit 0\n```',
      code: 'exit 0',
      reference_answer: null,
      finish_reason: 'stop',
    });
    assert.equal(got.answerFile, 'Sure:\n```py\nexit 0\n```');
    assert.equal(got.codeFile, 'exit 0');
    assert.equal(got.env.MECHROUTE_GRADE_TIER, 'big');
    assert.equal(got.env.MECHROUTE_GRADE_TRACE_ID, 'mbpp/1');
    // The grader runs code a model wrote: mechroute's environment (credentials) is not passed on.
    assert.equal(got.env.MECHROUTE_TEST_SECRET_KEY, undefined);
    assert.ok(got.env.PATH);
  });

  it('reads exit 1 as a fail and exit 2 or any other status as ungradable, with the reason', async () => {
    const seen = join(dir, 'seen.json');
    assert.equal((await grade('exit 1', seen)).verdict, 'fail');
    assert.deepEqual(await grade('exit 2', seen), {
      method: 'command',
      verdict: 'ungradable',
      how: 'checked 3 tests',
      reason: 'grading command exited 2 (cannot grade): stderr says exit',
    });
    const odd = await grade('exit 7', seen);
    assert.equal(odd.verdict, 'ungradable');
    assert.match(odd.reason!, /^grading command exited 7: /);
  });

  it('kills a grader past its timeout and calls the answer ungradable', async () => {
    const g = await grade('hang', join(dir, 'seen-hang.json'), 500);
    assert.equal(g.verdict, 'ungradable');
    assert.equal(g.reason, 'grading command timed out after 500 ms');
  });

  it('calls an answer ungradable when the command does not run', async () => {
    const g = await gradeWithCommand(
      { command: join(dir, 'no-such-grader'), timeoutMs: 5000 },
      { tier: 'big', trace, answer: 'x', reference_answer: null, finish_reason: 'stop' },
    );
    assert.equal(g.verdict, 'ungradable');
    assert.match(g.reason!, /^grading command exited 127: .*not found/);
  });
});
