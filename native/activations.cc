// mechroute activation addon: runs only the prefill of prompts through a GGUF model with llama.cpp and
// reads the residual stream after chosen layers through the scheduler's eval callback.
//
// It links node-llama-cpp's prebuilt libllama/libggml (the same shared objects node-llama-cpp has already
// loaded in this process, so there is one copy of llama.cpp and one set of backends).
//
// The typed JS surface of this file is src/encoder/addon-types.ts; keep the two in step.

#include <napi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "ggml.h"
#include "llama.h"

namespace {

std::once_flag g_backend_once;

// What one capture wants and where the rows go. Owned by the context so the eval callback's user data
// pointer stays valid for the context's whole life.
struct CaptureState {
  int n_layer = 0;
  int n_embd = 0;
  int n_seq = 0;
  int n_out = 0;
  std::string layer_prefix;  // e.g. "l_out-"; the final norm is read from "result_norm"
  std::vector<int> slot_of_layer;  // layer index (n_layer = after final norm) -> output slot or -1
  std::vector<int> layer_of_slot;
  int n_slots = 0;
  int deepest = -1;
  bool stop_after_deepest = true;
  bool stopped_early = false;
  bool want_mean = false;
  bool want_last = false;
  // Set from the JS thread by cancel(), read by llama.cpp's abort callback (CPU: between graph nodes) and
  // by the eval callback at every observed layer (any backend): a capture nobody waits for stops early.
  std::atomic<bool> cancel_requested{false};
  bool cancelled = false;
  // Token bookkeeping in batch order (llama.cpp's simple split keeps batch order within one ubatch).
  // An *output* is one marked token of a sequence: its last by default, or each of the token positions
  // the caller asked for (the ends of a text's prefixes, read in one pass since attention is causal).
  std::vector<int32_t> token_seq;      // token index -> sequence index
  std::vector<int32_t> token_output;   // token index -> output index, or -1
  std::vector<int32_t> output_tokens;  // output index -> token index (batch order)
  std::vector<int32_t> output_len;     // output index -> tokens of its sequence up to and including it
  std::vector<int64_t> rows_seen;  // per slot
  std::vector<float> running;  // [seq][slot][embd]: sums over the tokens seen so far
  std::vector<float> mean;     // [output][slot][embd], sums until finalised
  std::vector<float> last;     // [output][slot][embd]: the output token's own row
  std::vector<float> scratch;
  std::string error;

  void reset() {
    stopped_early = false;
    cancelled = false;
    error.clear();
    std::fill(rows_seen.begin(), rows_seen.end(), 0);
  }
};

// "l_out-12" -> 12, "result_norm" -> n_layer, anything else -> -1.
int layer_of_tensor(const CaptureState& st, const char* name) {
  if (std::strcmp(name, "result_norm") == 0) return st.n_layer;
  const size_t plen = st.layer_prefix.size();
  if (std::strncmp(name, st.layer_prefix.c_str(), plen) != 0) return -1;
  const char* digits = name + plen;
  if (*digits < '0' || *digits > '9') return -1;
  char* end = nullptr;
  const long il = std::strtol(digits, &end, 10);
  if (*end != '\0' || il < 0 || il >= st.n_layer) return -1;
  return static_cast<int>(il);
}

bool eval_callback(struct ggml_tensor* t, bool ask, void* user_data) {
  auto* st = static_cast<CaptureState*>(user_data);
  const int il = layer_of_tensor(*st, t->name);
  const int slot = il >= 0 ? st->slot_of_layer[il] : -1;
  if (ask) return slot >= 0;
  if (slot < 0) return true;
  if (st->cancel_requested.load()) {
    st->cancelled = true;
    return false;
  }

  if (t->type != GGML_TYPE_F32 || t->ne[0] != st->n_embd) {
    st->error = std::string("unexpected tensor layout for ") + t->name;
    return false;
  }
  const int64_t rows = t->ne[1];
  const size_t row_bytes = static_cast<size_t>(st->n_embd) * sizeof(float);
  const float* data = nullptr;
  if (t->buffer != nullptr && ggml_backend_buffer_is_host(t->buffer) && ggml_is_contiguous(t)) {
    data = static_cast<const float*>(t->data);
  } else {
    // Device memory (CUDA, Vulkan): copy the rows to the host once.
    st->scratch.resize(static_cast<size_t>(rows) * st->n_embd);
    ggml_backend_tensor_get(t, st->scratch.data(), 0, static_cast<size_t>(rows) * row_bytes);
    data = st->scratch.data();
  }

  // llama.cpp computes the last block and the final norm only for tokens marked as outputs. Marking every
  // token would make it reserve n_tokens x n_vocab logits (1 MiB per token for Gemma's 262k vocabulary),
  // so these layers give the last token only and the host refuses mean pooling there.
  const bool trimmed = il >= st->n_layer - 1;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t row_index = st->rows_seen[slot] + r;
    const int64_t token = trimmed ? (row_index < static_cast<int64_t>(st->output_tokens.size())
                                         ? st->output_tokens[row_index]
                                         : -1)
                                  : row_index;
    if (token < 0 || token >= static_cast<int64_t>(st->token_seq.size())) {
      st->error = "activation rows do not match the batch";
      return false;
    }
    const int seq = st->token_seq[token];
    const int out = st->token_output[token];
    const float* row = data + r * st->n_embd;
    if (st->want_mean && !trimmed) {
      float* acc = st->running.data() + (static_cast<size_t>(seq) * st->n_slots + slot) * st->n_embd;
      for (int e = 0; e < st->n_embd; ++e) acc[e] += row[e];
      if (out >= 0) {
        std::memcpy(st->mean.data() + (static_cast<size_t>(out) * st->n_slots + slot) * st->n_embd, acc,
                    row_bytes);
      }
    }
    if (st->want_last && out >= 0) {
      std::memcpy(st->last.data() + (static_cast<size_t>(out) * st->n_slots + slot) * st->n_embd, row, row_bytes);
    }
  }
  st->rows_seen[slot] += rows;

