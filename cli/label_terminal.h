// The terminal of `troupe label`: raw mode on the alternate screen (restored on exit, on SIGINT/SIGTERM/SIGHUP and
// when an exception unwinds), keys decoded from the byte stream (UTF-8 text, arrows, page keys, Esc), the window
// size and whole-frame writes. Raw termios and ANSI escape codes; not curses, and not what is drawn (cli/label_app.h).
#pragma once

#include <termios.h>

#include <csignal>
#include <optional>
#include <string>

namespace troupe::cli {

enum class KeyKind {
  kText,  // a printable character, its UTF-8 bytes in Key::text
  kEnter,
  kEscape,
  kBackspace,
  kTab,
  kBackTab,
  kUp,
  kDown,
  kLeft,
  kRight,
  kPageUp,
  kPageDown,
  kHome,
  kEnd,
  kInterrupt,  // Ctrl-C (raw mode: no SIGINT from the keyboard)
};

struct Key {
  KeyKind kind = KeyKind::kText;
  std::string text;  // kText: one UTF-8 character
};

class Terminal {
 public:
  // Takes over stdin/stdout. ConfigError when either is not a terminal (naming what to do instead).
  Terminal();
  ~Terminal();  // restores the saved termios, the main screen, the cursor and the signal handlers
  Terminal(const Terminal&) = delete;
  Terminal& operator=(const Terminal&) = delete;

  // The next key, waiting at most timeout_ms (poll on stdin); nullopt when none came or a signal interrupted.
  std::optional<Key> read_key(int timeout_ms);
  // The window size (rows, columns), at least 10 x 20 as drawn.
  std::pair<int, int> size() const;
  // Writes the whole frame (one loop of write(2) calls); IoError when the terminal is gone.
  void write(const std::string& bytes) const;
  // The signal (SIGINT, SIGTERM, SIGHUP) that asked us to stop, or 0.
  static int stop_signal();
  // True once after each SIGWINCH.
  static bool take_resized();

 private:
  bool fill(int timeout_ms);  // reads what is available into pending_; false on timeout or signal
  std::optional<Key> decode();
  std::optional<Key> decode_escape();

  termios saved_{};
  struct sigaction old_int_ {
  }, old_term_{}, old_hup_{}, old_winch_{};
  std::string pending_;  // bytes read, not yet decoded
};

}  // namespace troupe::cli
