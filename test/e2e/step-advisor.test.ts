import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { refusalText } from '../../src/advisor/advisor-loop.js';
import { DEFAULT_PROBES_PATH } from '../../src/config/config-loader.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { CONTINUE_INSTRUCTION } from '../../src/steps/step-runner.js';
import type { LocalLlamaModel } from '../../src/tiers/providers/local-llama/local-llama-model.js';
import { createUpstreamModel, type OpenAIUpstream, startOpenAIUpstream } from '../support/openai-upstream.js';
import { localTierConfig, remoteTierConfig, writeServerConfig } from '../support/server-config.js';

/**
 * Live step mode and the worker–advisor mode end to end: the real encoder and a real local tier as the
 * worker, and two real OpenAI-compatible servers on 127.0.0.1 (serving the same local model) as the
 * stronger tiers. The step bundle is the shipped request-level bundle with a `steps` field added: the
 * τ = 0 and τ = 1 cases force "never switch" and "switch after every step" whatever the probe says.
 * The advisor worker is the middle upstream, scripted to call ask_advisor (the 270M model would not).
 */
// biome-ignore lint/suspicious/noExplicitAny: response bodies are checked field by field
type Json = any;

const PROMPT =
  'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. ' +
  'How many clips did Natalia sell altogether in April and May? Think step by step, one step per line.';

let dir: string;
let local: LocalLlamaModel;
let mid: OpenAIUpstream;
let frontier: OpenAIUpstream;
let server: RunningServer;
let logLines: string[];
const midBodies: Json[] = [];

/**
 * The mid tier's upstream: with ask_advisor offered and fewer than two tool results, it calls the tool;
 * with two, it answers (the upstream's local model, offered the tool, would call it once more).
 */
function scriptAdvisorCalls(body: unknown): unknown {
  const request = body as Json;
  midBodies.push(request);
  const offered = (request.tools ?? []).some((t: Json) => t.function?.name === 'ask_advisor');
  const toolResults = request.messages.filter((m: Json) => m.role === 'tool').length;
  if (!offered) return undefined;
  if (toolResults >= 2) {
    return {
      id: 'chatcmpl-script-answer',
      object: 'chat.completion',
      created: 0,
      model: request.model,
      choices: [{ index: 0, message: { role: 'assistant', content: '24' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 50, completion_tokens: 1, total_tokens: 51 },
    };
  }
  return {
    id: `chatcmpl-script-${toolResults}`,
    object: 'chat.completion',
    created: 0,
    model: request.model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [
            {
              id: `call_${toolResults}`,
              type: 'function',
              function: {
                name: 'ask_advisor',
                arguments: JSON.stringify({ question: 'What is half of 48?' }),
              },
            },
          ],
        },
        finish_reason: 'tool_calls',
      },
    ],
    usage: { prompt_tokens: 50, completion_tokens: 10, total_tokens: 60 },
  };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mechroute-steps-e2e-'));
  local = await createUpstreamModel();
  mid = await startOpenAIUpstream({ model: local, script: scriptAdvisorCalls });
  frontier = await startOpenAIUpstream({ model: local });
  const bundle = JSON.parse(await readFile(DEFAULT_PROBES_PATH, 'utf8'));
  bundle.steps = {
    // min_chars 0: every generated line is a decision point, so τ = 1 switches after the first step.
    segmentation: { mode: 'lines', min_chars: 0, max_steps: 64 },
    text_format: 'prompt-blank-line-steps',
  };
  const stepBundlePath = join(dir, 'steps.json');
  await writeFile(stepBundlePath, JSON.stringify(bundle));
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    encoder: { model: 'gemma-3-270m-q4_k_m', gpu: 'auto' },
    probes: { path: DEFAULT_PROBES_PATH },
    tiers: [
      localTierConfig({ context_window: 1024 }),
      remoteTierConfig('mixtral-8x7b-instruct', [{ base_url: mid.baseUrl }], { max_retries: 0 }),
      remoteTierConfig('gpt-4-1106-preview', [{ base_url: frontier.baseUrl }], { max_retries: 0 }),
    ],
    steps: {
      probes: 'steps.json',
      worker: 'gemma-3-270m',
      // The shipped bundle's local-tier probe is a constant (too few local outcomes): read mixtral's.
      probe_tier: 'mixtral-8x7b-instruct',
      threshold: 0.5,
      max_switches: 2,
      max_steps: 3,
      max_step_tokens: 24,
    },
    advisor: { worker: 'mixtral-8x7b-instruct', budget: 1, max_rounds: 4, max_advice_tokens: 16 },
  };
  const configFile = await writeServerConfig(dir, config);
  logLines = [];
  server = await startServer({
    configPath: configFile,
    port: 0,
    env: {},
    logLevel: 'info',
    watchPolicy: false,
    logStream: { write: (line: string) => void logLines.push(line) },
  });
});

after(async () => {
  await server?.close();
  for (const upstream of [mid, frontier]) await upstream?.close();
  await local?.dispose();
  await rm(dir, { recursive: true, force: true });
});