  if (il == st->deepest && st->stop_after_deepest) {
    // Cancels the rest of the graph: nothing past the deepest layer is computed (the logits are left
    // garbage, and the memory is cleared before the next capture).
    st->stopped_early = true;
    return false;
  }
  return true;
}

// llama.cpp polls this between graph nodes on the CPU backend; true aborts the decode.
bool abort_callback(void* user_data) {
  auto* st = static_cast<CaptureState*>(user_data);
  if (!st->cancel_requested.load()) return false;
  st->cancelled = true;
  return true;
}

class ActivationModel;

// ---- context -----------------------------------------------------------------------------------------

class ActivationContext : public Napi::ObjectWrap<ActivationContext> {
 public:
  static Napi::FunctionReference constructor;

  static Napi::Function Init(Napi::Env env) {
    Napi::Function fn = DefineClass(env, "ActivationContext",
                                    {
                                        InstanceMethod("capture", &ActivationContext::Capture),
                                        InstanceMethod("cancel", &ActivationContext::Cancel),
                                        InstanceMethod("dispose", &ActivationContext::Dispose),
                                        InstanceAccessor("contextTokens", &ActivationContext::ContextTokens, nullptr),
                                        InstanceAccessor("maxSequences", &ActivationContext::MaxSequences, nullptr),
                                    });
    constructor = Napi::Persistent(fn);
    return fn;
  }

  explicit ActivationContext(const Napi::CallbackInfo& info);
  ~ActivationContext() override { Free(); }

  llama_context* ctx = nullptr;
  llama_model* model = nullptr;
  ActivationModel* owner_model = nullptr;
  Napi::ObjectReference model_ref;  // keeps the model alive while the context lives
  CaptureState state;
  uint32_t n_ctx = 0;
  uint32_t n_seq_max = 0;
  std::atomic<bool> busy{false};

  void Free();

 private:
  Napi::Value Capture(const Napi::CallbackInfo& info);
  // Asks the running capture (if any) to stop; it then rejects with "capture cancelled".
  Napi::Value Cancel(const Napi::CallbackInfo& info) {
    if (busy) state.cancel_requested.store(true);
    return info.Env().Undefined();
  }
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (busy) {
      Napi::Error::New(info.Env(), "cannot dispose an ActivationContext while a capture runs")
          .ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    Free();
    return info.Env().Undefined();
  }
  Napi::Value ContextTokens(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), n_ctx); }
  Napi::Value MaxSequences(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), n_seq_max); }
};

Napi::FunctionReference ActivationContext::constructor;

// ---- model -------------------------------------------------------------------------------------------

class ActivationModel : public Napi::ObjectWrap<ActivationModel> {
 public:
  static Napi::FunctionReference constructor;

