// Implementation of experiments/trainer.h: the config checks and the training loop shared by every kind.
#include "experiments/trainer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <mutex>
#include <optional>

#include "core/checkpoint.h"
#include "core/checkpoint_manager.h"
#include "core/device.h"
#include "core/errors.h"
#include "core/run_session.h"
#include "core/runtime.h"
#include "core/seeding.h"
#include "core/signals.h"
#include "core/torch_runtime.h"
#include "data/text_datasets.h"
#include "distributed/communicator.h"
#include "distributed/data_parallel.h"
#include "distributed/mpi_communicator.h"
#include "distributed/nccl_communicator.h"
#include "evaluation/harness.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::experiments {

void TrainDataSection::validate(core::ConfigValidator& v) const {
  v.require(!train.empty(), "train", train, "a path to the training data");
  v.require(max_length >= 2, "max_length", max_length, "an integer >= 2");
  v.require(chat_template.empty() || !tokenizer.empty(), "tokenizer", tokenizer,
            "a tokenizer when data.chat_template is set");
}

void TrainLoopSection::validate(core::ConfigValidator& v) const {
  v.require(steps >= 1, "steps", steps, "an integer >= 1");
  v.require(batch_size >= 1, "batch_size", batch_size, "an integer >= 1");
  v.require(grad_accum >= 1, "grad_accum", grad_accum, "an integer >= 1");
  v.require(block_size >= 0, "block_size", block_size, "an integer >= 0 (0 = model.block_size)");
  v.require(eval_every >= 1, "eval_every", eval_every, "an integer >= 1");
  v.require(eval_batches >= 0, "eval_batches", eval_batches, "an integer >= 0");
  v.require(log_every >= 1, "log_every", log_every, "an integer >= 1");
}

void TrainEvalSection::validate(core::ConfigValidator& v) const {
  v.require(every >= 0, "every", every, "an integer >= 0 (0 = train.eval_every)");
  v.require(limit >= 0, "limit", limit, "an integer >= 0 (0 = all documents)");
  v.require(batch_size >= 1, "batch_size", batch_size, "an integer >= 1");
  v.require(num_fewshot >= -1, "num_fewshot", num_fewshot, "an integer >= 0, or -1 for each task's own");
}

void RmSection::validate(core::ConfigValidator& v) const { v.require(margin >= 0, "margin", margin, "a number >= 0"); }

void DpoSection::validate(core::ConfigValidator& v) const {
  v.require(beta > 0, "beta", beta, "a number > 0");
  v.require(label_smoothing >= 0 && label_smoothing < 0.5, "label_smoothing", label_smoothing, "a number in [0, 0.5)");
  v.require(loss == rlhf::DpoLoss::kConservative || label_smoothing == 0, "label_smoothing", label_smoothing,
            "0 unless loss is cdpo");
}

void TrainingConfig::validate(core::ConfigValidator& v) const {
  v.nested("run", run);
  v.nested("runtime", runtime);
  v.nested("checkpoint", checkpoint);
  if (init_from.empty()) v.nested("model", model);
  v.nested("optim", optim);
  v.nested("train", train);
  v.nested("data", data);
  v.nested("eval", eval);
  v.nested("lora", lora);
  v.nested("quantization", quantization);
  v.require(!quantization.enabled() || quantization.qat || lora.rank > 0, "quantization.scheme", quantization.scheme,
            "none unless lora.rank > 0 (QLoRA: the quantized weights are frozen) or quantization.qat is true");
  v.require(eval.tasks.empty() || !eval.tokenizer.empty() || !data.tokenizer.empty(), "eval.tokenizer", eval.tokenizer,
            "a tokenizer for the evaluation tasks (or data.tokenizer)");
  v.nested("rm", rm);
  v.nested("dpo", dpo);
  // rm and dpo data may be pre-tokenised (prompt_ids/chosen_ids/rejected_ids lines need no tokenizer); a text
  // line without one is a DataError naming file:line when the data is loaded.
  v.require(kind != TrainKind::kSft || !data.tokenizer.empty(), "data.tokenizer", data.tokenizer,
            "a tokenizer for sft");
  v.require(!data.pack || kind == TrainKind::kSft, "data.pack", data.pack, "false: packing is for sft only");
  const bool preference = kind == TrainKind::kRm || kind == TrainKind::kDpo;
  v.require(data.format == data::PreferenceFormat::kPairs || preference, "data.format", data.format,
            "pairs: rankings are for rm and dpo only");
  v.require(data.format == data::PreferenceFormat::kPairs || !data.tokenizer.empty(), "data.tokenizer", data.tokenizer,
            "a tokenizer for rankings (their prompts and responses are text)");
  v.require(data.format == data::PreferenceFormat::kPairs || rm.margin == 0, "rm.margin", rm.margin,
            "0 with data.format rankings (the ranking loss has no margin)");
  v.require(init_from.empty() ? train.block_size <= model.block_size : true, "train.block_size", train.block_size,
            "at most model.block_size");
}

