/**
 * Published list prices (USD per million tokens, input / output) of the tiers in the shared traces, with
 * where each comes from. They price a call when a trace has no `cost` of its own; a trace's `cost` always
 * wins. Written from the providers' public price pages of the time the traces were made (RouterBench:
 * late 2023; ZeroEval: mid-to-late 2024), not re-read from this machine, which has no web access — treat
 * them as the public figures of that time, not today's.
 */
export interface ListPrice {
  input_usd_per_mtok: number;
  output_usd_per_mtok: number;
  source: string;
}

const openai = 'OpenAI API pricing page';
const anthropic = 'Anthropic API pricing page';
const together = 'Together AI serverless pricing page';
const google = 'Google AI Gemini API pricing page (≤ 128k-token prompts)';
const deepseek = 'DeepSeek platform pricing page';

const price = (input: number, output: number, source: string): ListPrice => ({
  input_usd_per_mtok: input,
  output_usd_per_mtok: output,
  source,
});

export const LIST_PRICES: Readonly<Record<string, ListPrice>> = {
  // ../shared/data/README.md: the MMLU / GSM8K pair.
  'mixtral-8x7b-instruct': price(0.24, 0.24, 'the shared data README (several hosts)'),
  'gpt-4-1106-preview': price(10, 30, `${openai}, Nov 2023`),

  // RouterBench (../shared/data/routerbench-traces.jsonl). Its traces carry each call's real cost, which
  // these prices reproduce: the ratios of the tiers' mean costs match the price ratios (BENCHMARKS.md).
  'gpt-3.5-turbo-1106': price(1, 2, `${openai}, Nov 2023`),
  'claude-v1': price(8, 24, `${anthropic}, 2023 (Claude 1)`),
  'claude-v2': price(8, 24, `${anthropic}, 2023 (Claude 2)`),
  'mixtral-8x7b-chat': price(0.6, 0.6, `${together}, Dec 2023`),
  'llama-2-70b-chat': price(0.9, 0.9, `${together}, 2023`),
  'code-llama-instruct-34b-chat': price(0.776, 0.776, `${together}, 2023`),
  'mistral-7b-chat': price(0.2, 0.2, `${together}, 2023`),

  // ZeroEval GSM8K (../shared/data/zeroeval-gsm8k-traces.jsonl), mid-to-late 2024.
  'gpt-4o-2024-05-13': price(5, 15, openai),
  'gpt-4o-2024-08-06': price(2.5, 10, openai),
  'gpt-3.5-turbo-0125': price(0.5, 1.5, openai),
  // Its hidden reasoning tokens are billed as output but are not in the traces' response lengths.
  'o1-mini-2024-09-12': price(3, 12, openai),
  'claude-3-opus-20240229': price(15, 75, anthropic),
  'claude-3-5-sonnet-20240620': price(3, 15, anthropic),
  'claude-3-haiku-20240307': price(0.25, 1.25, anthropic),
  'gemini-1.5-pro': price(3.5, 10.5, google),
  'gemini-1.5-pro-exp-0801': price(3.5, 10.5, `${google}; experimental, priced as gemini-1.5-pro`),
  'gemini-1.5-flash-exp-0827': price(0.075, 0.3, `${google}; experimental, priced as gemini-1.5-flash`),
  'Mistral-Large-2': price(3, 9, 'Mistral AI La Plateforme pricing page, Jul 2024'),
  'Mixtral-8x7B-Instruct-v0.1': price(0.24, 0.24, 'the shared data README (several hosts)'),
  'Meta-Llama-3-8B-Instruct': price(0.2, 0.2, together),
  'Meta-Llama-3.1-8B-Instruct': price(0.18, 0.18, `${together} (Turbo)`),
  'Meta-Llama-3-70B-Instruct': price(0.9, 0.9, together),
  'Llama-3.1-405B-Instruct-Turbo': price(5, 5, `${together} (Turbo)`),
  'Llama-3.1-405B-Inst@sambanova': price(5, 5, `${together} (Turbo): the same model, one price`),
  'Meta-Llama-3.1-405B-Instruct@hyperbolic': price(5, 5, `${together} (Turbo): the same model, one price`),
  'gemma-2-2b-it': price(0.1, 0.1, `${together} (up to 4B parameters)`),
  'gemma-2-27b-it@together': price(0.8, 0.8, together),
  'Qwen2-72B-Instruct': price(0.9, 0.9, together),
  'Athene-70B': price(0.9, 0.9, `${together}: its 41–80B tier (a Llama-3-70B fine-tune)`),
  'Yi-1.5-34B-Chat': price(0.8, 0.8, `${together}: its 21–41B tier`),
  'yi-large': price(3, 3, '01.AI platform pricing page'),
  'yi-large-preview': price(3, 3, '01.AI platform pricing page, priced as yi-large'),
  'DeepSeek-Coder-V2-0724': price(0.14, 0.28, deepseek),
  'deepseek-coder': price(0.14, 0.28, deepseek),
  'deepseek-chat': price(0.14, 0.28, deepseek),
  'reka-core-20240501': price(10, 25, 'Reka API pricing page, May 2024'),
  'command-r-plus': price(3, 15, 'Cohere pricing page, 2024'),
};
