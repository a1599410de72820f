// Implementation of experiments/lm_training.h: the shared trainer for pretrain and sft.
#include "experiments/lm_training.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <optional>

#include "core/checkpoint.h"
#include "core/checkpoint_manager.h"
#include "core/communicator.h"
#include "core/errors.h"
#include "core/lm_data.h"
#include "core/run_session.h"
#include "core/runtime.h"
#include "core/seeding.h"
#include "core/signals.h"
#include "core/text_datasets.h"
#include "core/tokenizer_file.h"
#include "distributed/library_versions.h"
#include "distributed/mpi_communicator.h"
#include "models/gpt.h"
#include "models/gpt_io.h"

namespace troupe::experiments {

void LmDataSection::validate(core::ConfigValidator& v) const {
  v.require(!train.empty(), "train", train, "a path to the training data");
  v.require(max_length >= 2, "max_length", max_length, "an integer >= 2");
  v.require(overlong == "truncate" || overlong == "drop", "overlong", overlong, "truncate or drop");
}

void LmTrainSection::validate(core::ConfigValidator& v) const {
  v.require(steps >= 1, "steps", steps, "an integer >= 1");
  v.require(batch_size >= 1, "batch_size", batch_size, "an integer >= 1");
  v.require(grad_accum >= 1, "grad_accum", grad_accum, "an integer >= 1");
  v.require(block_size >= 0, "block_size", block_size, "an integer >= 0 (0 = model.block_size)");
  v.require(eval_every >= 1, "eval_every", eval_every, "an integer >= 1");
  v.require(eval_batches >= 0, "eval_batches", eval_batches, "an integer >= 0");
  v.require(log_every >= 1, "log_every", log_every, "an integer >= 1");
  v.require(dtype == "fp32" || dtype == "bf16", "dtype", dtype, "fp32 or bf16");
}

void LoraSection::validate(core::ConfigValidator& v) const {
  v.require(rank >= 0, "rank", rank, "an integer >= 0 (0 = off)");
  v.require(alpha > 0, "alpha", alpha, "a number > 0");
  v.require(dropout >= 0 && dropout < 1, "dropout", dropout, "a number in [0, 1)");
  v.require(rank == 0 || !targets.empty(), "targets", targets, "at least one pattern when rank > 0");
}

void LmTrainingConfig::validate(core::ConfigValidator& v) const {
  v.require(kind == "pretrain" || kind == "sft", "kind", kind, "pretrain or sft");
  v.nested("run", run);
  v.nested("runtime", runtime);
  v.nested("checkpoint", checkpoint);
  if (init_from.empty()) v.nested("model", model);
  v.nested("optim", optim);
  v.nested("train", train);
  v.nested("data", data);
  v.nested("lora", lora);
  v.require(kind != "sft" || !data.tokenizer.empty(), "data.tokenizer", data.tokenizer, "a tokenizer for sft");
  v.require(init_from.empty() ? train.block_size <= model.block_size : true, "train.block_size", train.block_size,
            "at most model.block_size");
}

namespace {

using Clock = std::chrono::steady_clock;

// One micro-batch: inputs [B, T], what each position predicts [B, T] (-100 = no loss), and a padding mask.
struct Micro {
  torch::Tensor ids, targets, mask;
  int64_t tokens = 0;  // positions with a loss
};

class LmTrainer {
 public:
  // `session` is null on ranks other than 0; `resume` is the checkpoint every rank restores (or none).
  LmTrainer(const LmTrainingConfig& c, core::RunSession* session, core::Communicator& comm,
            const std::optional<core::CheckpointState>& resume)
      : c_(c), session_(session), comm_(comm) {
    if (c.train.batch_size % comm.size() != 0) {
      throw ConfigError("train.batch_size = " + std::to_string(c.train.batch_size) + " must be a multiple of the " +
                        std::to_string(comm.size()) + " data-parallel ranks (it is the global micro-batch)");
    }
    core::seed_torch(core::derive_seed(static_cast<uint64_t>(c.seed), "torch", 0));
    if (!c.init_from.empty()) {
      model_ = models::load_hf_gpt2(c.init_from);
      spdlog::info("initialised from {} ({} layers, {} heads, width {})", c.init_from, model_->config().n_layer,
                   model_->config().n_head, model_->config().n_embd);
    } else {
      model_ = models::Gpt(c.model);
    }
    if (!c.freeze.empty()) models::freeze_parameters(*model_, c.freeze);
    if (c.lora.rank > 0) {
      models::LoraConfig lora;
      lora.rank = c.lora.rank;
      lora.alpha = c.lora.alpha;
      lora.dropout = c.lora.dropout;
      lora.targets = c.lora.targets;
      const auto adapted = models::apply_lora(model_, lora);
      spdlog::info("LoRA rank {} on {} layers", lora.rank, adapted.size());
    }
    trainable_ = models::trainable_parameter_count(*model_);
    optimizer_ = models::make_adamw(*model_, c.optim);
    for (const auto& p : model_->parameters()) {
      if (p.requires_grad()) trainable_params_.push_back(p);
    }
    setup_data();
    if (resume) restore(*resume);
    model_->train();
  }

