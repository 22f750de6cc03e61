import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeMarkdownSection } from './markdown-section.js';
import type { ReliabilityResult } from './reliability.js';
import type { LoadResult } from './reliability-load.js';

/**
 * The reliability run as figures: the JSON in bench-results/, and a section of RELIABILITY.md per size
 * (sent, answered, by status, 5xx, hangs, crashes, lost; the command that made them).
 */
const statuses = (counts: Record<string, number>) =>
  Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');

/** The load results without the per-second samples (they stay in the JSON file). */
export function omitSamples(load: { route?: LoadResult; chat?: LoadResult }) {
  const strip = (l: LoadResult | undefined) => {
    if (!l) return undefined;
    const { rss_samples: _, ...rest } = l;
    return rest;
  };
  return { route: strip(load.route), chat: strip(load.chat) };
}

const fiveXx = (counts: Record<string, number>) =>
  Object.entries(counts)
    .filter(([k]) => /^5\d\d/.test(k))
    .reduce((s, [, v]) => s + v, 0);

function loadRow(name: string, l: LoadResult): string {
  const lat = l.latency_ms;
  return (
    `| ${name} | ${l.sent} | ${l.ok} ok + ${l.shed} shed | ${statuses(l.by_status)} | ${fiveXx(l.by_status)} | ` +
    `${l.hangs} | ${l.cut} | ok p50/p95/p99 ${lat.ok.p50}/${lat.ok.p95}/${lat.ok.p99} ms (max ${lat.ok.max}); ` +
    `shed p50/p95 ${lat.shed.p50}/${lat.shed.p95} ms; ${l.ok_per_s} ok/s; ${l.slow_sheds} sheds > 1 s; ` +
    `${l.past_deadline} past the deadline; /healthz max ${l.health.max_ms} ms, ${l.health.failures} failed |`
  );
}

function memoryLines(name: string, l: LoadResult): string {
  const m = l.memory;
  const parts = [
    `RSS ${m.rss_mb.start} → ${m.rss_mb.end} MB (max ${m.rss_mb.max}; median of the 2nd tenth ${m.rss_mb.early_median}, of the last tenth ${m.rss_mb.late_median}: **${m.rss_mb.growth_pct} %**)`,
    `anonymous ${m.anon_mb.start} → ${m.anon_mb.end} MB, file-backed (the mapped model) ${m.file_mb.start} → ${m.file_mb.end} MB`,
  ];
  if (m.heap_used_mb) {
    parts.push(
      `V8 heap used ${m.heap_used_mb.start} → ${m.heap_used_mb.end} MB (max ${m.heap_used_mb.max}), heap total ${m.heap_total_mb!.end} MB, external ${m.external_mb!.end} MB (array buffers ${m.array_buffers_mb!.end}), native anonymous beyond them ${m.native_anon_mb_end} MB at the end`,
    );
  }
  return `- ${name}: ${parts.join('; ')}`;
}

