// Python's `re` (str patterns) on PCRE2, for the answer-extraction filters and metric options of lm-evaluation-
// harness task files (`regex_pattern`, `regexes_to_ignore`), which are Python regular expressions.
//
// PCRE2 runs in UTF + UCP mode (\d is Unicode Nd, \w Unicode letters, digits and _, as Python's str patterns), with
// the differences rewritten: \s and \S are Python's str.isspace set (which adds U+001C..U+001F to Unicode
// White_Space), \Z is the end of the text (Python's \Z, PCRE2's \z), \uXXXX and \UXXXXXXXX are code points, and
// {,n} is {0,n}. Everything else (groups, (?P<name>...), (?P=name), look-around, inline flags (?i) (?s) (?m) (?x),
// $ matching at the end or before a final newline, . not matching a newline without (?s)) means the same in both.
// Iteration over matches follows Python 3.7+: an empty match is allowed right after a non-empty one, and the search
// after an empty match must not give another empty match at the same position.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::metrics {

class PyRegex {
 public:
  // ConfigError naming the pattern and the offset of the problem when it does not compile.
  explicit PyRegex(const std::string& pattern);
  const std::string& pattern() const { return pattern_; }
  int groups() const;  // capturing groups

  // re.findall(pattern, text): the non-overlapping matches, each as its groups (a group that did not take part is
  // ""), or as the one whole match when the pattern has no groups. Python returns a string per match for 0 or 1
  // group and a tuple for more: here always a list, of size max(1, groups()).
  std::vector<std::vector<std::string>> findall(std::string_view text) const;
  // re.sub(pattern, replace, text) with a function: each match (in Python's order) replaced by replace(the whole
  // match), the text between matches copied.
  std::string substitute(std::string_view text, const std::function<std::string(std::string_view)>& replace) const;
  // re.sub(pattern, "", text): every match removed.
  std::string remove_all(std::string_view text) const;
  // re.search(pattern, text) is not None.
  bool search(std::string_view text) const;

 private:
  struct Compiled;
  std::string pattern_;
  std::shared_ptr<const Compiled> compiled_;
  template <class F>
  void for_each_match(std::string_view text, F&& f) const;
};

// The pattern rewritten into PCRE2's dialect (exposed for tests).
std::string python_regex_to_pcre2(const std::string& pattern);

}  // namespace troupe::metrics
