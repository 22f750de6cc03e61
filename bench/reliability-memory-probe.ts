import { appendFileSync } from 'node:fs';

/**
 * Preloaded into the server under test (`node --import …/reliability-memory-probe.js`) when the harness
 * asks for it: once a second it appends `process.memoryUsage()` as one JSON line to
 * $MECHROUTE_MEMORY_PROBE_FILE, so a run can split the resident set into V8 heap, external and array
 * buffers, and what is left (native allocations, the model's mapped pages), without a debugger.
 */
const file = process.env.MECHROUTE_MEMORY_PROBE_FILE;
if (file) {
  const started = Date.now();
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    appendFileSync(
      file,
      `${JSON.stringify({ t_s: (Date.now() - started) / 1000, rss: m.rss, heap_total: m.heapTotal, heap_used: m.heapUsed, external: m.external, array_buffers: m.arrayBuffers })}\n`,
    );
  }, 1000);
  timer.unref();
}
