import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import yazl from 'yazl';

/**
 * A real HTTP server on 127.0.0.1 that plays a PyPI-compatible index (PEP 691 JSON pages plus wheel
 * files) and a plain file host, so download code runs its real network path in tests.
 */
export interface IndexServer {
  /** `http://127.0.0.1:<port>/` */
  baseUrl: string;
  /** `<baseUrl>simple/`, for a `pypi-chunks` source. */
  indexUrl: string;
  /** Every request as `METHOD /path`, in arrival order. */
  requests: string[];
  /** Serves a wheel holding `members`; returns its file name and real sha256. */
  addWheel(
    project: string,
    version: string,
    members: Record<string, Buffer>,
    options?: { indexSha256?: string },
  ): Promise<{ filename: string; sha256: string }>;
  /** Serves `bytes` at `path` (leading slash), with Range support. */
  addFile(path: string, bytes: Buffer): void;
  /** Serves headers and `sendBytes` of a body, then never sends the rest. */
  addStallingFile(path: string, totalBytes: number, sendBytes: number): void;
  close(): Promise<void>;
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');

export async function buildWheel(members: Record<string, Buffer>, distInfo: string): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, bytes] of Object.entries(members)) zip.addBuffer(bytes, name, { compress: true });
  zip.addBuffer(Buffer.from('Metadata-Version: 2.1\n'), `${distInfo}/METADATA`);
  zip.end();
  const parts: Buffer[] = [];
  for await (const part of zip.outputStream) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

interface ProjectFile {
  filename: string;
  sha256: string;
  size: number;
}

export async function startIndexServer(): Promise<IndexServer> {
  const files = new Map<string, Buffer>();
  const stalling = new Map<string, { total: number; send: number }>();
  const projects = new Map<string, ProjectFile[]>();
  const requests: string[] = [];
  const hung = new Set<ServerResponse>();

  function serveFile(req: IncomingMessage, res: ServerResponse, bytes: Buffer) {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const start = range ? Number(range[1]) : 0;
    const end = range?.[2] ? Number(range[2]) + 1 : bytes.length;
    const body = bytes.subarray(start, end);
    const headers: Record<string, string | number> = {
      'content-type': 'application/octet-stream',
      'content-length': body.length,
      'accept-ranges': 'bytes',
    };
    if (range) headers['content-range'] = `bytes ${start}-${end - 1}/${bytes.length}`;
    res.writeHead(range ? 206 : 200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(`${req.method} ${path}`);
    const project = /^\/simple\/([^/]+)\/$/.exec(path)?.[1];
    if (project !== undefined && projects.has(project)) {
      const page = {
        meta: { 'api-version': '1.1' },
        name: project,
        files: projects.get(project)!.map((f) => ({
          filename: f.filename,
          url: `/files/${f.filename}`,
          hashes: { sha256: f.sha256 },
          size: f.size,
        })),
      };
      res.writeHead(200, { 'content-type': 'application/vnd.pypi.simple.v1+json' });
      return res.end(JSON.stringify(page));
    }
    const stall = stalling.get(path);
    if (stall) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': stall.total });
      res.write(Buffer.alloc(stall.send));
      hung.add(res);
      return;
    }
    const bytes = files.get(path);
    if (bytes) return serveFile(req, res, bytes);
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;

  return {
    baseUrl,
    indexUrl: `${baseUrl}simple/`,
    requests,
    async addWheel(projectName, version, members, options = {}) {
      const dist = projectName.replace(/-/g, '_');
      const filename = `${dist}-${version}-py3-none-any.whl`;
      const wheel = await buildWheel(members, `${dist}-${version}.dist-info`);
      files.set(`/files/${filename}`, wheel);
      const real = sha256(wheel);
      const list = projects.get(projectName) ?? [];
      list.push({ filename, sha256: options.indexSha256 ?? real, size: wheel.length });
      projects.set(projectName, list);
      return { filename, sha256: real };
    },
    addFile(path, bytes) {
      files.set(path, bytes);
    },
    addStallingFile(path, total, send) {
      stalling.set(path, { total, send });
    },
    async close() {
      for (const res of hung) res.destroy();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A loopback port with nothing listening: connecting to it is refused at once. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}
