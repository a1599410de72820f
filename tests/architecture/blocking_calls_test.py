"""Every blocking call has a deadline (issue 18): lists the blocking primitives in the library and tool sources and
fails for any that is not in ALLOWED below, naming the file, line and function and what a new call needs.

A blocking primitive is a call that can wait for another thread, process or peer without limit: a ZeroMQ receive
or poll, a blocking MPI call or collective, NCCL's and CUDA's waits, a condition variable's or future's wait, a
thread join, waitpid, popen/pclose/system, read() and friends on pipes and sockets, a blocking file lock, and the
sleeps of polling loops. Each one that stays must be provably bounded (a finite timeout from a deadline, a thread
whose loop checks a stop flag, a child that was sent SIGKILL, ...) and is listed in ALLOWED as
(file, function, kind) with a one-line reason; entries are keyed by function, not line, so they survive edits, and
an entry that no longer matches anything fails too (so the list stays true). Not scanned: tests/ and fuzz/.

Heuristic, not a C++ parser: comments and string literals are blanked first, and the enclosing function is found
from the braces (a lambda counts as the function it is written in; an inline member is Class::name).
"""
import os
import re
import sys

SOURCE = os.environ.get("TROUPE_SOURCE_DIR") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ["core", "models", "distributed", "rlhf", "experiments", "cluster", "cli", "tokenizers", "data", "dataprep",
           "evaluation", "metrics", "bench", "dashboard"]

# kind -> (call pattern, pattern on the rest of the statement that makes the call non-blocking (or None),
#          what a new call needs)
PATTERNS = {
    "zmq receive": (r"\bzmq_(?:msg_)?recv\s*\(|\.recv(?:_multipart)?\s*\(", r"ZMQ_DONTWAIT|zmq::recv_flags::dontwait",
                    "poll the socket first with a finite timeout from a deadline (zmq_poll), or pass ZMQ_DONTWAIT"),
    "zmq send": (r"\bzmq_(?:msg_)?send(?:_const)?\s*\(|\.send\s*\(\s*\w+\s*,\s*zmq::", r"ZMQ_DONTWAIT",
                 "set ZMQ_SNDTIMEO on the socket (a send blocks while the peer's queue is full), or pass ZMQ_DONTWAIT"),
    "zmq poll": (r"\bzmq_poll\s*\(|\bzmq::poll\s*\(", None,
                 "pass a finite timeout computed from a deadline (-1 waits for ever)"),
    "mpi blocking call": (r"\bMPI_(?:Recv|Send|Ssend|Rsend|Bsend|Sendrecv|Probe|Mprobe|Mrecv|Wait|Waitall|Waitany|"
                          r"Waitsome|Barrier|Bcast|Reduce|Allreduce|Allgather|Allgatherv|Gather|Gatherv|Scatter|"
                          r"Scatterv|Alltoall|Alltoallv|Reduce_scatter|Reduce_scatter_block|Scan|Exscan|Comm_dup|"
                          r"Comm_split|Comm_create|Finalize)\s*\(", None,
                          "use the non-blocking form (MPI_I...) and MPI_Test it against a deadline "
                          "(MpiCommunicator::wait)"),
    "nccl/cuda wait": (r"\bnccl(?:GroupEnd|CommInitRank\w*|AllReduce|Broadcast|AllGather|ReduceScatter|Reduce|Send|"
                       r"Recv|CommFinalize)\s*\(|\bcuda(?:Stream|Device|Event)Synchronize\s*\(|"
                       r"\bcuda::synchronize\s*\(|\.synchronize\s*\(", None,
                       "a non-blocking NCCL communicator (config.blocking = 0) polled against a deadline, and CUDA "
                       "completion through cudaEventQuery against a deadline (NcclCommunicator's settle and run)"),
    "condition/future wait": (r"(?:\.|->)wait\s*\(", None,
                              "wait_for / wait_until with a deadline, throwing TimeoutError when it passes"),
    "future get": (None, None, "wait_for on the future with a deadline before get()"),  # found by future_gets()
    "thread join": (r"\.join\s*\(\s*\)", None,
                    "join only a thread whose loop checks a stop flag set before the join, or that runs bounded work"),
    "waitpid": (r"\bwaitpid\s*\(|\bwait[34]\s*\(|\bwaitid\s*\(|(?<![\w.>:])(?:::)?wait\s*\(\s*(?:&|nullptr|NULL\b)",
                r"WNOHANG", "pass WNOHANG and poll against a deadline (core::Subprocess::wait_for)"),
    "child process": (r"(?<![\w.>:])(?:::)?(?:popen|pclose|system)\s*\(", None,
                      "core::run_captured(options, timeout) or core::Subprocess::wait_for: a child that hangs "
                      "must not hang us"),
    "fd read": (r"(?<![\w.>:])(?:::)?(?:read|recv|recvfrom|recvmsg|accept|accept4|connect)\s*\(|"
                r"(?<![\w.>:])(?:::)?(?:select|ppoll|epoll_wait)\s*\(|(?<![\w>:])::poll\s*\(|\bstd::fread\s*\(|\bfread\s*\(|"
                r"\bfgets\s*\(|getline\s*\(\s*std::cin", None,
                "on a pipe, socket or terminal this waits for the peer: poll() the descriptor with a timeout first "
                "or make it O_NONBLOCK (regular files are fine: say so in ALLOWED)"),
    "file lock": (r"\bflock\s*\(|\blockf\s*\(|\bF_SETLKW\b|\bF_OFD_SETLKW\b", r"LOCK_NB|LOCK_UN|F_ULOCK|F_TLOCK",
                  "LOCK_NB (or F_SETLK) and retry against a deadline"),
    "semaphore/latch": (r"\.acquire\s*\(\s*\)|\barrive_and_wait\s*\(", None,
                        "try_acquire_for / try_acquire_until with a deadline"),
    "sleep": (r"\bsleep_for\s*\(|\bsleep_until\s*\(|\busleep\s*\(|\bnanosleep\s*\(|(?<![\w.>:])(?:::)?sleep\s*\(", None,
              "a sleep belongs in a loop that checks a deadline or a stop flag; prefer a condition with wait_until"),
    "polling loop": (r"\bwhile\s*\(\s*!\s*\(?\s*(?:\w+\s*=\s*)?[\w.>-]*wait_for\s*\(", None,
                     "a loop around a bounded wait waits for ever unless it checks a deadline or a stop flag"),
}