  int run() {
    spdlog::info("{}: {:.2f}M parameters ({:.2f}M trainable), {} steps of {} x {} sequences on {} rank(s)", c_.kind,
                 model_->config().parameter_count() / 1e6, trainable_ / 1e6, c_.train.steps, c_.train.batch_size,
                 c_.train.grad_accum, comm_.size());
    const auto t0 = Clock::now();
    const int64_t first = step_;
    while (step_ < c_.train.steps) {
      // Every rank stops together when any of them got a signal (mpirun forwards SIGTERM to all).
      if (comm_.any(core::stop_requested())) return stop(core::stop_requested() ? core::stop_signal() : SIGTERM);
      train_step();
      if (session_ != nullptr && session_->checkpoint_due(step_)) checkpoint();
      if (step_ % c_.train.log_every == 0 || step_ == c_.train.steps) progress(t0, first);
    }
    if (session_ == nullptr) return 0;
    if (last_checkpoint_ != step_) checkpoint();
    const fs_path hf = session_->directory().path() / "hf";
    models::save_hf_gpt2(hf, model_);
    session_->log().log_event(step_, "export", "Hugging Face GPT-2 directory " + hf.string());
    std::string message = "finished " + std::to_string(step_) + " steps";
    if (last_eval_) message += "; eval loss " + std::to_string(*last_eval_);
    session_->finish(core::RunStatus::Finished, step_, message);
    return 0;
  }

 private:
  using fs_path = std::filesystem::path;

  int64_t context() const { return c_.train.block_size > 0 ? c_.train.block_size : model_->config().block_size; }

  void setup_data() {
    if (c_.kind == "pretrain") {
      core::LmBatchOptions o;
      o.batch_size = c_.train.batch_size;
      o.block_size = context();
      o.seed = core::derive_seed(static_cast<uint64_t>(c_.seed), "data", 0);
      o.model_vocab_size = model_->config().vocab_size;
      train_lm_ = std::make_unique<core::LmBatchSampler>(c_.data.train, o);
      if (!c_.data.val.empty()) core::LmBatchSampler check(c_.data.val, o);  // fail early on a bad file
      return;
    }
    tokenizer_.emplace(core::open_tokenizer(c_.data.tokenizer, c_.data.encoding));
    if (tokenizer_->vocab_size() > model_->config().vocab_size) {
      throw ConfigError("data.tokenizer has " + std::to_string(tokenizer_->vocab_size()) +
                        " ids but the model's vocab_size is " + std::to_string(model_->config().vocab_size));
    }
    core::TextDatasetOptions o;
    o.eos_id = core::eos_id_of(*tokenizer_);
    o.max_length = std::min(c_.data.max_length, model_->config().block_size);
    o.overlong = c_.data.overlong == "drop" ? core::Overlong::kDrop : core::Overlong::kTruncate;
    pad_id_ = o.eos_id.value_or(0);
    sft_train_ = core::load_sft_jsonl(*tokenizer_, c_.data.train, o);
    if (!c_.data.val.empty()) sft_val_ = core::load_sft_jsonl(*tokenizer_, c_.data.val, o);
    const auto& s = sft_train_.stats;
    spdlog::info("sft data: {} examples ({} truncated, {} dropped), {} tokens", s.examples, s.truncated, s.dropped,
                 s.tokens);
    if (session_ != nullptr && !session_->resume_state()) {
      session_->log().log_scalars(0, {{"data/examples", static_cast<double>(s.examples)},
                                     {"data/truncated", static_cast<double>(s.truncated)},
                                     {"data/dropped", static_cast<double>(s.dropped)},
                                     {"data/tokens", static_cast<double>(s.tokens)}});
    }
    shuffler_ = std::make_unique<core::EpochShuffler>(sft_train_.examples.size(), c_.train.batch_size,
                                                      core::derive_seed(static_cast<uint64_t>(c_.seed), "data", 0));
  }

