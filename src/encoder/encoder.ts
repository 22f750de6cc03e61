import type { EncodeCall, EncodedPrompt, EncodeOptions, EncoderInfo } from './encoder-host.js';

/**
 * What the runtime asks of an encoder: activations of prompts at chosen layers, token counts, and how
 * busy it is. `EncoderHost` is the real one (a local GGUF model through the native addon); routes and
 * the request router depend on this interface only, so HTTP tests can run them without a model.
 */
export interface Encoder {
  readonly info: Pick<EncoderInfo, 'variant' | 'layers' | 'embeddingWidth' | 'maxPromptTokens'>;
  /** Prompts waiting for a decode. */
  readonly pending: number;
  encode(
    prompts: readonly (string | Uint8Array)[],
    options: EncodeOptions,
    call?: EncodeCall,
  ): Promise<EncodedPrompt[]>;
  tokenize(text: string): Int32Array;
  dispose(): Promise<void>;
}