# (file, function, kind) -> why it is bounded. One line each.
ALLOWED = {
    # Fault tolerance (issue 18): heartbeats, recovery, the supervisor
    ("distributed/heartbeat.cpp", "HeartbeatWriter::~HeartbeatWriter", "thread join"):
        "the loop waits on a condition with a one-period timeout and sees stop_ (set and notified just before)",
    ("distributed/heartbeat.cpp", "HeartbeatWriter::loop", "polling loop"):
        "wait_for(period) with the stop_ predicate: ends within one period of the destructor",
    ("distributed/transport.cpp", "Server::receive", "sleep"):
        "a dropped socket (fault injection) sleeps until the caller's deadline, as a silent peer would keep it",
    ("distributed/transport.cpp", "Client::try_receive", "sleep"):
        "a dropped socket (fault injection) sleeps until the caller's deadline, as a silent peer would keep it",
    ("distributed/transport.cpp", "Server::wait_for_request", "zmq poll"):
        "timeout = what is left of the caller's deadline, clamped at 0 (the CURVE monitor is polled alongside)",
    ("experiments/ppo_experiment.cpp", "WorkerRoles::wait_for_endpoints", "condition/future wait"):
        "FileStore::wait with placement.request_timeout_s, checking the workers' liveness between polls",
    ("experiments/ppo_experiment.cpp", "supervise", "polling loop"):
        "waits on the controller for as long as it runs, by design; a frozen or stuck controller (its heartbeat, "
        "fault.hang_timeout_s) is killed, and SIGINT/SIGTERM are passed on",
    ("rlhf/controller.cpp", "PpoController::shuffler_", "fd read"):
        "not a read: PpoController::connect (in the constructor) makes ZeroMQ clients and waits through wait()",
    ("rlhf/controller.cpp", "PpoController::recover", "fd read"):
        "not a read: PpoController::connect makes ZeroMQ clients and waits through wait(), which has the deadline",
    ("rlhf/controller.cpp", "PpoController::guarded", "sleep"):
        "three heartbeat slices at most, checking whether a worker died under a role's error reply",
    # CURVE (ZAP handler, key files)
    ("distributed/curve_auth.cpp", "ZapHandler::receive_request", "zmq receive"):
        "only after zmq_poll saw ZMQ_POLLIN; ZeroMQ delivers a multipart message whole; the loop retries EINTR only",
    ("distributed/curve_auth.cpp", "ZapHandler::answer", "zmq send"):
        "the reply of an inproc REP socket to libzmq's own ZAP request: queued at once, never waits on a peer",
    ("distributed/curve_auth.cpp", "ZapHandler::run", "zmq poll"): "kZapPollMs timeout; the loop checks stop_",
    ("distributed/curve_auth.cpp", "ZapHandler::remove", "thread join"):
        "the handler loop polls with kZapPollMs and checks stop_, set just before",
    ("distributed/curve_keys.cpp", "read_all", "fd read"):
        "the run's key file, a regular file (opened O_NOFOLLOW, its mode checked with fstat)",
    # ZeroMQ transport
    ("distributed/transport.cpp", "wait_readable", "zmq poll"):
        "timeout = what is left of the caller's deadline, clamped at 0; EINTR re-checks the deadline",
    ("distributed/transport.cpp", "receive_messages", "zmq receive"):
        "only after wait_readable saw ZMQ_POLLIN; ZeroMQ delivers a multipart message whole, so every frame is there",
    ("distributed/transport.cpp", "send_frames", "zmq send"):
        "every socket has ZMQ_SNDTIMEO = kSendTimeoutMs (EAGAIN -> kQueueFull -> TimeoutError) and ZMQ_LINGER 0",
    ("bench/transport.cpp", "raw_echo", "zmq poll"): "20 ms timeout; the loop checks the stop flag each turn",
    ("bench/transport.cpp", "raw_echo", "zmq receive"):
        "after zmq_poll saw ZMQ_POLLIN; the raw client sends [identity, frame] as one multipart message",
    ("bench/transport.cpp", "raw_echo", "zmq send"):
        "a ROUTER send never blocks (it drops on a full queue unless ROUTER_MANDATORY)",
    ("bench/transport.cpp", "raw_round_trip", "zmq poll"): "timeout kDeadline, then TimeoutError",
    ("bench/transport.cpp", "raw_round_trip", "zmq receive"): "after zmq_poll saw ZMQ_POLLIN within kDeadline",
    ("bench/transport.cpp", "raw_round_trip", "zmq send"):
        "one frame to a DEALER connected to the local echo, whose queue the previous round trip emptied",
    ("bench/transport.cpp", "EchoThread::~EchoThread", "condition/future wait"):
        "the echo loop checks stop_ (set just before) every 20 ms zmq_poll",
    ("bench/transport.cpp", "EchoThread::finish", "future get"):
        "the echo loop checks stop_ (set just before) every 20 ms zmq_poll",
    # MPI
    ("distributed/mpi_communicator.cpp", "ensure_mpi_initialized", "mpi blocking call"):
        "MPI_Finalize at exit, after every collective completed or timed out; a dead peer makes mpirun end the job",
    ("distributed/mpi_communicator.cpp", "wait_for_request", "sleep"):
        "50 us between MPI_Test calls in a loop that throws TimeoutError at its deadline",
    # NCCL
    ("distributed/nccl_communicator.cpp", "NcclCommunicator::create", "nccl/cuda wait"):
        "config.blocking = 0: ncclCommInitRankConfig returns ncclInProgress and settle() polls it against a deadline",
    ("distributed/nccl_communicator.cpp", "NcclCommunicator::allreduce_sum", "nccl/cuda wait"):
        "enqueued on a non-blocking communicator inside run(), which polls completion against the deadline",
    ("distributed/nccl_communicator.cpp", "NcclCommunicator::broadcast", "nccl/cuda wait"):
        "enqueued on a non-blocking communicator inside run(), which polls completion against the deadline",
    ("distributed/nccl_communicator.cpp", "NcclCommunicator::all_gather", "nccl/cuda wait"):
        "enqueued on a non-blocking communicator inside run(), which polls completion against the deadline",
    ("distributed/nccl_communicator.cpp", "NcclCommunicator::reduce_scatter_sum", "nccl/cuda wait"):
        "enqueued on a non-blocking communicator inside run(), which polls completion against the deadline",
    ("distributed/nccl_communicator.cpp", "NcclCommunicator::settle", "sleep"):
        "100 us between polls of ncclCommGetAsyncError in a loop that fails with TimeoutError at its deadline",
    ("distributed/nccl_communicator.cpp", "NcclCommunicator::run", "sleep"):
        "50 us between cudaEventQuery polls in a loop that fails with TimeoutError at its deadline",
    ("bench/allreduce.cpp", "time_allreduce", "nccl/cuda wait"):
        "waits for this GPU's own queued kernels (the collective itself already finished within its deadline)",
    ("bench/train.cpp", "sync", "nccl/cuda wait"): "waits for this GPU's own queued kernels of one training step",
    # Processes
    ("core/subprocess.cpp", "Subprocess::Subprocess", "fd read"):
        "the CLOEXEC report pipe: the child's exec (or _exit after reporting a failure) closes it at once",
    ("core/subprocess.cpp", "Subprocess::Subprocess", "waitpid"):
        "only after the child reported that exec failed, i.e. it is exiting",
    ("core/subprocess.cpp", "Subprocess::drain", "fd read"):
        "::poll with the caller's wait_ms, then reads of O_NONBLOCK pipes until EAGAIN",
    ("core/subprocess.cpp", "Subprocess::wait_for", "sleep"):
        "at most 5 ms, in a loop that returns nullopt at the deadline",
    ("core/subprocess.cpp", "Subprocess::kill", "polling loop"):
        "the child was sent SIGKILL just before, which cannot be caught: the kernel ends it",
    ("distributed/launcher.cpp", "ProcessGroup::terminate", "condition/future wait"):
        "WorkerProcess::wait(timeout) is Subprocess::wait_for: the grace period, then SIGKILL and 5 s more",
    ("distributed/worker_launch.cpp", "FileStore::wait", "sleep"):
        "20 ms between looks for the key, in a loop that throws TimeoutError at its deadline",
    ("experiments/pipeline.cpp", "run_pipeline", "polling loop"):
        "supervises a stage for as long as it runs (a training run has no natural deadline); stop signals are "
        "forwarded and the stage gets SIGTERM if we die",
    # The terminal of `troupe label` (a person at the keyboard has no deadline: the loop wakes every 200 ms)
    ("cli/label_terminal.cpp", "Terminal::fill", "fd read"):
        "::poll with the caller's timeout (200 ms in the key loop, 30 ms inside a sequence), then a VMIN = 0 read",
    ("dataprep/label_record.cpp", "LockedFile::LockedFile", "sleep"):
        "5 ms between LOCK_NB tries of flock, in a loop that throws TimeoutError after kLockWaitSeconds",
    # The dashboard's HTTP server (one thread, non-blocking sockets)
    ("dashboard/http_server.cpp", "HttpServer::poll_once", "fd read"):
        "::poll with at most the caller's tick, shortened to the nearest connection deadline",
    ("dashboard/http_server.cpp", "HttpServer::Impl::accept_all", "fd read"):
        "accept4 on an O_NONBLOCK listener after poll saw POLLIN: EAGAIN once the backlog is empty",
    ("dashboard/http_server.cpp", "HttpServer::Impl::read_request", "fd read"):
        "recv on an O_NONBLOCK socket after poll saw it readable: EAGAIN ends the loop",
    ("dashboard/log_access.cpp", "with_log", "sleep"):
        "5 ms between at most 5 attempts to read a log racing its writer's flush",
    # Threads
    ("experiments/ppo_experiment.cpp", "InprocRoles::stop_and_join", "thread join"):
        "each serve() loop polls should_stop = stop_ (set just before) between bounded receives",
    ("experiments/ppo_experiment.cpp", "run_ppo_worker", "thread join"):
        "each serve() loop ends on kShutdown, on a stop signal or when the parent (controller) dies (should_stop)",
    ("dataprep/clean_pipeline.cpp", "for_each_chunk", "thread join"):
        "workers run a fixed list of CPU-bound chunks (errors are caught per chunk), no waiting on anyone",
    ("dataprep/clean_reader.cpp", "BatchPrefetcher::~BatchPrefetcher", "thread join"):
        "sets stop_ and notifies first; produce() checks stop_ after every batch of local file reads",
    ("dataprep/clean_reader.cpp", "BatchPrefetcher::produce", "condition/future wait"):
        "until the consumer takes a batch or the destructor sets stop_ (the consumer is this process's pipeline)",
    ("dataprep/clean_reader.cpp", "BatchPrefetcher::next", "condition/future wait"):
        "produce() always queues a last batch (short, or carrying the error) and sets finished_, even on failure",
    ("tokenizers/bpe_trainer.cpp", "BpeTrainer::add_pieces", "thread join"):
        "workers count words in fixed ranges of an in-memory vector: bounded CPU work",
    ("tokenizers/corpus.cpp", "train_bpe_on_files", "thread join"):
        "workers read and pre-tokenise a fixed list of local files: bounded work",
    ("tokenizers/corpus.h", "parallel_for_index", "thread join"):
        "workers run fn over a fixed index range: bounded CPU work (fn must not wait on anyone)",
    # troupe export tensorboard (issue 19)
    ("core/tensorboard_export.cpp", "TensorBoardExport::poll", "sleep"):
        "50 ms between at most 3 reads of the log (a read racing the writer's flush), then the error goes up",
    ("core/tensorboard_export.cpp", "follow_run", "sleep"):
        "100 ms steps of a wait that ends at the poll time (poll_seconds, > 0) or when the stop flag is set",
}

