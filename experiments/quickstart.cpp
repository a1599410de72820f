// Implementation of the quickstart regression experiment (experiments/quickstart.h).
#include "experiments/quickstart.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <random>

#include "core/checkpoint.h"
#include "core/errors.h"
#include "core/run_session.h"
#include "core/seeding.h"
#include "core/signals.h"
#include "distributed/library_versions.h"

namespace troupe::experiments {
namespace {

struct Dataset {
  torch::Tensor x;  // (N, F) float32
  torch::Tensor y;  // (N, 1) float32
};

// Draws n examples of the task. The hidden weights depend only on the seed, so train and
// eval sets share one target function.
Dataset make_dataset(const QuickstartTask& t, uint64_t seed, int64_t n, std::string_view role) {
  auto task_gen = at::detail::createCPUGenerator(core::derive_seed(seed, "task", 0));
  auto w = torch::randn({t.features, 2}, task_gen) / std::sqrt(static_cast<double>(t.features));  // (F, 2)
  auto gen = at::detail::createCPUGenerator(core::derive_seed(seed, role, 0));
  auto x = torch::randn({n, t.features}, gen);  // (N, F)
  auto proj = torch::matmul(x, w) * 2.0;        // (N, 2)
  auto clean = torch::sin(proj.select(1, 0)) + 0.5 * proj.select(1, 1);
  auto y = clean + t.noise * torch::randn({n}, gen);
  return {x, y.unsqueeze(1)};
}

torch::nn::Sequential make_model(const QuickstartTask& t) {
  return torch::nn::Sequential(torch::nn::Linear(t.features, t.hidden), torch::nn::GELU(),
                               torch::nn::Dropout(t.dropout), torch::nn::Linear(t.hidden, t.hidden), torch::nn::GELU(),
                               torch::nn::Dropout(t.dropout), torch::nn::Linear(t.hidden, 1));
}

// Linear warmup to lr over warmup_steps, then cosine decay to 10% of lr at the last step.
double lr_at(const QuickstartTask& t, int64_t step) {
  if (step < t.warmup_steps) return t.lr * static_cast<double>(step + 1) / static_cast<double>(t.warmup_steps);
  const double span = std::max<int64_t>(1, t.steps - t.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - t.warmup_steps) / span);
  return t.lr * (0.1 + 0.9 * 0.5 * (1.0 + std::cos(M_PI * progress)));
}

// Epoch-wise shuffling with a cursor that a checkpoint can hold exactly.
class Shuffler {
 public:
  Shuffler(int64_t n, uint64_t seed) : n_(n), rng_(seed) { reshuffle(); }

  std::vector<int64_t> next(int64_t batch) {
    if (position_ + batch > n_) {
      ++epoch_;
      reshuffle();
    }
    std::vector<int64_t> idx(permutation_.begin() + position_, permutation_.begin() + position_ + batch);
    position_ += batch;
    return idx;
  }
  int64_t epoch() const { return epoch_; }

  void save(core::CheckpointState& s) const {
    s.add_rng("shuffle", rng_);
    s.extra["data.epoch"] = epoch_;
    s.extra["data.position"] = position_;
    s.extra["data.permutation"] = permutation_;
  }
  void load(const core::CheckpointState& s) {
    s.load_rng("shuffle", rng_);
    epoch_ = s.get<int64_t>("data.epoch");
    position_ = s.get<int64_t>("data.position");
    permutation_ = s.get<std::vector<int64_t>>("data.permutation");
    if (static_cast<int64_t>(permutation_.size()) != n_)
      throw DataError("checkpoint data.permutation has " + std::to_string(permutation_.size()) +
                      " entries but task.train_samples is " + std::to_string(n_));
  }