export function reliabilityMarkdown(r: ReliabilityResult, command: string): string {
  const lines: string[] = [];
  const o = r.options;
  lines.push(
    `Run **${o.label ?? o.size}** (size ${o.size}; parts: ${o.parts.join(', ')}): ` +
      (r.fuzz ? `${o.fuzzRequests} fuzz requests (seed ${o.seed}); ` : '') +
      (r.load ? `load ${o.clients} clients × ${o.loadSeconds} s per phase; ` : '') +
      `upstreams: ${o.upstream === 'scripted' ? 'a scripted model behind real OpenAI-compatible loopback servers' : 'the local model behind real OpenAI-compatible loopback servers'}. ` +
      `Server: request deadline ${r.settings.request_timeout_ms} ms, receive timeout ${r.settings.receive_timeout_ms} ms, drain ${r.settings.shutdown_drain_ms} ms; ` +
      `cheaper tier: ${r.settings.tier_timeout_ms} ms per attempt, breaker ${r.settings.breaker.failures} failures / ${r.settings.breaker.seconds} s. ` +
      `Run took ${Math.round(r.seconds)} s. Crashes: **${r.crashes}**; error-level log lines: ${r.error_log_lines.length} (internal errors: ${r.internal_errors}); secrets in logs: ${r.secrets_in_logs}.`,
    '',
    '| part | sent | answered | by status | 5xx | hangs | lost / cut | notes |',
    '|---|---|---|---|---|---|---|---|',
  );
  if (r.fuzz) {
    const f = r.fuzz;
    lines.push(
      `| fuzz | ${f.sent} | ${f.answered} | ${statuses(f.by_status)} | ${f.status_5xx} (${f.capacity_5xx} capacity, **${f.status_5xx - f.capacity_5xx} from input**) | ` +
        `${f.hangs} | ${f.closed_without_answer} closed without answer (+${f.closed_after_half_close} after the client half-closed), ${f.cut} cut | **${f.auth_bypasses} auth bypasses**; ${f.bad_shape} errors not in the OpenAI shape (${f.fastify_shape} fastify's); ` +
        `${f.leaked_secrets} secrets in answers; ${f.oversized_errors} error bodies > 16 KB; slowest answer ${f.max_answer_ms} ms (never-finished requests: ${f.max_incomplete_answer_ms} ms) |`,
    );
  }
  if (r.load?.route) lines.push(loadRow('load `/v1/route`', r.load.route));
  if (r.load?.chat) lines.push(loadRow(`load chat (${r.options.chatMix ?? 'mixed'})`, r.load.chat));
  if (r.faults) {
    const f = r.faults;
    lines.push(
      `| faults | ${f.requests} | ${f.requests - f.hangs} | see below | – | ${f.hangs} | – | **${f.unexpected} not as promised**; ${f.past_deadline} past the deadline; ${f.leaked_upstream_text} with upstream text |`,
    );
  }
  if (r.sigterm) {
    const s = r.sigterm;
    lines.push(
      `| SIGTERM | ${s.in_flight} in flight | ${s.in_flight - s.cut_silently} | ${statuses(s.by_verdict)} | – | – | **${s.cut_silently} cut silently** | ` +
        `short requests not finished: ${s.short_not_finished}; after SIGTERM: ${statuses(s.after_sigterm)}; exit ${s.exit_code ?? s.exit_signal} after ${s.exit_ms} ms (drain ${s.drain_ms} ms) |`,
    );
  }
  if (r.restart) {
    const t = r.restart;
    const lost = t.lost.feedback + t.lost.history + (t.lost.stats_requests > 0 ? 1 : 0);
    lines.push(
      `| restart | ${t.recorded.request_ids.length} answered before | – | feedback after: ${statuses(t.feedback)} | – | – | **${lost} lost records** | ` +
        `feedback ids lost ${t.lost.feedback}, stats requests ${t.recorded.stats_requests} → ${t.stats_requests_after}, ` +
        `history [${t.recorded.history.join(', ')}] → [${t.history_after.join(', ')}], rollback ${t.rollback_status} |`,
    );
  }
  if (r.load) {
    const nodeOptions = r.options.serverNodeOptions?.join(' ');
    lines.push(
      '',
      `Memory of the whole server process (encoder loaded${nodeOptions ? `, node ${nodeOptions}` : ''}), sampled every second:`,
      '',
    );
    if (r.load.route) lines.push(memoryLines('`/v1/route`', r.load.route));
    if (r.load.chat) lines.push(memoryLines('chat', r.load.chat));
  }
  if (r.faults) {
    lines.push('', 'Faults (requests per cell: by outcome; hits on the faulty deployments):', '');
    lines.push('| fault | one deployment bad | whole tier bad | tier named, bad |', '|---|---|---|---|');
    const faults = Object.keys(r.faults.cells['one deployment bad']);
    for (const fault of faults) {
      const cell = (s: keyof typeof r.faults.cells) => {
        const c = r.faults!.cells[s][fault];
        return c
          ? `${statuses(c.by_status)}; ${c.faulty_hits} hits${c.unexpected ? `; **${c.unexpected} unexpected**` : ''}`
          : '–';
      };
      lines.push(
        `| ${fault} | ${cell('one deployment bad')} | ${cell('whole tier bad')} | ${cell('tier named, bad')} |`,
      );
    }
    for (const e of r.faults.examples.slice(0, 8)) {
      lines.push(
        `- not as promised: ${e.scenario}, ${e.fault}, ${e.stream ? 'stream' : 'plain'}: ${e.status} ${e.code ?? ''} in ${e.ms} ms — ${e.why}`,
      );
    }
  }
  if (r.sighup) {
    lines.push(
      '',
      `SIGHUP (${r.sighup.failed} of ${r.sighup.steps.length} steps not as the issue asks; server alive after: ${r.sighup.alive}):`,
      '',
    );
    lines.push('| step | expected version | running version | ok |', '|---|---|---|---|');
    for (const s of r.sighup.steps) {
      const tier = s.expected_tier ? ` (routes to ${s.tier}, expected ${s.expected_tier})` : '';
      lines.push(`| ${s.step} | ${s.expected_version} | ${s.version}${tier} | ${s.ok ? 'yes' : '**no**'} |`);
    }
  }
  if (r.fuzz) {
    const kinds = Object.entries(r.fuzz.examples).filter(([k]) => !k.includes('(capacity)'));
    if (kinds.length > 0) {
      lines.push('', 'Fuzz findings (first examples of each kind):', '');
      for (const [kind, examples] of kinds) {
        lines.push(`- ${kind}: ${examples.map((e) => `${e.label} → ${e.status || e.outcome}`).join('; ')}`);
      }
    }
  }
  lines.push('', `Command: \`${command}\` (${new Date().toISOString().slice(0, 10)})`);
  return lines.join('\n');
}

export function writeReliabilityResults(
  r: ReliabilityResult,
  command: string,
  where: { json: string; markdown: string | undefined },
  log: (line: string) => void,
): void {
  mkdirSync(where.json, { recursive: true });
  const label = r.options.label ?? r.options.size;
  const jsonPath = join(where.json, `reliability-${label}.json`);
  writeFileSync(jsonPath, `${JSON.stringify(r, null, 2)}\n`);
  log(`wrote ${jsonPath}`);
  if (!where.markdown) return;
  const mdPath = join(where.markdown, 'RELIABILITY.md');
  writeMarkdownSection(mdPath, `reliability:${label}`, reliabilityMarkdown(r, command), '# Reliability');
  log(`updated ${mdPath}`);
}