  static Napi::Function Init(Napi::Env env) {
    Napi::Function fn = DefineClass(env, "ActivationModel",
                                    {
                                        InstanceMethod("tokenize", &ActivationModel::Tokenize),
                                        InstanceMethod("createContext", &ActivationModel::CreateContext),
                                        InstanceMethod("dispose", &ActivationModel::Dispose),
                                        InstanceAccessor("info", &ActivationModel::Info, nullptr),
                                    });
    constructor = Napi::Persistent(fn);
    return fn;
  }

  explicit ActivationModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ActivationModel>(info) {}
  ~ActivationModel() override {
    if (model != nullptr) llama_model_free(model);
  }

  llama_model* model = nullptr;
  int live_contexts = 0;

 private:
  Napi::Value Tokenize(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (model == nullptr) throw Napi::Error::New(env, "the model has been disposed");
    const std::string text = info[0].As<Napi::String>().Utf8Value();
    const bool add_special = info.Length() > 1 ? info[1].As<Napi::Boolean>().Value() : true;
    const llama_vocab* vocab = llama_model_get_vocab(model);
    // A token per byte plus specials is the upper bound for byte-fallback vocabularies.
    std::vector<llama_token> tokens(text.size() + 8);
    int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                               static_cast<int32_t>(tokens.size()), add_special, false);
    if (n < 0) {
      tokens.resize(static_cast<size_t>(-n));
      n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), tokens.data(),
                         static_cast<int32_t>(tokens.size()), add_special, false);
    }
    if (n < 0) throw Napi::Error::New(env, "tokenization failed");
    Napi::Int32Array out = Napi::Int32Array::New(env, static_cast<size_t>(n));
    std::memcpy(out.Data(), tokens.data(), static_cast<size_t>(n) * sizeof(int32_t));
    return out;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (model == nullptr) throw Napi::Error::New(env, "the model has been disposed");
    Napi::Object out = Napi::Object::New(env);
    char buf[256];
    out.Set("layers", llama_model_n_layer(model));
    out.Set("embeddingWidth", llama_model_n_embd(model));
    out.Set("trainContext", llama_model_n_ctx_train(model));
    llama_model_desc(model, buf, sizeof(buf));
    out.Set("description", std::string(buf));
    const int32_t n = llama_model_meta_val_str(model, "general.architecture", buf, sizeof(buf));
    out.Set("architecture", n >= 0 ? std::string(buf) : std::string("unknown"));
    out.Set("addsBos", llama_vocab_get_add_bos(llama_model_get_vocab(model)));
    return out;
  }

  Napi::Value CreateContext(const Napi::CallbackInfo& info);

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    if (live_contexts > 0) {
      throw Napi::Error::New(info.Env(), "dispose the model's contexts before the model");
    }
    if (model != nullptr) {
      llama_model_free(model);
      model = nullptr;
    }
    return info.Env().Undefined();
  }
};

Napi::FunctionReference ActivationModel::constructor;