const chat = (body: Record<string, unknown>, headers: Record<string, string>) =>
  fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: 'mechroute',
      messages: [{ role: 'user', content: PROMPT }],
      max_tokens: 60,
      ...body,
    }),
  });

/** The chunks of an SSE answer, [DONE] excluded, asserting it ended with [DONE]. */
async function sseChunks(response: Response): Promise<Json[]> {
  const text = await response.text();
  const events = text
    .split('\n\n')
    .map((e) => e.trim())
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
  assert.equal(events.at(-1), '[DONE]', text.slice(-300));
  return events.slice(0, -1).map((e) => JSON.parse(e));
}

const metricValue = (metrics: string, line: string): number => {
  const found = metrics.split('\n').find((l) => l.startsWith(line));
  return found ? Number(found.slice(line.length).trim()) : 0;
};

describe('live step mode', () => {
  it('never switches at τ = 0: the local worker writes every step', async () => {
    const response = await chat({}, { 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '0' });
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(response.headers.get('x-mechroute-mode'), 'steps');
    const body: Json = await response.json();
    const ext = body.mechroute;
    assert.equal(ext.mode, 'steps');
    assert.equal(ext.threshold, 0);
    assert.equal(ext.probe_tier, 'mixtral-8x7b-instruct');
    assert.ok(ext.steps.length >= 1);
    for (const step of ext.steps) assert.equal(step.tier, 'gemma-3-270m');
    assert.deepEqual(ext.switches, []);
    assert.equal(ext.answered_by, 'gemma-3-270m');
    assert.equal(response.headers.get('x-mechroute-answered-by'), 'gemma-3-270m');
    assert.deepEqual(ext.writers, ['gemma-3-270m']);
    assert.equal(ext.cost_usd, 0);
    // The answer is the steps, one per line.
    assert.equal(body.choices[0].message.content, ext.steps.map((s: Json) => s.text).join('\n'));
    // Every step but the last was a decision point (the last ended the answer or spent its budget).
    assert.ok(ext.steps.length >= 2, JSON.stringify(ext.steps));
    for (const step of ext.steps.slice(0, -1)) {
      assert.ok(step.p_success > 0 && step.p_success < 1, `p_success ${step.p_success}`);
    }
  });

  it('switches after every step at τ = 1, passing the steps so far as a continuation', async () => {
    const before = midBodies.length;
    const metricsBefore = await (await fetch(`${server.url}/metrics`)).text();
    const response = await chat({}, { 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '1' });
    assert.equal(response.status, 200, await response.clone().text());
    const body: Json = await response.json();
    const ext = body.mechroute;
    assert.equal(ext.steps[0].tier, 'gemma-3-270m');
    assert.ok(ext.steps.length >= 2, JSON.stringify(ext.steps));
    // Step 1 by the worker, step 2 one tier up, then the top tier (2 switches, the cap).
    assert.equal(ext.steps[1].tier, 'mixtral-8x7b-instruct');
    for (const step of ext.steps.slice(2)) assert.equal(step.tier, 'gpt-4-1106-preview');
    assert.equal(ext.switches[0].from, 'gemma-3-270m');
    assert.equal(ext.switches[0].to, 'mixtral-8x7b-instruct');
    assert.equal(ext.switches[0].reason, 'probe');
    assert.ok(ext.switches[0].p_success < 1);
    assert.ok(ext.cost_usd > 0);
    // The mid tier got the worker's first step as an assistant turn, then the instruction to go on.
    const sent = midBodies.slice(before).at(0);
    assert.ok(sent, 'the mid tier was called');
    const turns = sent.messages;
    assert.equal(turns.at(-2).role, 'assistant');
    assert.equal(turns.at(-2).content, ext.steps[0].text);
    assert.equal(turns.at(-1).content, CONTINUE_INSTRUCTION);

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const switchLine =
      'mechroute_step_switches_total{from="gemma-3-270m",to="mixtral-8x7b-instruct",reason="probe"}';
    assert.equal(metricValue(metrics, switchLine), metricValue(metricsBefore, switchLine) + 1);
    assert.ok(metricValue(metrics, 'mechroute_steps_total{tier="mixtral-8x7b-instruct"}') >= 1);
    const logs = logLines.join('');
    assert.match(logs, /"tier":"mixtral-8x7b-instruct"[^\n]*"msg":"step written"/);
  });

  it('streams steps as they are written, the extension in the final chunk', async () => {
    const response = await chat(
      { stream: true, stream_options: { include_usage: true } },
      { 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '1' },
    );
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
    const chunks = await sseChunks(response);
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    assert.ok(finish, 'a finish chunk');
    const ext = finish.mechroute;
    assert.equal(ext.mode, 'steps');
    assert.equal(text, ext.steps.map((s: Json) => s.text).join('\n'));
    assert.equal(ext.steps[0].tier, 'gemma-3-270m');
    assert.equal(ext.steps[1].tier, 'mixtral-8x7b-instruct');
    // One content chunk per step: steps go out whole, as each is written.
    const contentChunks = chunks.filter((c) => c.choices[0]?.delta?.content);
    assert.equal(contentChunks.length, ext.steps.length);
    const usage = chunks.at(-1).usage;
    assert.ok(usage.completion_tokens > 0);
  });

  it('refuses a bad step threshold header', async () => {
    const response = await chat({}, { 'x-mechroute-mode': 'steps', 'x-mechroute-step-threshold': '1.5' });
    assert.equal(response.status, 400);
    const logprobs = await chat({ logprobs: true }, { 'x-mechroute-mode': 'steps' });
    assert.equal(logprobs.status, 400);
    const bad = await chat({}, { 'x-mechroute-mode': 'sideways' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as Json).error.message, /x-mechroute-mode/);
  });
});

