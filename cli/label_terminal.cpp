// Raw-mode terminal I/O for `troupe label` (cli/label_terminal.h). Not the layout and not the key bindings.
#include "cli/label_terminal.h"

#include <fmt/format.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/errors.h"

namespace troupe::cli {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;
volatile std::sig_atomic_t g_resized = 0;

extern "C" void on_stop(int sig) { g_stop_signal = sig; }
extern "C" void on_winch(int) { g_resized = 1; }

void install(int sig, void (*handler)(int), struct sigaction* old) {
  struct sigaction sa {};
  sa.sa_handler = handler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: poll() returns EINTR and the loop sees the flag
  ::sigaction(sig, &sa, old);
}

// The length of a UTF-8 sequence from its lead byte (1 for a stray continuation byte: shown as U+FFFD later).
size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0 && lead < 0xF8) return 4;
  if (lead >= 0xE0) return lead < 0xF0 ? 3 : 1;
  if (lead >= 0xC0) return 2;
  return 1;
}

constexpr int kSequenceWaitMs = 30;  // the rest of an escape sequence or UTF-8 character arrives within this

}  // namespace

Terminal::Terminal() {
  if (!::isatty(STDIN_FILENO) || !::isatty(STDOUT_FILENO)) {
    throw ConfigError(
        "troupe label needs an interactive terminal (stdin and stdout must be a TTY); run it in a terminal, or "
        "under tmux or screen, not with redirected input or output");
  }
  if (::tcgetattr(STDIN_FILENO, &saved_) != 0) throw IoError(fmt::format("tcgetattr: {}", std::strerror(errno)));
  termios raw = saved_;
  raw.c_iflag &= ~static_cast<tcflag_t>(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
  raw.c_oflag &= ~static_cast<tcflag_t>(OPOST);
  raw.c_cflag |= CS8;
  raw.c_lflag &= ~static_cast<tcflag_t>(ECHO | ICANON | IEXTEN | ISIG);
  raw.c_cc[VMIN] = 0;  // read() returns what is there, never waits (poll() does the waiting, with a timeout)
  raw.c_cc[VTIME] = 0;
  g_stop_signal = 0;
  g_resized = 0;
  install(SIGINT, on_stop, &old_int_);
  install(SIGTERM, on_stop, &old_term_);
  install(SIGHUP, on_stop, &old_hup_);
  install(SIGWINCH, on_winch, &old_winch_);
  if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) != 0) {
    const int err = errno;
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
    ::sigaction(SIGHUP, &old_hup_, nullptr);
    ::sigaction(SIGWINCH, &old_winch_, nullptr);
    throw IoError(fmt::format("tcsetattr (raw mode): {}", std::strerror(err)));
  }
  write("\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J");  // alternate screen, hide the cursor, clear
}

Terminal::~Terminal() {
  const std::string restore = "\x1b[0m\x1b[?25h\x1b[?1049l";  // attributes off, cursor on, main screen
  [[maybe_unused]] const ssize_t n = ::write(STDOUT_FILENO, restore.data(), restore.size());
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
  ::sigaction(SIGINT, &old_int_, nullptr);
  ::sigaction(SIGTERM, &old_term_, nullptr);
  ::sigaction(SIGHUP, &old_hup_, nullptr);
  ::sigaction(SIGWINCH, &old_winch_, nullptr);
}

int Terminal::stop_signal() { return g_stop_signal; }

bool Terminal::take_resized() {
  const bool r = g_resized != 0;
  g_resized = 0;
  return r;
}

std::pair<int, int> Terminal::size() const {
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_row == 0 || ws.ws_col == 0) return {24, 80};
  return {std::max<int>(ws.ws_row, 10), std::max<int>(ws.ws_col, 20)};
}

void Terminal::write(const std::string& bytes) const {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(STDOUT_FILENO, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(fmt::format("cannot write to the terminal: {}", std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
}

bool Terminal::fill(int timeout_ms) {
  pollfd pfd{STDIN_FILENO, POLLIN, 0};
  const int ready = ::poll(&pfd, 1, timeout_ms);
  if (ready <= 0) return false;  // timeout, or EINTR from a signal (the caller checks the flags)
  if ((pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0 && (pfd.revents & POLLIN) == 0) {
    throw IoError("the terminal was closed");
  }
  char buf[256];
  const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);  // VMIN = 0: returns at once
  if (n < 0 && errno != EINTR && errno != EAGAIN) {
    throw IoError(fmt::format("cannot read the terminal: {}", std::strerror(errno)));
  }
  if (n > 0) pending_.append(buf, static_cast<size_t>(n));
  return n > 0;
}

std::optional<Key> Terminal::read_key(int timeout_ms) {
  if (pending_.empty() && !fill(timeout_ms)) return std::nullopt;
  return decode();
}

std::optional<Key> Terminal::decode() {
  const auto c = static_cast<unsigned char>(pending_[0]);
  if (c == 0x1b) return decode_escape();
  auto take = [this](size_t n, KeyKind kind) {
    Key k{kind, pending_.substr(0, n)};
    pending_.erase(0, n);
    return std::optional<Key>(k);
  };
  switch (c) {
    case '\r':
    case '\n': return take(1, KeyKind::kEnter);
    case 0x7f:
    case 0x08: return take(1, KeyKind::kBackspace);
    case '\t': return take(1, KeyKind::kTab);
    case 0x03: return take(1, KeyKind::kInterrupt);
    default: break;
  }
  if (c < 0x20) {
    pending_.erase(0, 1);  // other control keys do nothing
    return std::nullopt;
  }
  const size_t len = utf8_length(c);
  while (pending_.size() < len && fill(kSequenceWaitMs)) {
  }
  return take(std::min(len, pending_.size()), KeyKind::kText);
}

std::optional<Key> Terminal::decode_escape() {
  if (pending_.size() == 1) fill(kSequenceWaitMs);  // a lone Esc, or the start of a sequence
  if (pending_.size() == 1 || (pending_[1] != '[' && pending_[1] != 'O')) {
    pending_.erase(0, 1);
    return Key{KeyKind::kEscape, {}};
  }
  // CSI / SS3: ESC [ params final, the final byte in 0x40..0x7e.
  size_t end = 2;
  for (;;) {
    while (end < pending_.size() && !(pending_[end] >= 0x40 && pending_[end] <= 0x7e)) ++end;
    if (end < pending_.size() || !fill(kSequenceWaitMs)) break;
  }
  if (end >= pending_.size()) {
    pending_.clear();  // a truncated sequence: drop it
    return std::nullopt;
  }
  const std::string params = pending_.substr(2, end - 2);
  const char final = pending_[end];
  pending_.erase(0, end + 1);
  switch (final) {
    case 'A': return Key{KeyKind::kUp, {}};
    case 'B': return Key{KeyKind::kDown, {}};
    case 'C': return Key{KeyKind::kRight, {}};
    case 'D': return Key{KeyKind::kLeft, {}};
    case 'H': return Key{KeyKind::kHome, {}};
    case 'F': return Key{KeyKind::kEnd, {}};
    case 'Z': return Key{KeyKind::kBackTab, {}};
    case '~':
      if (params == "5") return Key{KeyKind::kPageUp, {}};
      if (params == "6") return Key{KeyKind::kPageDown, {}};
      if (params == "1" || params == "7") return Key{KeyKind::kHome, {}};
      if (params == "4" || params == "8") return Key{KeyKind::kEnd, {}};
      return std::nullopt;
    default: return std::nullopt;
  }
}

}  // namespace troupe::cli
