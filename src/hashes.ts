import { z } from 'zod';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A file's or a prompt's sha256 as every format here writes it: 64 lowercase hex digits. */
export const Sha256HexSchema = z.string().regex(SHA256_HEX, 'must be a lowercase hex sha256');

export const isSha256Hex = (value: string): boolean => SHA256_HEX.test(value);