  Micro sft_micro(const core::SftDataset& data, const std::vector<int64_t>& indices) const {
    std::vector<core::SftExample> examples;
    for (int64_t i : indices) examples.push_back(data.examples[static_cast<size_t>(i)]);
    const core::TextBatch b = core::collate_sft(examples, pad_id_);
    Micro m;
    const int64_t L = b.input_ids.size(1);
    m.ids = b.input_ids.slice(1, 0, L - 1);
    m.mask = b.attention_mask.slice(1, 0, L - 1);
    m.targets = b.labels.slice(1, 1, L);  // position t predicts token t + 1
    m.tokens = (m.targets != core::kIgnoreIndex).sum().item<int64_t>();
    return m;
  }

  // This rank's rows of the next global micro-batch: every rank draws the same global batch (same seed) and keeps
  // rows [rank * B / W, (rank + 1) * B / W), so W ranks see exactly what one rank would.
  Micro next_micro() {
    const int64_t per_rank = c_.train.batch_size / comm_.size();
    const int64_t begin = comm_.rank() * per_rank;
    if (train_lm_) {
      const core::LmBatch b = train_lm_->next_random();
      const torch::Tensor ids = b.input_ids.slice(0, begin, begin + per_rank);
      return {ids, b.targets.slice(0, begin, begin + per_rank), torch::Tensor(), ids.numel()};
    }
    const std::vector<int64_t> global = shuffler_->next();
    const auto from = std::min<size_t>(global.size(), static_cast<size_t>(begin));
    const auto to = std::min<size_t>(global.size(), static_cast<size_t>(begin + per_rank));
    std::vector<int64_t> mine(global.begin() + static_cast<std::ptrdiff_t>(from),
                              global.begin() + static_cast<std::ptrdiff_t>(to));
    if (mine.empty()) mine.push_back(global.front());  // keep shapes; masked out below
    Micro m = sft_micro(sft_train_, mine);
    if (from == to) {
      m.targets.fill_(core::kIgnoreIndex);
      m.tokens = 0;
    }
    return m;
  }

  // Summed token cross-entropy of one micro-batch (float32).
  torch::Tensor loss_sum(const Micro& m) {
    models::Bf16Autocast autocast(c_.train.dtype == "bf16");
    models::GptInput in;
    in.ids = m.ids;
    in.attention_mask = m.mask;
    const torch::Tensor logits = model_->logits(model_->hidden(in)).to(torch::kFloat32);
    return torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), m.targets.reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(core::kIgnoreIndex).reduction(torch::kSum));
  }

  void train_step() {
    const auto start = Clock::now();
    const double lr = models::lr_at(c_.optim, step_, c_.train.steps);
    models::set_lr(*optimizer_, lr);
    std::vector<Micro> micros;
    int64_t local_tokens = 0;
    for (int64_t i = 0; i < c_.train.grad_accum; ++i) {
      micros.push_back(next_micro());
      local_tokens += micros.back().tokens;
    }
    torch::Tensor token_count = torch::tensor({local_tokens}, torch::kLong);
    comm_.allreduce_sum(token_count);
    const int64_t tokens = token_count.item<int64_t>();
    optimizer_->zero_grad();
    double local_total = 0;
    for (const Micro& m : micros) {
      // Token mean over the whole accumulated global batch, not a mean of per-micro-batch means.
      const torch::Tensor loss = loss_sum(m) / static_cast<double>(std::max<int64_t>(tokens, 1));
      loss.backward();
      local_total += loss.item<double>();
    }
    double total = local_total;
    if (comm_.size() > 1) total = allreduce_gradients(local_total);
    const double clip = c_.optim.grad_clip > 0 ? c_.optim.grad_clip : std::numeric_limits<double>::infinity();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(trainable_params_, clip);
    optimizer_->step();
    ++step_;
    tokens_seen_ += tokens;
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::map<std::string, double> m = {{"train/loss", total},
                                       {"train/lr", lr},
                                       {"train/grad_norm", grad_norm},
                                       {"train/tokens", static_cast<double>(tokens_seen_)},
                                       {"train/tokens_per_s", static_cast<double>(tokens) / std::max(secs, 1e-9)}};
    if (session_ != nullptr && !c_.data.val.empty() && (step_ % c_.train.eval_every == 0 || step_ == c_.train.steps)) {
      const double e = evaluate();
      m["eval/loss"] = e;
      m["eval/ppl"] = std::exp(e);
      last_eval_ = e;
    }
    if (session_ != nullptr) session_->log().log_scalars(step_, m);
    last_loss_ = total;
    last_tokens_per_s_ = m["train/tokens_per_s"];
  }