ActivationContext::ActivationContext(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<ActivationContext>(info) {}

void ActivationContext::Free() {
  if (ctx != nullptr) {
    llama_free(ctx);
    ctx = nullptr;
    owner_model->live_contexts -= 1;
  }
  if (!model_ref.IsEmpty()) model_ref.Reset();
}

// createContext({contextTokens, maxSequences, threads, layerPrefix, flashAttention})
Napi::Value ActivationModel::CreateContext(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (model == nullptr) throw Napi::Error::New(env, "the model has been disposed");
  Napi::Object opts = info[0].As<Napi::Object>();
  const uint32_t n_ctx = opts.Get("contextTokens").As<Napi::Number>().Uint32Value();
  const uint32_t n_seq = opts.Get("maxSequences").As<Napi::Number>().Uint32Value();
  const int32_t threads = opts.Get("threads").As<Napi::Number>().Int32Value();
  const std::string prefix = opts.Get("layerPrefix").As<Napi::String>().Utf8Value();

  Napi::Object obj = ActivationContext::constructor.New({});
  ActivationContext* c = ActivationContext::Unwrap(obj);
  c->model = model;
  c->owner_model = this;
  c->model_ref = Napi::Persistent(info.This().As<Napi::Object>());
  c->state.n_layer = llama_model_n_layer(model);
  c->state.n_embd = llama_model_n_embd(model);
  c->state.layer_prefix = prefix + "-";

  llama_context_params p = llama_context_default_params();
  // One decode = one ubatch: early exit cancels the whole graph compute, so a second ubatch would never
  // run, and the row -> token mapping relies on the batch order of a single simple split.
  p.n_ctx = n_ctx;
  p.n_batch = n_ctx;
  p.n_ubatch = n_ctx;
  p.n_seq_max = n_seq;
  p.kv_unified = true;  // lets llama.cpp use the order-preserving simple split with several sequences
  p.n_threads = threads;
  p.n_threads_batch = threads;
  p.embeddings = false;
  p.no_perf = true;
  if (opts.Has("flashAttention")) {
    p.flash_attn_type = opts.Get("flashAttention").As<Napi::Boolean>().Value() ? LLAMA_FLASH_ATTN_TYPE_ENABLED
                                                                             : LLAMA_FLASH_ATTN_TYPE_DISABLED;
  }
  if (opts.Has("kvUnified")) p.kv_unified = opts.Get("kvUnified").As<Napi::Boolean>().Value();
  p.cb_eval = eval_callback;
  p.cb_eval_user_data = &c->state;
  c->ctx = llama_init_from_model(model, p);
  if (c->ctx == nullptr) throw Napi::Error::New(env, "llama_init_from_model failed (out of memory?)");
  llama_set_abort_callback(c->ctx, abort_callback, &c->state);
  c->n_ctx = llama_n_ctx(c->ctx);
  c->n_seq_max = llama_n_seq_max(c->ctx);
  live_contexts += 1;
  return obj;
}

// ---- capture (off the JS thread) ---------------------------------------------------------------------

class CaptureWorker : public Napi::AsyncWorker {
 public:
  CaptureWorker(Napi::Env env, ActivationContext* owner, Napi::Object owner_obj,
                std::vector<std::vector<llama_token>> seqs)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), owner_(owner),
        seqs_(std::move(seqs)) {
    owner_ref_ = Napi::Persistent(owner_obj);
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    CaptureState& st = owner_->state;
    llama_context* ctx = owner_->ctx;
    const auto t0 = std::chrono::steady_clock::now();
    llama_memory_clear(llama_get_memory(ctx), true);

    size_t n_tokens = 0;
    for (const auto& s : seqs_) n_tokens += s.size();
    llama_batch batch = llama_batch_init(static_cast<int32_t>(n_tokens), 0, 1);
    for (size_t s = 0; s < seqs_.size(); ++s) {
      for (size_t i = 0; i < seqs_[s].size(); ++i) {
        const int32_t k = batch.n_tokens++;
        batch.token[k] = seqs_[s][i];
        batch.pos[k] = static_cast<llama_pos>(i);
        batch.n_seq_id[k] = 1;
        batch.seq_id[k][0] = static_cast<llama_seq_id>(s);
        // Outputs are what llama.cpp keeps rows of past the trimming before the last block.
        batch.logits[k] = st.token_output[k] >= 0 ? 1 : 0;
      }
    }
    const int32_t rc = llama_decode(ctx, batch);
    llama_batch_free(batch);
    // Leave no half-computed state for the next capture (early exit leaves the memory inconsistent).
    llama_memory_clear(llama_get_memory(ctx), true);
    decode_ms_ = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();

    if (st.cancelled) return SetError("capture cancelled");
    if (!st.error.empty()) return SetError(st.error);
    if (rc != 0 && !st.stopped_early) return SetError("llama_decode failed with code " + std::to_string(rc));
    for (int slot = 0; slot < st.n_slots; ++slot) {
      const bool trimmed_slot = st.layer_of_slot[slot] >= st.n_layer - 1;
      const int64_t expected = trimmed_slot ? static_cast<int64_t>(st.output_tokens.size())
                                            : static_cast<int64_t>(n_tokens);
      if (st.rows_seen[slot] != expected) return SetError("a requested layer was not observed in the graph");
    }
    if (st.want_mean) {
      for (int o = 0; o < st.n_out; ++o) {
        const float inv = 1.0f / static_cast<float>(st.output_len[o]);
        float* base = st.mean.data() + static_cast<size_t>(o) * st.n_slots * st.n_embd;
        for (size_t e = 0; e < static_cast<size_t>(st.n_slots) * st.n_embd; ++e) base[e] *= inv;
      }
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    CaptureState& st = owner_->state;
    owner_->busy = false;
    Napi::Object out = Napi::Object::New(env);
    if (st.want_mean) out.Set("mean", CopyOut(env, st.mean));
    if (st.want_last) out.Set("last", CopyOut(env, st.last));
    out.Set("decodeMs", decode_ms_);
    out.Set("stoppedEarly", st.stopped_early);
    deferred_.Resolve(out);
  }

  void OnError(const Napi::Error& e) override {
    owner_->busy = false;
    deferred_.Reject(e.Value());
  }

 private:
  static Napi::Float32Array CopyOut(Napi::Env env, const std::vector<float>& v) {
    Napi::Float32Array a = Napi::Float32Array::New(env, v.size());
    std::memcpy(a.Data(), v.data(), v.size() * sizeof(float));
    return a;
  }

  Napi::Promise::Deferred deferred_;
  ActivationContext* owner_;
  Napi::ObjectReference owner_ref_;
  std::vector<std::vector<llama_token>> seqs_;
  double decode_ms_ = 0;
};

// capture(sequences: Int32Array[], layers: Int32Array, {mean, last, stopEarly, ends?: Int32Array[]}) -> Promise
Napi::Value ActivationContext::Capture(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (ctx == nullptr) throw Napi::Error::New(env, "the context has been disposed");
  if (busy.exchange(true)) throw Napi::Error::New(env, "a capture is already running on this context");

  try {
    Napi::Array arr = info[0].As<Napi::Array>();
    Napi::Int32Array layers = info[1].As<Napi::Int32Array>();
    Napi::Object opts = info[2].As<Napi::Object>();
    CaptureState& st = state;

    std::vector<std::vector<llama_token>> seqs(arr.Length());
    size_t total = 0;
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Int32Array a = arr.Get(i).As<Napi::Int32Array>();
      if (a.ElementLength() == 0) throw Napi::Error::New(env, "sequence " + std::to_string(i) + " is empty");
      seqs[i].assign(a.Data(), a.Data() + a.ElementLength());
      total += a.ElementLength();
    }
    if (seqs.empty()) throw Napi::Error::New(env, "no sequences");
    if (seqs.size() > n_seq_max) throw Napi::Error::New(env, "more sequences than the context's maxSequences");
    if (total > n_ctx) throw Napi::Error::New(env, "the batch has more tokens than the context holds");

    st.n_seq = static_cast<int>(seqs.size());
    st.want_mean = opts.Get("mean").As<Napi::Boolean>().Value();
    st.want_last = opts.Get("last").As<Napi::Boolean>().Value();
    st.stop_after_deepest = opts.Get("stopEarly").As<Napi::Boolean>().Value();
    st.slot_of_layer.assign(st.n_layer + 1, -1);
    st.n_slots = static_cast<int>(layers.ElementLength());
    st.layer_of_slot.assign(layers.Data(), layers.Data() + st.n_slots);
    st.deepest = -1;
    for (int k = 0; k < st.n_slots; ++k) {
      const int il = layers[k];
      if (il < 0 || il > st.n_layer) throw Napi::Error::New(env, "layer " + std::to_string(il) + " out of range");
      if (st.slot_of_layer[il] >= 0) throw Napi::Error::New(env, "layer " + std::to_string(il) + " requested twice");
      st.slot_of_layer[il] = k;
      st.deepest = std::max(st.deepest, il);
    }
    if (st.n_slots == 0) throw Napi::Error::New(env, "no layers requested");

    // Each sequence's outputs: the token positions in `ends` (ascending), or its last token.
    Napi::Array ends_arr = opts.Has("ends") && opts.Get("ends").IsArray() ? opts.Get("ends").As<Napi::Array>()
                                                                           : Napi::Array::New(env);
    if (ends_arr.Length() != 0 && ends_arr.Length() != seqs.size()) {
      throw Napi::Error::New(env, "ends must give one Int32Array per sequence");
    }
    st.token_seq.clear();
    st.token_output.clear();
    st.output_tokens.clear();
    st.output_len.clear();
    for (size_t s = 0; s < seqs.size(); ++s) {
      const int64_t len = static_cast<int64_t>(seqs[s].size());
      std::vector<int32_t> marks;
      if (ends_arr.Length() == 0) {
        marks.push_back(static_cast<int32_t>(len - 1));
      } else {
        Napi::Int32Array e = ends_arr.Get(static_cast<uint32_t>(s)).As<Napi::Int32Array>();
        marks.assign(e.Data(), e.Data() + e.ElementLength());
        if (marks.empty()) throw Napi::Error::New(env, "ends of sequence " + std::to_string(s) + " is empty");
        for (size_t m = 0; m < marks.size(); ++m) {
          if (marks[m] < 0 || marks[m] >= len || (m > 0 && marks[m] <= marks[m - 1])) {
            throw Napi::Error::New(env, "ends of sequence " + std::to_string(s) +
                                            " must be ascending token positions inside it");
          }
        }
      }
      size_t next_mark = 0;
      for (int64_t i = 0; i < len; ++i) {
        const int32_t token = static_cast<int32_t>(st.token_seq.size());
        int32_t out = -1;
        if (next_mark < marks.size() && marks[next_mark] == i) {
          out = static_cast<int32_t>(st.output_tokens.size());
          st.output_tokens.push_back(token);
          st.output_len.push_back(static_cast<int32_t>(i + 1));
          next_mark += 1;
        }
        st.token_seq.push_back(static_cast<int32_t>(s));
        st.token_output.push_back(out);
      }
    }
    st.n_out = static_cast<int>(st.output_tokens.size());
    const size_t out_size = static_cast<size_t>(st.n_out) * st.n_slots * st.n_embd;
    st.running.assign(st.want_mean ? static_cast<size_t>(st.n_seq) * st.n_slots * st.n_embd : 0, 0.0f);
    st.mean.assign(st.want_mean ? out_size : 0, 0.0f);
    st.last.assign(st.want_last ? out_size : 0, 0.0f);
    st.rows_seen.assign(st.n_slots, 0);
    st.reset();
    // Cleared here, on the JS thread before the worker is queued, so a cancel() that follows this call
    // reaches this capture and no earlier one.
    st.cancel_requested.store(false);

    auto* worker = new CaptureWorker(env, this, info.This().As<Napi::Object>(), std::move(seqs));
    Napi::Promise promise = worker->Promise();
    worker->Queue();
    return promise;
  } catch (...) {
    busy = false;
    throw;
  }
}

