import { ask, isAnswer } from './reliability-client.js';
import type { ServerProcess } from './reliability-server.js';
import { GPT4 } from './reliability-setup.js';

/**
 * A restart must lose nothing the server promised to keep (issue 16, #10): answered requests can
 * still be rated through /v1/feedback, the stats go on from where they were, the policy history still
 * rolls back. `recordState` writes and reads that state on the first process; `checkState` reads it on
 * the second, started with the same config.
 */
export interface RecordedState {
  /** Answered before the restart; the first half was rated before it too. */
  request_ids: string[];
  rated_before: number;
  stats_requests: number;
  policy_version: string;
  history: string[];
}

export interface RestartResult {
  recorded: RecordedState;
  /** Feedback on requests answered before the restart, after it: 200 for the unrated, 409 for the rated. */
  feedback: Record<string, number>;
  feedback_lost: number;
  stats_requests_after: number;
  policy_version_after: string;
  history_after: string[];
  rollback_status: number;
  /** Records that did not survive: feedback ids, stats requests, history entries. */
  lost: { feedback: number; stats_requests: number; history: number };
  ok: boolean;
}

const PROMPT = 'Question: What is the boiling point of water at sea level?\nA. 50 C\nB. 100 C\nAnswer:';

async function json<T>(
  server: ServerProcess,
  path: string,
  token: string,
  body?: unknown,
): Promise<[number, T | undefined]> {
  const outcome = await ask(`${server.url}${path}`, {
    token,
    ...(body === undefined ? {} : { body }),
    waitMs: 15_000,
  });
  if (!isAnswer(outcome)) return [0, undefined];
  try {
    return [outcome.status, JSON.parse(outcome.text) as T];
  } catch {
    return [outcome.status, undefined];
  }
}

export async function recordState(server: ServerProcess, token: string, answers = 6): Promise<RecordedState> {
  const ids: string[] = [];
  for (let i = 0; i < answers; i++) {
    const [, body] = await json<{ mechroute?: { request_id?: string } }>(
      server,
      '/v1/chat/completions',
      token,
      {
        model: GPT4.id,
        messages: [{ role: 'user', content: PROMPT }],
        max_tokens: 4,
      },
    );
    if (body?.mechroute?.request_id) ids.push(body.mechroute.request_id);
  }
  const rated = Math.floor(ids.length / 2);
  for (const id of ids.slice(0, rated))
    await json(server, '/v1/feedback', token, { request_id: id, success: true });
  const [, stats] = await json<{ requests: number }>(server, '/v1/stats', token);
  const [, policy] = await json<{ policy_version: string; history: string[] }>(
    server,
    '/admin/policy',
    token,
  );
  return {
    request_ids: ids,
    rated_before: rated,
    stats_requests: stats?.requests ?? 0,
    policy_version: policy?.policy_version ?? '',
    history: policy?.history ?? [],
  };
}

export async function checkState(
  server: ServerProcess,
  token: string,
  recorded: RecordedState,
): Promise<RestartResult> {
  const feedback: Record<string, number> = {};
  let lostFeedback = 0;
  for (const [i, id] of recorded.request_ids.entries()) {
    const [status] = await json(server, '/v1/feedback', token, { request_id: id, success: false });
    const expected = i < recorded.rated_before ? 409 : 200;
    feedback[String(status)] = (feedback[String(status)] ?? 0) + 1;
    if (status !== expected) lostFeedback += 1;
  }
  const [, stats] = await json<{ requests: number }>(server, '/v1/stats', token);
  const [, policy] = await json<{ policy_version: string; history: string[] }>(
    server,
    '/admin/policy',
    token,
  );
  const history = policy?.history ?? [];
  const [rollbackStatus] = await json(server, '/admin/policy/rollback', token, {});
  const statsAfter = stats?.requests ?? 0;
  const lost = {
    feedback: lostFeedback,
    stats_requests: Math.max(0, recorded.stats_requests - statsAfter),
    history: recorded.history.filter((v) => !history.includes(v)).length,
  };
  return {
    recorded,
    feedback,
    feedback_lost: lostFeedback,
    stats_requests_after: statsAfter,
    policy_version_after: policy?.policy_version ?? '',
    history_after: history,
    rollback_status: rollbackStatus,
    lost,
    ok: lost.feedback === 0 && lost.stats_requests === 0 && lost.history === 0 && rollbackStatus === 200,
  };
}