  // Sums every trainable gradient (and the loss) over the ranks in one flat buffer; returns the global loss.
  double allreduce_gradients(double local_loss) {
    std::vector<torch::Tensor> grads;
    for (auto& p : trainable_params_) {
      if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      grads.push_back(p.grad().reshape({-1}));
    }
    grads.push_back(torch::tensor({local_loss}, torch::kFloat32));
    torch::Tensor flat = torch::cat(grads);
    comm_.allreduce_sum(flat);
    int64_t at = 0;
    for (auto& p : trainable_params_) {
      const int64_t n = p.numel();
      p.mutable_grad().copy_(flat.slice(0, at, at + n).view_as(p));
      at += n;
    }
    return flat[at].item<double>();
  }

  // Mean token loss over the first eval_batches batches of the validation data (all when 0), in order.
  double evaluate() {
    torch::NoGradGuard no_grad;
    model_->eval();
    double sum = 0;
    int64_t count = 0;
    int64_t batches = 0;
    const bool all = c_.train.eval_batches == 0;
    if (train_lm_) {
      core::LmBatchOptions o = train_lm_->options();
      core::LmBatchSampler val(c_.data.val, o);
      while (all || batches < c_.train.eval_batches) {
        const auto b = val.next_sequential();
        if (!b) break;
        sum += loss_sum({b->input_ids, b->targets, torch::Tensor(), b->input_ids.numel()}).item<double>();
        count += b->input_ids.numel();
        ++batches;
      }
    } else {
      const auto n = static_cast<int64_t>(sft_val_.examples.size());
      for (int64_t at = 0; at < n && (all || batches < c_.train.eval_batches); at += c_.train.batch_size, ++batches) {
        std::vector<int64_t> idx;
        for (int64_t i = at; i < std::min(n, at + c_.train.batch_size); ++i) idx.push_back(i);
        const Micro m = sft_micro(sft_val_, idx);
        sum += loss_sum(m).item<double>();
        count += m.tokens;
      }
    }
    model_->train();
    return count > 0 ? sum / static_cast<double>(count) : 0.0;
  }

  void progress(Clock::time_point t0, int64_t first) {
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double rate = secs > 0 ? static_cast<double>(step_ - first) / secs : 0.0;
    const double eta = rate > 0 ? static_cast<double>(c_.train.steps - step_) / rate : 0.0;
    std::string eval;
    if (last_eval_) eval = fmt::format(" | eval loss {:.4f} ppl {:.2f}", *last_eval_, std::exp(*last_eval_));
    spdlog::info("step {:>6}/{} loss {:.4f} lr {:.2e} | {:.0f} tok/s, ETA {:.0f}s{}", step_, c_.train.steps,
                 last_loss_, models::lr_at(c_.optim, step_ - 1, c_.train.steps), last_tokens_per_s_, eta, eval);
  }

  void checkpoint() {
    core::CheckpointState s;
    s.step = step_;
    s.add_module("model", *model_);
    s.add_optimizer("optimizer", *optimizer_);
    s.capture_torch_rng();
    s.extra["step"] = step_;
    s.extra["tokens_seen"] = tokens_seen_;
    s.extra["data_state"] = train_lm_ ? train_lm_->state().to_vector() : shuffler_->state().to_vector();
    session_->save_checkpoint(s);
    last_checkpoint_ = step_;
  }

  void restore(const core::CheckpointState& s) {
    s.load_module("model", *model_);
    s.load_optimizer("optimizer", *optimizer_);
    s.restore_torch_rng();
    step_ = s.get<int64_t>("step");
    tokens_seen_ = s.get<int64_t>("tokens_seen");
    const auto data = s.get<std::vector<int64_t>>("data_state");
    if (train_lm_) {
      train_lm_->restore(core::LmBatchState::from_vector(data));
    } else {
      shuffler_->restore(core::ShuffleState::from_vector(data));
    }
    last_checkpoint_ = step_;
    spdlog::info("resumed at step {} ({} tokens seen)", step_, tokens_seen_);
  }