// ---- model loading (off the JS thread) ---------------------------------------------------------------

class LoadWorker : public Napi::AsyncWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, int32_t gpu_layers, bool use_mmap, bool repack)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), path_(std::move(path)),
        gpu_layers_(gpu_layers), use_mmap_(use_mmap), repack_(repack) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    llama_model_params p = llama_model_default_params();
    p.n_gpu_layers = gpu_layers_;
    if (!use_mmap_) p.load_mode = LLAMA_LOAD_MODE_NONE;
    p.use_extra_bufts = repack_;
    model_ = llama_model_load_from_file(path_.c_str(), p);
    if (model_ == nullptr) SetError("llama.cpp could not load the model at " + path_);
  }

  void OnOK() override {
    Napi::Object obj = ActivationModel::constructor.New({});
    ActivationModel::Unwrap(obj)->model = model_;
    deferred_.Resolve(obj);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::string path_;
  int32_t gpu_layers_;
  bool use_mmap_;
  bool repack_;
  llama_model* model_ = nullptr;
};

// loadModel(path, {gpuLayers, useMmap}) -> Promise<ActivationModel>
Napi::Value LoadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  Napi::Object opts = info[1].As<Napi::Object>();
  auto* worker = new LoadWorker(env, path, opts.Get("gpuLayers").As<Napi::Number>().Int32Value(),
                                opts.Get("useMmap").As<Napi::Boolean>().Value(),
                                !opts.Has("repack") || opts.Get("repack").As<Napi::Boolean>().Value());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

