/**
 * The whole surface of the native activation addon (native/activations.cc), typed by hand in one place.
 * Keep it in step with the C++ file.
 */
export interface AddonDevice {
  name: string;
  description: string;
  type: 'cpu' | 'gpu' | 'other';
}

export interface AddonModelInfo {
  layers: number;
  embeddingWidth: number;
  trainContext: number;
  description: string;
  architecture: string;
  addsBos: boolean;
}

export interface AddonCaptureOptions {
  mean: boolean;
  last: boolean;
  /** Cancel the graph right after the deepest requested layer. */
  stopEarly: boolean;
  /**
   * Per sequence, ascending token positions to read out (the ends of prefixes of it: attention is
   * causal, so a position's rows are those of the prefix ending there). Default: each sequence's last.
   */
  ends?: Int32Array[];
}

export interface AddonCaptureResult {
  /**
   * [output][layer slot][embedding] row-major, present when `mean` was asked: the mean over the
   * sequence's tokens up to the output's position. Outputs are each sequence's `ends` (or its last
   * token), sequence by sequence.
   */
  mean?: Float32Array;
  /** Same layout, the output token's own row, present when `last` was asked. */
  last?: Float32Array;
  decodeMs: number;
  stoppedEarly: boolean;
}

export interface AddonContextOptions {
  /** Tokens one capture may hold in total across its sequences (one ubatch). */
  contextTokens: number;
  maxSequences: number;
  threads: number;
  /** Graph tensor name of a block's output, without the "-<layer>" suffix ("l_out" in most decoders). */
  layerPrefix: string;
  flashAttention?: boolean;
  kvUnified?: boolean;
}

export interface AddonActivationContext {
  readonly contextTokens: number;
  readonly maxSequences: number;
  /** `layers` holds block indices 0..n-1, or n for the output after the final norm. */
  capture(
    sequences: Int32Array[],
    layers: Int32Array,
    options: AddonCaptureOptions,
  ): Promise<AddonCaptureResult>;
  /**
   * Asks the running capture to stop (llama.cpp's abort callback between graph nodes, and at every
   * observed layer); it then rejects with "capture cancelled". A no-op when none runs.
   */
  cancel(): void;
  dispose(): void;
}

export interface AddonActivationModel {
  readonly info: AddonModelInfo;
  tokenize(text: string, addSpecial: boolean): Int32Array;
  createContext(options: AddonContextOptions): AddonActivationContext;
  dispose(): void;
}

export interface AddonLoadOptions {
  gpuLayers: number;
  useMmap: boolean;
  /**
   * CPU weight repacking (faster GEMM kernels). On, the kernel a row lands in depends on the batch size,
   * so a prompt's activations change with what shares its batch (see EncoderHostOptions.repackWeights).
   */
  repack?: boolean;
}

export interface ActivationAddon {
  initBackends(binsDir: string): AddonDevice[];
  loadModel(path: string, options: AddonLoadOptions): Promise<AddonActivationModel>;
  systemInfo(): string;
}
