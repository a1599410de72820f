// The benchmarks, a library the CLI registers: `troupe bench matmul|decode|train|transport|allreduce` and
// `troupe tokenizer bench`. Each prints its own figures next to a peer measured in the same run (Python torch,
// torch.compile, raw ZeroMQ, torch.distributed, tiktoken...) with the ratio, medians and thread counts.
#pragma once

#include <CLI/CLI.hpp>

namespace troupe::bench {

// `bench` with its subcommands matmul (matmul.cpp), decode, train, transport and allreduce.
void add_bench_command(CLI::App& app, int& exit_code);
void add_bench_decode_command(CLI::App& bench, int& exit_code);
void add_bench_train_command(CLI::App& bench, int& exit_code);
void add_bench_transport_command(CLI::App& bench, int& exit_code);
void add_bench_allreduce_command(CLI::App& bench, int& exit_code);
void add_bench_metrics_command(CLI::App& bench, int& exit_code);   // metrics.cpp
void add_bench_quantize_command(CLI::App& bench, int& exit_code);  // quantize.cpp
void add_bench_rollout_command(CLI::App& bench, int& exit_code);   // rollout.cpp
// `tokenizer bench`, registered on the `tokenizer` subcommand (tokenizer.cpp).
void add_tokenizer_bench_command(CLI::App& tokenizer, int& exit_code);

}  // namespace troupe::bench