  int stop(int sig) {
    if (session_ == nullptr) return 128 + sig;
    if (c_.checkpoint.on_signal && last_checkpoint_ != step_) checkpoint();
    session_->finish(core::RunStatus::Interrupted, step_,
                    "stopped by signal " + std::to_string(sig) + " at step " + std::to_string(step_));
    return 128 + sig;
  }

  const LmTrainingConfig& c_;
  core::RunSession* session_;
  core::Communicator& comm_;
  models::Gpt model_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> trainable_params_;
  int64_t trainable_ = 0;
  std::unique_ptr<core::LmBatchSampler> train_lm_;
  std::optional<core::BpeTokenizer> tokenizer_;
  core::SftDataset sft_train_, sft_val_;
  std::unique_ptr<core::EpochShuffler> shuffler_;
  int64_t pad_id_ = 0;
  int64_t step_ = 0;
  int64_t tokens_seen_ = 0;
  int64_t last_checkpoint_ = -1;
  double last_loss_ = 0;
  double last_tokens_per_s_ = 0;
  std::optional<double> last_eval_;
};

// Rank 0 tells the other ranks where the run directory is and which checkpoint step (or -1) to resume from.
void announce_resume(core::Communicator& comm, const std::filesystem::path& dir, int64_t step) {
  if (comm.size() == 1) return;
  const std::string path = dir.string();
  torch::Tensor header = torch::tensor({static_cast<int64_t>(path.size()), step}, torch::kLong);
  comm.broadcast(header, 0);
  torch::Tensor bytes = torch::from_blob(const_cast<char*>(path.data()), {static_cast<int64_t>(path.size())},
                                         torch::kUInt8).clone();
  comm.broadcast(bytes, 0);
}

int run_lm_training_worker(const LmTrainingConfig& config, core::Communicator& comm) {
  spdlog::set_level(spdlog::level::warn);  // rank 0 reports progress
  core::set_threads(config.runtime.threads);
  torch::Tensor header = torch::zeros({2}, torch::kLong);
  comm.broadcast(header, 0);
  torch::Tensor bytes = torch::zeros({header[0].item<int64_t>()}, torch::kUInt8);
  comm.broadcast(bytes, 0);
  const std::filesystem::path dir(std::string(static_cast<const char*>(bytes.data_ptr()), bytes.numel()));
  std::optional<core::CheckpointState> resume;
  if (const int64_t step = header[1].item<int64_t>(); step >= 0) {
    core::CheckpointOptions options;
    options.root = dir / "checkpoints";
    core::CheckpointManager manager(options);
    resume = manager.load(manager.step_dir(step));
  }
  LmTrainer trainer(config, nullptr, comm, resume);
  return trainer.run();
}

}  // namespace

int run_lm_training(const LmTrainingConfig& config, const std::string& resolved_yaml, const std::string& command_line) {
  // Under mpirun/srun with several ranks: data parallel over MPI_COMM_WORLD; rank 0 owns the run directory.
  std::unique_ptr<core::Communicator> comm;
  if (distributed::launched_by_mpi()) {
    comm = distributed::MpiCommunicator::world();
  } else {
    comm = std::make_unique<core::SingleProcessCommunicator>();
  }
  if (comm->rank() != 0) return run_lm_training_worker(config, *comm);
  core::RunSessionOptions options = session_options(config, resolved_yaml, command_line);
  options.world_size = comm->size();
  core::RunSession session(options);
  try {
    announce_resume(*comm, session.directory().path(), session.resume_state() ? session.resume_state()->step : -1);
    LmTrainer trainer(config, &session, *comm, session.resume_state());
    return trainer.run();
  } catch (const std::exception& e) {
    session.finish(core::RunStatus::Failed, -1, e.what());
    throw;
  }
}

ExperimentKind pretrain_kind() {
  return make_kind<LmTrainingConfig>("pretrain", "causal-LM pretraining of a GPT on token files", run_lm_training);
}

ExperimentKind sft_kind() {
  return make_kind<LmTrainingConfig>("sft", "supervised fine-tuning on prompt/response JSONL (loss on responses)",
                                     run_lm_training);
}

}  // namespace troupe::experiments
