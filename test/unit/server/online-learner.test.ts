import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LearningConfigSchema } from '../../../src/config/config-schema.js';
import { createPolicyStore } from '../../../src/config/policy-file.js';
import { DEFAULT_POLICY, type Policy } from '../../../src/policy/policy-schema.js';
import { createOnlineLearner } from '../../../src/server/online-learner.js';
import { Telemetry } from '../../../src/server/telemetry.js';
import { openStateStore } from '../../../src/state/sqlite-state-store.js';
import type { StateStore } from '../../../src/state/state-store.js';

/**
 * The learner against real SQLite files: updates written with the feedback that taught them, a snapshot
 * per policy version that rollback restores exactly, and what was learned read back after a reopen.
 */
let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-learning-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const config = LearningConfigSchema.parse({ online: true, learning_rate: 0.2, max_step: 0.5 });
const policy = (version: string): Policy => ({ ...DEFAULT_POLICY, version });
const retention = { feedback_days: 30, max_requests: 1000 };
const decided = { cheap: 0.6, dear: 0.9 };

/** The services' wiring: policy store, learner, telemetry on one state file. */
function open(file: string, now: () => number) {
  const state = openStateStore(file);
  const learner = createOnlineLearner(state, config);
  const policies = createPolicyStore(policy('1'), {
    persist: state,
    knownTiers: ['cheap', 'dear'],
    onChange: ({ from, to, via }) => learner.policyChanged(from, to, via, now()),
  });
  const telemetry = new Telemetry({ store: state, retention, learner, now });
  return { state, learner, policies, telemetry };
}

function answer(t: Telemetry, id: string, tier = 'cheap') {
  t.recordCompletion({
    requestId: id,
    tier,
    costUsd: 0.001,
    latencyMs: 10,
    escalations: 0,
    fallback: false,
    policyVersion: '1',
    decidedP: decided,
  });
}

describe('online learner', () => {
  test('feedback moves the answered tier, rollback restores the snapshot exactly, a reopen keeps it', () => {
    const file = join(dir, 'learn.sqlite');
    let clock = 1_000_000;
    const now = () => clock;
    const first = open(file, now);
    for (let i = 0; i < 5; i += 1) answer(first.telemetry, `r${i}`);
    assert.equal(first.telemetry.recordFeedback('r0', false), 'recorded');
    assert.equal(first.telemetry.recordFeedback('r1', false), 'recorded');
    const atV1 = first.learner.status().tiers;
    assert.ok(atV1.cheap!.bias < 0, 'two failures pull the cheap tier down');
    assert.equal(atV1.cheap!.updates, 2);
    assert.equal(atV1.dear, undefined, 'only the tier that answered is updated');
    assert.ok(first.learner.correct(decided).cheap! < decided.cheap);
    assert.equal(first.learner.correct(decided).dear, decided.dear);

    // Version 2 runs and learns more; rolling back to 1 restores what 1 had learned, bit for bit.
    assert.ok(first.policies.set(policy('2')).ok);
    for (const id of ['r2', 'r3', 'r4']) first.telemetry.recordFeedback(id, true);
    assert.equal(first.learner.status().tiers.cheap!.updates, 5);
    assert.ok(first.policies.rollback().ok);
    assert.deepEqual(first.learner.status().tiers, atV1);
    assert.deepEqual(first.learner.status().events_applied, { cheap: 5 }, 'events applied never go back');
    // A duplicate rating is refused and teaches nothing.
    assert.equal(first.telemetry.recordFeedback('r0', true), 'duplicate');
    assert.deepEqual(first.learner.status().tiers, atV1);
    first.state.close();

    const second = open(file, now);
    assert.deepEqual(second.learner.status().tiers, atV1, 'the corrections survive a reopen');
    assert.deepEqual(second.learner.correct(decided), first.learner.correct(decided));
    // Decisions past max_age_days teach nothing.
    answer(second.telemetry, 'late');
    clock += (config.retention.max_age_days + 1) * 86_400_000;
    assert.equal(second.telemetry.recordFeedback('late', true), 'unknown', 'past the feedback window too');
    second.learner.reset();
    assert.deepEqual(second.learner.status().tiers, {});
    second.state.close();
    const third = open(file, now);
    assert.deepEqual(third.learner.status().tiers, {}, 'a reset is persisted');
    third.state.close();
  });

  test('forgetting a tier drops its corrections only, persisted; unknown tiers are ignored', () => {
    const file = join(dir, 'forget.sqlite');
    const first = open(file, () => 1_000_000);
    answer(first.telemetry, 'a', 'cheap');
    answer(first.telemetry, 'b', 'dear');
    first.telemetry.recordFeedback('a', false);
    first.telemetry.recordFeedback('b', false);
    assert.deepEqual(Object.keys(first.learner.status().tiers).sort(), ['cheap', 'dear']);
    const dear = first.learner.status().tiers.dear;
    first.learner.forget(['cheap', 'gone']);
    assert.deepEqual(first.learner.status().tiers, { dear });
    assert.equal(first.learner.correct(decided).cheap, decided.cheap);
    first.state.close();
    const second = open(file, () => 1_000_000);
    assert.deepEqual(second.learner.status().tiers, { dear }, 'the drop is persisted');
    second.state.close();
  });

  test('an update that cannot be written leaves the outcome unrecorded and memory unchanged', () => {
    const file = join(dir, 'atomic.sqlite');
    const { state, learner, telemetry } = open(file, () => 5_000);
    answer(telemetry, 'a');
    const failing: StateStore = {
      ...state,
      saveCorrection() {
        throw new Error('disk full');
      },
    };
    const broken = new Telemetry({
      store: failing,
      retention,
      learner: createOnlineLearner(failing, config),
      now: () => 5_000,
    });
    assert.throws(() => broken.recordFeedback('a', true), /disk full/);
    assert.equal(state.findAnswered('a')!.success, undefined, 'the outcome rolled back with the update');
    assert.deepEqual(learner.status().tiers, {});
    assert.equal(telemetry.recordFeedback('a', true), 'recorded');
    assert.equal(learner.status().tiers.cheap!.updates, 1);
    state.close();
  });

  test('decisions are pruned by count', () => {
    const state: StateStore = openStateStore(join(dir, 'prune.sqlite'));
    const learner = createOnlineLearner(state, {
      ...config,
      retention: { max_decisions: 2, max_age_days: 30 },
    });
    for (let i = 0; i < 5; i += 1) learner.remember(`d${i}`, decided, 1000 + i);
    learner.prune(2000);
    assert.deepEqual(
      ['d0', 'd1', 'd2', 'd3', 'd4'].map((id) => state.findDecision(id) !== undefined),
      [false, false, false, true, true],
    );
    state.close();
  });
});