namespace {

using Clock = std::chrono::steady_clock;
using fs_path = std::filesystem::path;

// The model a run starts from: random (seeded) with `config.model`, or the trunk of init_from with fresh heads.
models::Gpt build_model(const TrainingConfig& c, const models::GptHeads& heads) {
  if (c.init_from.empty()) return models::Gpt(c.model, heads);
  models::Gpt model = models::load_pretrained_gpt(c.init_from, heads);
  spdlog::info("initialised from {} ({} layers, {} heads, width {})", c.init_from, model->config().n_layer,
               model->config().n_head, model->config().n_embd);
  return model;
}

class Trainer {
 public:
  // `session` is null on ranks other than 0; `resume` is the checkpoint every rank restores (or none). `comm`
  // carries control (stop flags, unit counts, the run directory) on CPU tensors; `grads` all-reduces the gradients:
  // NCCL on the model's GPU when the ranks drive GPUs, else `comm` itself.
  Trainer(const TrainingConfig& c, const ObjectiveFactory& factory, core::RunSession* session,
          distributed::Communicator& comm, distributed::Communicator& grads, torch::Device device,
          const std::optional<core::CheckpointState>& resume)
      : c_(c), session_(session), comm_(comm), grads_(grads), device_(device) {
    if (c.train.batch_size % comm.size() != 0) {
      throw ConfigError("train.batch_size = " + std::to_string(c.train.batch_size) + " must be a multiple of the " +
                        std::to_string(comm.size()) + " data-parallel ranks (it is the global micro-batch)");
    }
    // Seeding and every random draw of the set-up (weights, LoRA adapters) come from torch's global generator: one
    // rank at a time in a process (ranks may be threads of one process), so each rank draws exactly what a rank of
    // its own process would.
    static std::mutex setup_mutex;
    std::unique_lock<std::mutex> setup_lock(setup_mutex);
    core::seed_torch(core::derive_seed(static_cast<uint64_t>(c.seed), "torch", 0));
    model_ = build_model(c, factory.heads);
    model_->to(device_);
    if (c.quantization.enabled() && !c.quantization.qat &&
        (!model_->quant_config().enabled() || model_->quant_config().fake)) {  // QLoRA base (DPO ref too)
      const auto layers = models::quantize_gpt(model_, models::GptQuantConfig::from_section(c.quantization));
      spdlog::info("quantized {} layers to {} ({:.1f} MB of weights)", layers.size(),
                   core::enum_name(c.quantization.scheme), models::gpt_weight_bytes(model_) / 1e6);
    }
    // The objective sees the model before freezing and adapters (DPO snapshots it as the reference).
    objective_ = factory.make(c, model_, session_ != nullptr && !session_->resume_state() ? &session_->log() : nullptr);
    if (!c.eval.tasks.empty()) {  // parsed up front: a bad task file fails the run before it trains
      tasks_ = evaluation::load_tasks(c.eval.tasks);
      eval_tokenizer_ = std::make_unique<tokenizers::BpeTokenizer>(
          tokenizers::open_tokenizer(c.eval.tokenizer.empty() ? c.data.tokenizer : c.eval.tokenizer, c.data.encoding));
      const auto eot = data::eos_id_of(*eval_tokenizer_);
      if (!eot) throw ConfigError("eval.tasks: the tokenizer has no <|endoftext|> token");
      eval_eot_ = *eot;
    }
    if (!c.freeze.empty()) models::freeze_parameters(*model_, c.freeze);
    if (c.lora.rank > 0) {
      models::LoraConfig lora;
      lora.rank = c.lora.rank;
      lora.alpha = c.lora.alpha;
      lora.dropout = c.lora.dropout;
      lora.targets = c.lora.targets;
      const bool heads = factory.heads.value || factory.heads.reward;  // a fresh head must learn
      const auto adapted = models::apply_lora(model_, lora, heads);
      spdlog::info("LoRA rank {} on {} layers", lora.rank, adapted.size());
      model_->to(device_);  // the adapters are made on the CPU
    }
    if (c.quantization.enabled() && c.quantization.qat) {
      const auto layers =
          models::enable_fake_quant(model_, c.quantization.scheme, c.quantization.group, c.quantization.targets);
      spdlog::info("quantization-aware training: {} layers fake-quantized to {}", layers.size(),
                   core::enum_name(c.quantization.scheme));
    }
    setup_lock.unlock();
    trainable_ = models::trainable_parameter_count(*model_);
    optimizer_ = models::make_adamw(*model_, c.optim);
    for (const auto& p : model_->parameters()) {
      if (p.requires_grad()) trainable_params_.push_back(p);
    }
    if (resume) restore(*resume);
    model_->train();
  }