describe('worker–advisor mode', () => {
  it('answers the first ask_advisor call, refuses the second, and logs and counts both', async () => {
    const metricsBefore = await (await fetch(`${server.url}/metrics`)).text();
    const frontierBefore = frontier.requests.length;
    const before = midBodies.length;
    const response = await chat({}, { 'x-mechroute-mode': 'advisor' });
    assert.equal(response.status, 200, await response.clone().text());
    const body: Json = await response.json();
    const ext = body.mechroute;
    assert.equal(ext.mode, 'advisor');
    assert.equal(ext.worker, 'mixtral-8x7b-instruct');
    assert.equal(ext.advisor, 'gpt-4-1106-preview');
    assert.deepEqual(
      ext.advisor_calls.map((c: Json) => c.outcome),
      ['answered', 'refused'],
    );
    assert.ok(ext.advisor_calls[0].cost_usd > 0);
    assert.equal(ext.advisor_calls[1].cost_usd, 0);
    assert.equal(ext.rounds, 3);
    assert.ok(typeof body.choices[0].message.content === 'string');
    // Exactly one question reached the frontier tier.
    assert.equal(frontier.requests.length - frontierBefore, 1);
    // The worker's third turn carries the advice and then the refusal as tool results.
    const third = midBodies.slice(before)[2];
    const toolTurns = third.messages.filter((m: Json) => m.role === 'tool');
    assert.equal(toolTurns.length, 2);
    assert.equal(toolTurns[0].tool_call_id, 'call_0');
    assert.ok(toolTurns[0].content.length > 0);
    assert.equal(toolTurns[1].content, refusalText(1));

    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (const outcome of ['answered', 'refused']) {
      const line = `mechroute_advisor_calls_total{outcome="${outcome}"}`;
      assert.equal(metricValue(metrics, line), metricValue(metricsBefore, line) + 1, line);
    }
    const costLine = 'mechroute_advisor_cost_usd_total{tier="gpt-4-1106-preview"}';
    assert.ok(
      Math.abs(
        metricValue(metrics, costLine) - metricValue(metricsBefore, costLine) - ext.advisor_calls[0].cost_usd,
      ) < 1e-12,
    );
    const logged = logLines.filter((l) => l.includes('"msg":"ask_advisor"')).map((l) => JSON.parse(l));
    const mine = logged.filter((l) => l.reqId === response.headers.get('x-request-id'));
    assert.deepEqual(
      mine.map((l) => l.outcome),
      ['answered', 'refused'],
    );
    assert.ok(mine[0].cost_usd > 0);
  });

  it('streams the final answer with the advisor extension', async () => {
    const response = await chat({ stream: true }, { 'x-mechroute-mode': 'advisor' });
    assert.equal(response.status, 200);
    const chunks = await sseChunks(response);
    const finish = chunks.find((c) => c.choices[0]?.finish_reason);
    assert.deepEqual(
      finish.mechroute.advisor_calls.map((c: Json) => c.outcome),
      ['answered', 'refused'],
    );
  });

  it('lets the local model itself call ask_advisor when it is the worker', async () => {
    const frontierBefore = frontier.requests.length;
    // With one call and its result in the history, the 270M model writes the next call itself.
    const response = await chat(
      {
        model: 'gemma-3-270m',
        max_tokens: 80,
        messages: [
          { role: 'user', content: 'What is 17*23?' },
          {
            role: 'assistant',
            content: null,
            tool_calls: [
              {
                id: 'c1',
                type: 'function',
                function: { name: 'ask_advisor', arguments: '{"question":"17*23?"}' },
              },
            ],
          },
          { role: 'tool', tool_call_id: 'c1', content: '391' },
        ],
      },
      { 'x-mechroute-mode': 'advisor' },
    );
    assert.equal(response.status, 200, await response.clone().text());
    const ext = ((await response.json()) as Json).mechroute;
    assert.equal(ext.worker, 'gemma-3-270m');
    assert.equal(ext.advisor_calls[0]?.outcome, 'answered', JSON.stringify(ext));
    assert.equal(frontier.requests.length - frontierBefore, 1);
    assert.ok(ext.advisor_calls.slice(1).every((c: Json) => c.outcome !== 'answered'));
  });
});
