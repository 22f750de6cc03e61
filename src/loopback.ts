/**
 * Whether a bind host or a client address is this machine: `localhost`, IPv4 127/8 (also IPv4-mapped
 * in IPv6, as Node reports clients of a dual-stack socket) or `::1`.
 */
export function isLoopback(hostOrAddress: string): boolean {
  return (
    hostOrAddress === 'localhost' ||
    hostOrAddress === '::1' ||
    hostOrAddress.startsWith('127.') ||
    hostOrAddress.startsWith('::ffff:127.')
  );
}