  int run() {
    spdlog::info("{}: {:.2f}M parameters ({:.2f}M trainable), {} steps of {} x {} sequences on {} rank(s), {}",
                 core::enum_name(c_.kind), model_->config().parameter_count() / 1e6, trainable_ / 1e6, c_.train.steps,
                 c_.train.batch_size, c_.train.grad_accum, comm_.size(), device_.str());
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
    core::CheckpointState final_state;
    const auto final_metrics = objective_->finish(model_, final_state);
    if (!final_metrics.empty()) session_->log().log_scalars(step_, final_metrics);
    if (last_checkpoint_ != step_ || !final_state.extra.empty()) checkpoint(std::move(final_state));
    if (objective_->export_hf()) {
      const fs_path hf = session_->directory().path() / "hf";
      models::save_hf_model(hf, model_);  // GPT-2, or the Llama-family class the config maps to
      session_->log().log_event(step_, "export",
                                std::string("Hugging Face ") + (model_->config().llama() ? "Llama-family" : "GPT-2") +
                                    " directory " + hf.string());
    }
    std::string message = "finished " + std::to_string(step_) + " steps";
    if (last_eval_) message += "; eval loss " + std::to_string(*last_eval_);
    session_->finish(core::RunStatus::Finished, step_, message);
    return 0;
  }

 private:
  void train_step() {
    const auto start = Clock::now();
    const double lr = models::lr_at(c_.optim, step_, c_.train.steps);
    models::set_lr(*optimizer_, lr);
    std::vector<std::unique_ptr<MicroBatch>> micros;
    int64_t local_units = 0;
    for (int64_t i = 0; i < c_.train.grad_accum; ++i) {
      micros.push_back(objective_->next(comm_.rank(), comm_.size()));
      local_units += micros.back()->units;
    }
    torch::Tensor unit_count = torch::tensor({local_units}, torch::kLong);
    comm_.allreduce_sum(unit_count);
    const int64_t units = unit_count.item<int64_t>();
    const double denominator = static_cast<double>(std::max<int64_t>(units, 1));
    optimizer_->zero_grad();
    std::map<std::string, double> sums = {{"train/loss", 0.0}};
    for (const auto& m : micros) {
      LossSums out;
      {
        models::Bf16Autocast autocast(c_.train.dtype == TrainDtype::kBf16);
        out = objective_->loss_sums(model_, *m);
      }
      // Mean over the whole accumulated global batch, not a mean of per-micro-batch means.
      const torch::Tensor loss = out.loss / denominator;
      loss.backward();
      sums["train/loss"] += loss.item<double>();
      for (const auto& [k, v] : out.metrics) sums[k] += v / denominator;
    }
    if (comm_.size() > 1) allreduce_gradients(sums);
    objective_->finish_step_metrics(sums, units);
    const double clip = c_.optim.grad_clip > 0 ? c_.optim.grad_clip : std::numeric_limits<double>::infinity();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(trainable_params_, clip);
    optimizer_->step();
    ++step_;
    units_seen_ += units;
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    const std::string unit = objective_->unit_name();
    std::map<std::string, double> m = sums;
    m["train/lr"] = lr;
    m["train/grad_norm"] = grad_norm;
    m["train/" + unit] = static_cast<double>(units_seen_);
    m["train/" + unit + "_per_s"] = static_cast<double>(units) / std::max(secs, 1e-9);
    if (session_ != nullptr && (step_ % c_.train.eval_every == 0 || step_ == c_.train.steps)) {
      const auto e = evaluate();
      if (const auto it = e.find("eval/loss"); it != e.end()) last_eval_ = it->second;
      m.insert(e.begin(), e.end());
    }
    const int64_t task_every = c_.eval.every > 0 ? c_.eval.every : c_.train.eval_every;
    if (session_ != nullptr && !tasks_.empty() && (step_ % task_every == 0 || step_ == c_.train.steps)) {
      const auto e = run_tasks();
      m.insert(e.begin(), e.end());
    }
    if (session_ != nullptr) session_->log().log_scalars(step_, m);
    last_loss_ = m["train/loss"];
    last_rate_ = m["train/" + unit + "_per_s"];
  }

