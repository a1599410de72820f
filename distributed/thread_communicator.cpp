// Implementation of distributed/thread_communicator.h.
#include "distributed/thread_communicator.h"

#include <torch/torch.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

#include "core/errors.h"

namespace troupe::distributed {

namespace {

using Clock = std::chrono::steady_clock;

// The meeting point of one group: each collective is a round in which every rank posts a copy of its input, then
// each reads all of them and leaves; the next round starts when the last rank has left.
struct Group {
  explicit Group(int n, std::chrono::milliseconds t)
      : size(n), timeout(t), posted(static_cast<size_t>(n)), names(static_cast<size_t>(n)) {}
  const int size;
  const std::chrono::milliseconds timeout;
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<at::Tensor> posted;
  std::vector<std::string> names;
  int arrived = 0, left = 0;
  bool draining = false;  // everyone arrived; ranks are reading
  int64_t round = 0;
  std::string broken;  // why the group cannot be used any more

  // Every rank's input of this round (copies, so in-place results do not race with readers).
  std::vector<at::Tensor> exchange(int rank, const at::Tensor& input, const std::string& what) {
    std::unique_lock<std::mutex> lock(mutex);
    const auto deadline = Clock::now() + timeout;
    auto wait = [&](auto ready, const char* waiting_for) {
      if (!cv.wait_until(lock, deadline, [&] { return !broken.empty() || ready(); })) {
        broken = "rank " + std::to_string(rank) + ": " + what + " timed out after " + std::to_string(timeout.count()) +
                 " ms waiting for " + waiting_for;
        cv.notify_all();
        throw TimeoutError("thread communicator " + broken);
      }
      if (!broken.empty()) throw Error("thread communicator: group broken (" + broken + ")");
    };
    wait([&] { return !draining; }, "the previous collective to finish");
    posted[static_cast<size_t>(rank)] = input.defined() ? input.clone() : at::Tensor();
    names[static_cast<size_t>(rank)] = what;
    const int64_t mine = round;
    if (++arrived == size) {
      draining = true;
      ++round;
      cv.notify_all();
    } else {
      wait([&] { return round != mine; }, "the other ranks to join");
    }
    for (int r = 0; r < size; ++r) {
      if (names[static_cast<size_t>(r)] != what) {
        broken = "rank " + std::to_string(r) + " called " + names[static_cast<size_t>(r)] + " while rank " +
                 std::to_string(rank) + " called " + what;
        cv.notify_all();
        throw ProtocolError("thread communicator: " + broken);
      }
    }
    std::vector<at::Tensor> all = posted;
    if (++left == size) {
      arrived = left = 0;
      draining = false;
      cv.notify_all();
    }
    return all;
  }
};

class ThreadCommunicator final : public distributed::Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<Group> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size; }
  bool accepts(const c10::Device&) const override { return true; }

  void allreduce_sum(at::Tensor& tensor) override {
    const auto all = group_->exchange(rank_, tensor, "allreduce_sum");
    at::Tensor sum = all[0].to(tensor.device());
    for (size_t r = 1; r < all.size(); ++r) sum = sum + all[r].to(tensor.device());  // rank order, as a ring would
    tensor.copy_(sum);
  }
  void broadcast(at::Tensor& tensor, int root) override {
    if (root < 0 || root >= size()) throw ConfigError("broadcast: root " + std::to_string(root) + " out of range");
    const auto all = group_->exchange(rank_, tensor, "broadcast(" + std::to_string(root) + ")");
    if (!all[static_cast<size_t>(root)].sizes().equals(tensor.sizes()))
      throw ConfigError("broadcast: rank " + std::to_string(rank_) + " has a tensor of another shape than the root");
    tensor.copy_(all[static_cast<size_t>(root)]);
  }
  void all_gather(const at::Tensor& input, at::Tensor& output) override {
    distributed::check_gather_shapes("thread all_gather", input, output, size());
    const auto all = group_->exchange(rank_, input, "all_gather");
    const int64_t n = input.numel();
    for (int r = 0; r < size(); ++r)
      output.view({-1}).narrow(0, r * n, n).copy_(all[static_cast<size_t>(r)].reshape({-1}));
  }
  void reduce_scatter_sum(const at::Tensor& input, at::Tensor& output) override {
    distributed::check_gather_shapes("thread reduce_scatter_sum", output, input, size());
    at::Tensor whole = input.clone();
    allreduce_sum(whole);
    const int64_t n = output.numel();
    output.copy_(whole.reshape({-1}).narrow(0, rank_ * n, n).view_as(output));
  }
  bool any(bool flag) override {
    at::Tensor t = torch::full({1}, flag ? 1 : 0, torch::kInt32);
    allreduce_sum(t);
    return t.item<int>() != 0;
  }
  void barrier() override { group_->exchange(rank_, at::Tensor(), "barrier"); }

 private:
  std::shared_ptr<Group> group_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<distributed::Communicator>> make_thread_group(int size, std::chrono::milliseconds timeout) {
  if (size < 1) throw ConfigError("thread group: size must be >= 1, got " + std::to_string(size));
  auto group = std::make_shared<Group>(size, timeout);
  std::vector<std::unique_ptr<distributed::Communicator>> out;
  for (int r = 0; r < size; ++r) out.push_back(std::make_unique<ThreadCommunicator>(group, r));
  return out;
}

std::unique_ptr<distributed::Communicator> join_thread_group(const std::string& name, int rank, int size,
                                                             std::chrono::milliseconds timeout) {
  static std::mutex mutex;
  static std::map<std::string, std::vector<std::unique_ptr<distributed::Communicator>>> pending;
  std::lock_guard<std::mutex> lock(mutex);
  if (rank < 0 || rank >= size)
    throw ConfigError("thread group '" + name + "': rank " + std::to_string(rank) + " outside [0, " +
                      std::to_string(size) + ")");
  auto it = pending.find(name);
  if (it == pending.end()) it = pending.emplace(name, make_thread_group(size, timeout)).first;
  auto& ranks = it->second;
  if (static_cast<int>(ranks.size()) != size)
    throw ConfigError("thread group '" + name + "' has " + std::to_string(ranks.size()) + " ranks, not " +
                      std::to_string(size));
  auto& slot = ranks[static_cast<size_t>(rank)];
  if (!slot) throw ConfigError("thread group '" + name + "': rank " + std::to_string(rank) + " joined twice");
  std::unique_ptr<distributed::Communicator> mine = std::move(slot);
  bool all_taken = true;
  for (const auto& r : ranks) all_taken = all_taken && !r;
  if (all_taken) pending.erase(it);
  return mine;
}

}  // namespace troupe::distributed