 private:
  void reshuffle() {
    permutation_.resize(n_);
    std::iota(permutation_.begin(), permutation_.end(), 0);
    std::shuffle(permutation_.begin(), permutation_.end(), rng_);
    position_ = 0;
  }
  int64_t n_;
  std::mt19937_64 rng_;
  std::vector<int64_t> permutation_;
  int64_t position_ = 0;
  int64_t epoch_ = 0;
};

struct EvalResult {
  double mse = 0;
  double r2 = 0;
};

EvalResult evaluate(torch::nn::Sequential& model, const Dataset& data) {
  torch::NoGradGuard no_grad;
  model->eval();
  auto pred = model->forward(data.x);
  model->train();
  const double mse = torch::mse_loss(pred, data.y).item<double>();
  const double var = data.y.var(/*unbiased=*/false).item<double>();
  return {mse, 1.0 - mse / var};
}

class QuickstartRun {
 public:
  QuickstartRun(const QuickstartConfig& c, core::RunSession& session)
      : c_(c),
        session_(session),
        model_(seeded_model(c)),
        shuffler_(c.task.train_samples, core::derive_seed(c.seed, "shuffle", 0)) {
    train_ = make_dataset(c.task, c.seed, c.task.train_samples, "train");
    eval_ = make_dataset(c.task, c.seed, c.task.eval_samples, "eval");
    optimizer_ = std::make_unique<torch::optim::AdamW>(
        model_->parameters(), torch::optim::AdamWOptions(c.task.lr).weight_decay(c.task.weight_decay));
    if (const auto& state = session.resume_state()) restore(*state);
  }

  // Seeds the torch RNG, then builds the model: the same parameters for every run of a seed.
  static torch::nn::Sequential seeded_model(const QuickstartConfig& c) {
    core::seed_torch(core::derive_seed(c.seed, "torch", 0));
    return make_model(c.task);
  }

  int run() {
    auto t0 = std::chrono::steady_clock::now();
    while (step_ < c_.task.steps) {
      if (core::stop_requested()) return stop(core::stop_signal());
      train_step();
      if (session_.checkpoint_due(step_)) checkpoint();
      if (step_ % c_.task.log_every == 0 || step_ == c_.task.steps) progress(t0);
    }
    if (last_checkpoint_ != step_) checkpoint();
    const auto final_eval = evaluate(model_, eval_);
    session_.finish(core::RunStatus::Finished, step_,
                    "finished " + std::to_string(step_) + " steps; eval mse " + std::to_string(final_eval.mse));
    return 0;
  }