  // Sums every trainable gradient and the logged sums over the ranks in one flat buffer (one collective).
  void allreduce_gradients(std::map<std::string, double>& sums) {
    std::vector<double> values;
    for (const auto& [k, v] : sums) values.push_back(v);
    distributed::allreduce_gradients(grads_, trainable_params_, &values);
    size_t i = 0;
    for (auto& [k, v] : sums) v = values[i++];
  }

  std::map<std::string, double> evaluate() {
    torch::NoGradGuard no_grad;
    model_->eval();
    std::map<std::string, double> e;
    {
      models::Bf16Autocast autocast(c_.train.dtype == TrainDtype::kBf16);
      e = objective_->evaluate(model_);
    }
    model_->train();
    return e;
  }

  // The harness's tasks on this model (rank 0), as eval/<task>/<metric>.
  std::map<std::string, double> run_tasks() {
    evaluation::HarnessOptions o;
    o.limit = c_.eval.limit;
    o.batch_size = c_.eval.batch_size;
    o.num_fewshot = c_.eval.num_fewshot;
    std::map<std::string, double> out;
    const auto start = Clock::now();
    for (const auto& task : tasks_) {
      const evaluation::TaskResult r = evaluation::run_task({model_, *eval_tokenizer_, eval_eot_}, task, o);
      for (const auto& mv : r.metrics) out["eval/" + r.task + "/" + mv.name] = mv.value;
    }
    model_->train();
    spdlog::info("step {}: {} evaluation task(s) in {:.1f}s", step_, tasks_.size(),
                 std::chrono::duration<double>(Clock::now() - start).count());
    return out;
  }

  void progress(Clock::time_point t0, int64_t first) {
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    const double rate = secs > 0 ? static_cast<double>(step_ - first) / secs : 0.0;
    const double eta = rate > 0 ? static_cast<double>(c_.train.steps - step_) / rate : 0.0;
    std::string eval;
    if (last_eval_) eval = fmt::format(" | eval loss {:.4f}", *last_eval_);
    if (last_eval_ && (c_.kind == TrainKind::kPretrain || c_.kind == TrainKind::kSft))
      eval += fmt::format(" ppl {:.2f}", std::exp(*last_eval_));
    spdlog::info("step {:>6}/{} loss {:.4f} lr {:.2e} | {:.0f} {}/s, ETA {:.0f}s{}", step_, c_.train.steps, last_loss_,
                 models::lr_at(c_.optim, step_ - 1, c_.train.steps), last_rate_, objective_->unit_name(), eta, eval);
  }

  void checkpoint(core::CheckpointState s = {}) {
    s.step = step_;
    models::add_gpt_to_checkpoint(s, "model", model_);
    s.add_optimizer("optimizer", *optimizer_);
    s.capture_torch_rng();
    s.extra["step"] = step_;
    s.extra["units_seen"] = units_seen_;
    s.extra["data_state"] = objective_->data_state();
    session_->save_checkpoint(s);
    last_checkpoint_ = step_;
  }

  void restore(const core::CheckpointState& s) {
    s.load_module("model", *model_);
    models::refresh_quantized(model_);
    s.load_optimizer("optimizer", *optimizer_);
    s.restore_torch_rng();
    step_ = s.get<int64_t>("step");
    units_seen_ = s.get<int64_t>("units_seen");
    objective_->restore_data(s.get<std::vector<int64_t>>("data_state"));
    last_checkpoint_ = step_;
    spdlog::info("resumed at step {} ({} {} seen)", step_, units_seen_, objective_->unit_name());
  }

  int stop(int sig) {
    if (session_ == nullptr) return 128 + sig;
    if (c_.checkpoint.on_signal && last_checkpoint_ != step_) checkpoint();
    session_->finish(core::RunStatus::Interrupted, step_,
                     "stopped by signal " + std::to_string(sig) + " at step " + std::to_string(step_));
    return 128 + sig;
  }