// initBackends(binsDir): loads ggml backends from node-llama-cpp's binaries folder unless they are
// already registered (they are when node-llama-cpp has loaded the same library first).
Napi::Value InitBackends(const Napi::CallbackInfo& info) {
  const std::string dir = info[0].As<Napi::String>().Utf8Value();
  std::call_once(g_backend_once, [&dir]() {
    llama_backend_init();
    if (ggml_backend_dev_count() == 0) ggml_backend_load_all_from_path(dir.c_str());
  });
  Napi::Array devices = Napi::Array::New(info.Env());
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    Napi::Object d = Napi::Object::New(info.Env());
    d.Set("name", ggml_backend_dev_name(dev));
    d.Set("description", ggml_backend_dev_description(dev));
    const auto type = ggml_backend_dev_type(dev);
    d.Set("type", type == GGML_BACKEND_DEVICE_TYPE_CPU ? "cpu" : type == GGML_BACKEND_DEVICE_TYPE_GPU ? "gpu" : "other");
    devices.Set(static_cast<uint32_t>(i), d);
  }
  return devices;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("ActivationModel", ActivationModel::Init(env));
  exports.Set("ActivationContext", ActivationContext::Init(env));
  exports.Set("loadModel", Napi::Function::New(env, LoadModel));
  exports.Set("initBackends", Napi::Function::New(env, InitBackends));
  exports.Set("systemInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return Napi::String::New(info.Env(), llama_print_system_info());
              }));
  return exports;
}

}  // namespace

NODE_API_MODULE(mechroute_activations, Init)
