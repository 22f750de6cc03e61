/** How many leading tokens two token sequences share (a prompt against a cache, a prefix against its text). */
export function sharedPrefixLength(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i += 1;
  return i;
}
