#include "evaluation/doc_template.h"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <mutex>

#include "core/errors.h"
#include "metrics/unicode.h"
#include "tokenizers/jinja.h"

namespace troupe::evaluation {
namespace {

using nlohmann::json;

// Templates parsed once per (spec): a task renders the same few templates for every document.
const tokenizers::jinja::Template& cached_template(const std::string& spec, const std::string& what) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<tokenizers::jinja::Template>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(spec);
  if (it == cache.end()) {
    auto t = std::make_unique<tokenizers::jinja::Template>(spec, what, tokenizers::jinja::Environment::lm_eval());
    it = cache.emplace(spec, std::move(t)).first;
  }
  return *it->second;
}

class PyLiteral {
 public:
  PyLiteral(const std::string& text, const std::string& what) : s_(text), what_(what) {}

  json parse() {
    skip();
    json v = value();
    skip();
    if (i_ != s_.size()) fail("unexpected text after the literal");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw DataError(fmt::format("{}: '{}' is not a Python list literal ({} at character {})", what_, s_, why, i_ + 1));
  }
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }
  json value() {
    if (i_ >= s_.size()) fail("unexpected end");
    const char c = s_[i_];
    if (c == '[' || c == '(') return sequence(c == '[' ? ']' : ')');
    if (c == '\'' || c == '"') return string();
    if (s_.compare(i_, 4, "True") == 0) return i_ += 4, json(true);
    if (s_.compare(i_, 5, "False") == 0) return i_ += 5, json(false);
    if (s_.compare(i_, 4, "None") == 0) return i_ += 4, json();
    return number();
  }
  json sequence(char close) {
    ++i_;
    json out = json::array();
    skip();
    while (i_ < s_.size() && s_[i_] != close) {
      out.push_back(value());
      skip();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        skip();
      } else if (i_ < s_.size() && s_[i_] != close) {
        fail("expected ',' or the closing bracket");
      }
    }
    if (i_ >= s_.size()) fail("unclosed bracket");
    ++i_;
    return out;
  }
  json string() {
    const char quote = s_[i_++];
    std::string out;
    while (i_ < s_.size() && s_[i_] != quote) {
      char c = s_[i_++];
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (i_ >= s_.size()) fail("unfinished escape");
      const char e = s_[i_++];
      switch (e) {
        case 'n': out.push_back('\n'); break;
        case 't': out.push_back('\t'); break;
        case 'r': out.push_back('\r'); break;
        case '0': out.push_back('\0'); break;
        case '\\':
        case '\'':
        case '"': out.push_back(e); break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          if (i_ + n > s_.size()) fail("short \\" + std::string(1, e) + " escape");
          const auto cp = static_cast<char32_t>(std::stoul(s_.substr(i_, n), nullptr, 16));
          i_ += n;
          metrics::append_utf8(out, cp);
          break;
        }
        default: out.push_back('\\'); out.push_back(e);
      }
    }
    if (i_ >= s_.size()) fail("unclosed string");
    ++i_;
    return out;
  }
  json number() {
    const size_t start = i_;
    if (i_ < s_.size() && (s_[i_] == '-' || s_[i_] == '+')) ++i_;
    bool is_float = false;
    while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == 'e' ||
                              s_[i_] == 'E' || s_[i_] == '_')) {
      is_float = is_float || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E';
      ++i_;
    }
    if (i_ == start) fail("unexpected character");
    std::string text = s_.substr(start, i_ - start);
    text.erase(std::remove(text.begin(), text.end(), '_'), text.end());
    try {
      return is_float ? json(std::stod(text)) : json(std::stoll(text));
    } catch (const std::exception&) {
      fail("bad number");
    }
  }

  const std::string& s_;
  std::string what_;
  size_t i_ = 0;
};

}  // namespace

json resolve_doc_field(const std::string& spec, const json& doc, const std::string& what) {
  if (doc.is_object() && doc.contains(spec)) return doc.at(spec);
  const nlohmann::ordered_json vars(doc);  // a converting copy (keys in json's sorted order, as before)
  return json(cached_template(spec, what).render(vars));
}

json parse_python_list(const std::string& text, const std::string& what) {
  json v = PyLiteral(text, what).parse();
  if (!v.is_array()) throw DataError(fmt::format("{}: '{}' is not a list", what, text));
  return v;
}

}  // namespace troupe::evaluation