 private:
  void train_step() {
    const double lr = lr_at(c_.task, step_);
    for (auto& group : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    auto idx = torch::tensor(shuffler_.next(c_.task.batch_size), torch::kLong);  // (B,)
    auto pred = model_->forward(train_.x.index_select(0, idx));                  // (B, 1)
    auto loss = torch::mse_loss(pred, train_.y.index_select(0, idx));
    optimizer_->zero_grad();
    loss.backward();
    const double grad_norm = torch::nn::utils::clip_grad_norm_(model_->parameters(), 1.0);
    optimizer_->step();
    ++step_;
    std::map<std::string, double> m = {{"train/loss", loss.item<double>()},
                                       {"train/lr", lr},
                                       {"train/grad_norm", grad_norm},
                                       {"train/epoch", static_cast<double>(shuffler_.epoch())}};
    if (step_ % c_.task.eval_every == 0 || step_ == c_.task.steps) {
      auto e = evaluate(model_, eval_);
      m["eval/mse"] = e.mse;
      m["eval/r2"] = e.r2;
    }
    session_.log().log_scalars(step_, m);
    last_loss_ = m["train/loss"];
    if (step_ % c_.task.sample_every == 0) log_samples();
  }

  void log_samples() {
    torch::NoGradGuard no_grad;
    model_->eval();
    auto pred = model_->forward(eval_.x.slice(0, 0, 4));  // (4, 1)
    model_->train();
    for (int64_t i = 0; i < 4; ++i) {
      session_.log().log_table_row("samples", step_,
                                   {{"example", std::to_string(i)},
                                    {"target", std::to_string(eval_.y[i][0].item<double>())},
                                    {"prediction", std::to_string(pred[i][0].item<double>())}});
    }
  }

  void progress(std::chrono::steady_clock::time_point t0) {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = secs > 0 ? static_cast<double>(step_ - first_step_) / secs : 0.0;
    const double eta = rate > 0 ? static_cast<double>(c_.task.steps - step_) / rate : 0.0;
    spdlog::info("step {:>5}/{} loss {:.4f} lr {:.2e} | {:.0f} steps/s, ETA {:.1f}s", step_, c_.task.steps, last_loss_,
                 lr_at(c_.task, step_ - 1), rate, eta);
  }

  void checkpoint() {
    core::CheckpointState s;
    s.step = step_;
    s.add_module("model", *model_);
    s.add_optimizer("optimizer", *optimizer_);
    s.capture_torch_rng();
    shuffler_.save(s);
    s.extra["step"] = step_;
    session_.save_checkpoint(s);
    last_checkpoint_ = step_;
  }

  void restore(const core::CheckpointState& s) {
    s.load_module("model", *model_);
    s.load_optimizer("optimizer", *optimizer_);
    s.restore_torch_rng();
    shuffler_.load(s);
    step_ = s.get<int64_t>("step");
    first_step_ = last_checkpoint_ = step_;
  }

  int stop(int sig) {
    if (c_.checkpoint.on_signal && last_checkpoint_ != step_) checkpoint();
    session_.finish(core::RunStatus::Interrupted, step_,
                    "stopped by signal " + std::to_string(sig) + " at step " + std::to_string(step_));
    return 128 + sig;
  }

  const QuickstartConfig& c_;
  core::RunSession& session_;
  torch::nn::Sequential model_;
  Shuffler shuffler_;
  Dataset train_, eval_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  int64_t step_ = 0;
  int64_t first_step_ = 0;
  int64_t last_checkpoint_ = -1;
  double last_loss_ = 0;
};

}  // namespace

void QuickstartTask::validate(core::ConfigValidator& v) const {
  v.require(features >= 1, "features", features, "an integer >= 1");
  v.require(hidden >= 1, "hidden", hidden, "an integer >= 1");
  v.require(dropout >= 0 && dropout < 1, "dropout", dropout, "a number in [0, 1)");
  v.require(train_samples >= 1, "train_samples", train_samples, "an integer >= 1");
  v.require(eval_samples >= 2, "eval_samples", eval_samples, "an integer >= 2");
  v.require(noise >= 0, "noise", noise, "a number >= 0");
  v.require(batch_size >= 1 && batch_size <= train_samples, "batch_size", batch_size,
            "an integer in [1, task.train_samples]");
  v.require(steps >= 1, "steps", steps, "an integer >= 1");
  v.require(lr > 0, "lr", lr, "a number > 0");
  v.require(weight_decay >= 0, "weight_decay", weight_decay, "a number >= 0");
  v.require(warmup_steps >= 1, "warmup_steps", warmup_steps, "an integer >= 1");
  v.require(eval_every >= 1, "eval_every", eval_every, "an integer >= 1");
  v.require(log_every >= 1, "log_every", log_every, "an integer >= 1");
  v.require(sample_every >= 1, "sample_every", sample_every, "an integer >= 1");
}

int run_quickstart(const QuickstartConfig& config, const std::string& resolved_yaml, const std::string& command_line) {
  core::RunSessionOptions options = session_options(config, resolved_yaml, command_line);
  core::RunSession session(options);
  try {
    QuickstartRun run(config, session);
    return run.run();
  } catch (const std::exception& e) {
    session.finish(core::RunStatus::Failed, -1, e.what());
    throw;
  }
}

ExperimentKind quickstart_kind() {
  return make_kind<QuickstartConfig>("quickstart", "MLP regression through the full run spine (no LM)", run_quickstart);
}

}  // namespace troupe::experiments