  const TrainingConfig& c_;
  core::RunSession* session_;
  distributed::Communicator& comm_;
  distributed::Communicator& grads_;
  torch::Device device_;
  models::Gpt model_{nullptr};
  std::unique_ptr<Objective> objective_;
  std::vector<evaluation::TaskSpec> tasks_;  // eval.tasks
  std::unique_ptr<tokenizers::BpeTokenizer> eval_tokenizer_;
  int64_t eval_eot_ = -1;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<torch::Tensor> trainable_params_;
  int64_t trainable_ = 0;
  int64_t step_ = 0;
  int64_t units_seen_ = 0;
  int64_t last_checkpoint_ = -1;
  double last_loss_ = 0;
  double last_rate_ = 0;
  std::optional<double> last_eval_;
};

// Rank 0 tells the other ranks where the run directory is and which checkpoint step (or -1) to resume from.
void announce_resume(distributed::Communicator& comm, const fs_path& dir, int64_t step) {
  if (comm.size() == 1) return;
  const std::string path = dir.string();
  torch::Tensor header = torch::tensor({static_cast<int64_t>(path.size()), step}, torch::kLong);
  comm.broadcast(header, 0);
  torch::Tensor bytes =
      torch::from_blob(const_cast<char*>(path.data()), {static_cast<int64_t>(path.size())}, torch::kUInt8).clone();
  comm.broadcast(bytes, 0);
}

int run_training_worker(const TrainingConfig& config, const ObjectiveFactory& factory, distributed::Communicator& comm,
                        distributed::Communicator& grads, torch::Device device) {
  spdlog::set_level(spdlog::level::warn);  // rank 0 reports progress
  core::set_threads(config.runtime.threads);
  torch::Tensor header = torch::zeros({2}, torch::kLong);
  comm.broadcast(header, 0);
  torch::Tensor bytes = torch::zeros({header[0].item<int64_t>()}, torch::kUInt8);
  comm.broadcast(bytes, 0);
  const fs_path dir(std::string(static_cast<const char*>(bytes.data_ptr()), static_cast<size_t>(bytes.numel())));
  std::optional<core::CheckpointState> resume;
  if (const int64_t step = header[1].item<int64_t>(); step >= 0) {
    core::CheckpointOptions options;
    options.root = dir / "checkpoints";
    core::CheckpointManager manager(options);
    resume = manager.load(manager.step_dir(step));
  }
  Trainer trainer(config, factory, nullptr, comm, grads, device, resume);
  return trainer.run();
}

// Rank 0 opens the run session and announces it; the other ranks follow.
int run_on_group(const TrainingConfig& config, const std::string& resolved_yaml, const std::string& command_line,
                 const ObjectiveFactory& factory, distributed::Communicator& comm, distributed::Communicator& grads,
                 const torch::Device& device) {
  if (comm.rank() != 0) return run_training_worker(config, factory, comm, grads, device);
  core::RunSessionOptions options = session_options(config, resolved_yaml, command_line);
  options.world_size = comm.size();
  core::RunSession session(options);
  try {
    announce_resume(comm, session.directory().path(), session.resume_state() ? session.resume_state()->step : -1);
    Trainer trainer(config, factory, &session, comm, grads, device, session.resume_state());
    return trainer.run();
  } catch (const std::exception& e) {
    session.finish(core::RunStatus::Failed, -1, e.what());
    throw;
  }
}

}  // namespace

int run_training(const TrainingConfig& config, const std::string& resolved_yaml, const std::string& command_line,
                 const ObjectiveFactory& factory) {
  std::unique_ptr<distributed::Communicator> comm;
  if (distributed::launched_by_mpi()) {
    comm = distributed::MpiCommunicator::world();
  } else {
    comm = std::make_unique<distributed::SingleProcessCommunicator>();
  }
  // Each rank drives the GPU of its local rank (or the CPU); GPU ranks all-reduce gradients over NCCL.
  const torch::Device device = core::resolve_device(config.runtime.device, core::local_rank());
  std::unique_ptr<distributed::Communicator> nccl;
  if (device.is_cuda() && comm->size() > 1 && distributed::nccl_compiled_in())
    nccl = distributed::NcclCommunicator::create(*comm, device.index());
  distributed::Communicator& grads = nccl ? *nccl : *comm;
  return run_on_group(config, resolved_yaml, command_line, factory, *comm, grads, device);
}

int run_training(const TrainingConfig& config, const std::string& resolved_yaml, const std::string& command_line,
                 const ObjectiveFactory& factory, distributed::Communicator& comm, const torch::Device& device) {
  return run_on_group(config, resolved_yaml, command_line, factory, comm, comm, device);
}

}  // namespace troupe::experiments