FUTURE_DECL = re.compile(r"std::(?:shared_)?future\s*<[^;{}]*?>\s+(\w+)|\b(?:auto|const auto)\s+(\w+)\s*=\s*std::async\b")
FUNCTION_HEAD = re.compile(
    r"([A-Za-z_~][\w~]*(?:::[A-Za-z_~][\w~]*)*)\s*\((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\)\s*"
    r"(?:const\b|noexcept\b|override\b|final\b|mutable\b|&|->\s*[\w:<>,\s*&]+?|\s)*(?::[^{]*)?$")
# What precedes the name of a function being declared or defined (a type), not a call ("return f(", "else f(" are
# calls).
DECLARATION = re.compile(r"([\w>*&])\s+(?:\w+::)*$")
CALL_KEYWORDS = re.compile(r"\b(?:return|else|throw|new|co_await|co_return|case|do)\s+(?:\w+::)*$")
NOT_FUNCTIONS = {"if", "for", "while", "switch", "catch", "return", "sizeof", "decltype", "alignof", "static_assert",
                 "defined", "requires"}
CLASS_HEAD = re.compile(r"\b(?:class|struct|union)\s+(?:\[\[[^\]]*\]\]\s*)?(\w+)[^(){};]*$")


def blank_comments_and_strings(text):
    """The source with comments and the contents of string and character literals replaced by spaces (newlines
    kept, so line numbers stay)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^(\s]*)\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i)
            end = n if end < 0 else end + len(m.group(1)) + 2
            out.append('"' + re.sub(r"[^\n]", " ", text[i + 1:end - 1]) + '"')
            i = end
        elif c in "\"'":
            if c == "'" and i > 0 and text[i - 1].isalnum():  # a digit separator (1'000'000)
                out.append(c)
                i += 1
                continue
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            closed = j < n and text[j] == c
            out.append(c + " " * (min(j, n) - i - 1) + (c if closed else ""))
            i = j + 1 if closed else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def function_at(code):
    """For each offset of `code` (comment-free source), the name of the innermost enclosing function ('' at file
    or class scope), as a list of (offset where a scope starts or ends, name)."""
    events = [(0, "")]
    stack = []  # (kind, name): kind "function", "class" or "other"
    last = 0  # start of the text before the next brace
    for m in re.finditer(r"[{};]", code):
        if m.group() == ";":
            last = m.end()
            continue
        if m.group() == "{":
            head = " ".join(code[last:m.start()].split())
            head = re.sub(r"^(?:#.*?\s)?", "", head)
            fm = FUNCTION_HEAD.search(head)
            cm = CLASS_HEAD.search(head)
            if fm and fm.group(1).split("::")[-1] not in NOT_FUNCTIONS and "=" not in head[:fm.start()].split("(")[0]:
                name = fm.group(1)
                classes = [s[1] for s in stack if s[0] == "class"]
                if "::" not in name and classes and not any(s[0] == "function" for s in stack):
                    name = classes[-1] + "::" + name
                stack.append(("function", name))
            elif cm and not fm:
                stack.append(("class", cm.group(1)))
            else:
                stack.append(("other", ""))
        else:
            if stack:
                stack.pop()
        names = [s[1] for s in stack if s[0] == "function"]
        events.append((m.end(), names[0] if names else ""))
        last = m.end()
    return events


def enclosing(events, offset):
    lo, hi = 0, len(events) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if events[mid][0] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return events[lo][1]


def future_gets(code):
    names = {a or b for a, b in FUTURE_DECL.findall(code)}
    if not names:
        return None
    return r"\b(?:%s)\s*(?:\.|->)\s*get\s*\(\s*\)|\.get_future\s*\(\s*\)\s*\.get\s*\(" % "|".join(sorted(names))


def scan(rel):
    """(line, function, kind, statement) of every blocking primitive in `rel`."""
    with open(os.path.join(SOURCE, rel), encoding="utf-8") as f:
        code = blank_comments_and_strings(f.read())
    code = re.sub(r"(?m)^[ \t]*#.*$", lambda m: " " * len(m.group()), code)  # preprocessor lines
    events = function_at(code)
    found = []
    for kind, (pattern, exempt, _) in PATTERNS.items():
        if kind == "future get":
            pattern = future_gets(code)
        if pattern is None:
            continue
        for m in re.finditer(pattern, code):
            end = code.find(";", m.start())
            statement = code[m.start():end if end >= 0 else len(code)]
            if exempt and re.search(exempt, statement):
                continue
            before = code[code.rfind("\n", 0, m.start()) + 1:m.start()]
            if DECLARATION.search(before) and not CALL_KEYWORDS.search(before):  # `std::optional<int> poll();`, `T read() {`: a function of that name
                continue
            line = code.count("\n", 0, m.start()) + 1
            text = " ".join(code[code.rfind("\n", 0, m.start()) + 1:].split("\n", 1)[0].split())
            found.append((line, enclosing(events, m.start()), kind, text))
    return found


def sources():
    for module in MODULES:
        folder = os.path.join(SOURCE, module)
        for root, _, files in os.walk(folder):
            for name in sorted(files):
                if name.endswith((".h", ".cpp", ".cu", ".cuh")):
                    yield os.path.relpath(os.path.join(root, name), SOURCE)


def main():
    failures, used, count = [], set(), 0
    for rel in sorted(sources()):
        for line, function, kind, text in scan(rel):
            count += 1
            key = (rel, function, kind)
            if key in ALLOWED:
                used.add(key)
                continue
            failures.append(f"{rel}:{line}: in {function or '(file scope)'}(): {kind}: `{text}`\n"
                            f"    needs a deadline: {PATTERNS[kind][2]}.\n"
                            f"    If it is bounded already, add (\"{rel}\", \"{function}\", \"{kind}\") with a one-line "
                            f"reason to ALLOWED in tests/architecture/blocking_calls_test.py.")
    for key in sorted(set(ALLOWED) - used):
        failures.append(f"ALLOWED entry {key} matches no blocking call any more: remove it (or fix its key)")
    for key, reason in ALLOWED.items():
        if key[2] not in PATTERNS or not reason.strip() or "\n" in reason:
            failures.append(f"ALLOWED entry {key}: unknown kind or missing one-line reason")
    if failures:
        print(f"{len(failures)} blocking call(s) without a known deadline:\n")
        print("\n".join(failures))
        return 1
    print(f"blocking calls: {count} found, every one bounded ({len(ALLOWED)} allowlist entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
