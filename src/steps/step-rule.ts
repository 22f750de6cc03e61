/**
 * The per-step rule, one definition for the live step runner and the offline simulation that tunes it:
 * the worker keeps writing while the step probe's P(the chain ends right) is at least τ.
 */
export const stepTrusted = (p: number, threshold: number): boolean => p >= threshold;
