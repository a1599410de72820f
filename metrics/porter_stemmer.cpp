// NLTK's PorterStemmer (NLTK_EXTENSIONS mode), step by step as nltk/stem/porter.py writes it, including its quirks
// (a rule list stops at the first suffix that matches even when its condition fails; the literal "*d" suffix). One
// template serves ASCII words (std::string, no decoding) and others (std::u32string: Python indexes code points).
#include "metrics/porter_stemmer.h"

#include <array>
#include <span>

#include "metrics/unicode.h"

namespace troupe::metrics {
namespace {

// When a rule applies, given the stem (the word without the suffix) and the word.
enum class Cond {
  kAlways,    // None
  kPositive,  // m(stem) > 0
  kAboveOne,  // m(stem) > 1
  kIon,       // m(stem) > 1 and stem ends with s or t
  kLogi,      // m(word[:-3]) > 0: the 'l' of -logi stays with the stem
  kStep5bLl,  // m(word[:-1]) > 1
};

struct Rule {
  std::string_view suffix;
  std::string_view replacement;
  Cond cond;
};

constexpr std::array kStep1aRules = {
    Rule{"sses", "ss", Cond::kAlways},
    Rule{"ies", "i", Cond::kAlways},
    Rule{"ss", "ss", Cond::kAlways},
    Rule{"s", "", Cond::kAlways},
};

// NLTK_EXTENSIONS: "bli" (not "abli"), then "fulli" and "logi" appended at the end.
constexpr std::array kStep2Rules = {
    Rule{"ational", "ate", Cond::kPositive}, Rule{"tional", "tion", Cond::kPositive},
    Rule{"enci", "ence", Cond::kPositive},   Rule{"anci", "ance", Cond::kPositive},
    Rule{"izer", "ize", Cond::kPositive},    Rule{"bli", "ble", Cond::kPositive},
    Rule{"alli", "al", Cond::kPositive},     Rule{"entli", "ent", Cond::kPositive},
    Rule{"eli", "e", Cond::kPositive},       Rule{"ousli", "ous", Cond::kPositive},
    Rule{"ization", "ize", Cond::kPositive}, Rule{"ation", "ate", Cond::kPositive},
    Rule{"ator", "ate", Cond::kPositive},    Rule{"alism", "al", Cond::kPositive},
    Rule{"iveness", "ive", Cond::kPositive}, Rule{"fulness", "ful", Cond::kPositive},
    Rule{"ousness", "ous", Cond::kPositive}, Rule{"aliti", "al", Cond::kPositive},
    Rule{"iviti", "ive", Cond::kPositive},   Rule{"biliti", "ble", Cond::kPositive},
    Rule{"fulli", "ful", Cond::kPositive},   Rule{"logi", "log", Cond::kLogi},
};

constexpr std::array kStep3Rules = {
    Rule{"icate", "ic", Cond::kPositive}, Rule{"ative", "", Cond::kPositive},  Rule{"alize", "al", Cond::kPositive},
    Rule{"iciti", "ic", Cond::kPositive}, Rule{"ical", "ic", Cond::kPositive}, Rule{"ful", "", Cond::kPositive},
    Rule{"ness", "", Cond::kPositive},
};

constexpr std::array kStep4Rules = {
    Rule{"al", "", Cond::kAboveOne},   Rule{"ance", "", Cond::kAboveOne}, Rule{"ence", "", Cond::kAboveOne},
    Rule{"er", "", Cond::kAboveOne},   Rule{"ic", "", Cond::kAboveOne},   Rule{"able", "", Cond::kAboveOne},
    Rule{"ible", "", Cond::kAboveOne}, Rule{"ant", "", Cond::kAboveOne},  Rule{"ement", "", Cond::kAboveOne},
    Rule{"ment", "", Cond::kAboveOne}, Rule{"ent", "", Cond::kAboveOne},  Rule{"ion", "", Cond::kIon},
    Rule{"ou", "", Cond::kAboveOne},   Rule{"ism", "", Cond::kAboveOne},  Rule{"ate", "", Cond::kAboveOne},
    Rule{"iti", "", Cond::kAboveOne},  Rule{"ous", "", Cond::kAboveOne},  Rule{"ive", "", Cond::kAboveOne},
    Rule{"ize", "", Cond::kAboveOne},
};

constexpr std::array kStep5bRules = {Rule{"ll", "l", Cond::kStep5bLl}};

// The irregular forms of NLTK_EXTENSIONS: a lowercased word found here is its own answer.
constexpr std::array<std::pair<std::string_view, std::string_view>, 16> kPool = {{
    {"sky", "sky"},
    {"skies", "sky"},
    {"dying", "die"},
    {"lying", "lie"},
    {"tying", "tie"},
    {"news", "news"},
    {"innings", "inning"},
    {"inning", "inning"},
    {"outings", "outing"},
    {"outing", "outing"},
    {"cannings", "canning"},
    {"canning", "canning"},
    {"howe", "howe"},
    {"proceed", "proceed"},
    {"exceed", "exceed"},
    {"succeed", "succeed"},
}};

// The algorithm on strings of one character type: char (ASCII words) or char32_t (code points).
template <class Char>
class Porter {
 public:
  using String = std::basic_string<Char>;
  using View = std::basic_string_view<Char>;

  static String stem(String word) {
    step1a(word);
    step1b(word);
    step1c(word);
    step2(word);
    step3(word);
    step4(word);
    step5a(word);
    apply_rules(word, kStep5bRules);
    return word;
  }

  static bool equals(View a, std::string_view ascii) {
    if (a.size() != ascii.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] != static_cast<Char>(static_cast<unsigned char>(ascii[i]))) return false;
    }
    return true;
  }

 private:
  static bool is_vowel(Char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

  // A consonant is not a vowel, and not a 'y' after a consonant (a 'y' that starts the word is a consonant).
  static bool is_consonant(View w, size_t i) {
    bool negate = false;
    while (i > 0 && w[i] == 'y') {
      negate = !negate;
      --i;
    }
    return (!is_vowel(w[i])) != negate;
  }

  // m in [C](VC){m}[V]: the number of vowel-to-consonant transitions, in one pass.
  static int measure(View s) {
    int m = 0;
    bool prev_consonant = true;
    for (size_t i = 0; i < s.size(); ++i) {
      const Char c = s[i];
      const bool consonant = is_vowel(c) ? false : (c == 'y' ? (i == 0 || !prev_consonant) : true);
      if (consonant && i > 0 && !prev_consonant) ++m;
      prev_consonant = consonant;
    }
    return m;
  }

  static bool contains_vowel(View s) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (!is_consonant(s, i)) return true;
    }
    return false;
  }

  static bool ends_double_consonant(View w) {
    const size_t n = w.size();
    return n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1);
  }

  // *o: ends consonant-vowel-consonant, the last not w, x or y; NLTK adds: a 2-letter word vowel-consonant.
  static bool ends_cvc(View w) {
    const size_t n = w.size();
    if (n >= 3 && is_consonant(w, n - 3) && !is_consonant(w, n - 2) && is_consonant(w, n - 1) && w[n - 1] != 'w' &&
        w[n - 1] != 'x' && w[n - 1] != 'y') {
      return true;
    }
    return n == 2 && !is_consonant(w, 0) && is_consonant(w, 1);
  }

  static bool ends_with(View w, std::string_view suffix) {
    return w.size() >= suffix.size() && equals(w.substr(w.size() - suffix.size()), suffix);
  }

  static void replace_suffix(String& w, size_t suffix_size, std::string_view replacement) {
    w.resize(w.size() - suffix_size);
    for (char c : replacement) w.push_back(static_cast<Char>(c));
  }

  static bool holds(Cond cond, View word, View stem) {
    switch (cond) {
      case Cond::kAlways: return true;
      case Cond::kPositive: return measure(stem) > 0;
      case Cond::kAboveOne: return measure(stem) > 1;
      case Cond::kIon: return measure(stem) > 1 && (stem.back() == 's' || stem.back() == 't');
      case Cond::kLogi: return measure(word.substr(0, word.size() - 3)) > 0;
      case Cond::kStep5bLl: return measure(word.substr(0, word.size() - 1)) > 1;
    }
    return false;
  }

  // _apply_rule_list: the first rule whose suffix matches decides; when its condition fails the word stays.
  template <size_t N>
  static void apply_rules(String& w, const std::array<Rule, N>& rules) {
    for (const Rule& rule : rules) {
      if (!ends_with(w, rule.suffix)) continue;
      const View word(w);
      if (holds(rule.cond, word, word.substr(0, w.size() - rule.suffix.size()))) {
        replace_suffix(w, rule.suffix.size(), rule.replacement);
      }
      return;
    }
  }

  static void step1a(String& w) {
    if (w.size() == 4 && ends_with(w, "ies")) {  // NLTK: 'dies' -> 'die', but 'flies' -> 'fli'
      w.pop_back();
      return;
    }
    apply_rules(w, kStep1aRules);
  }

  static void step1b(String& w) {
    if (ends_with(w, "ied")) {  // NLTK: 'died' -> 'die', but 'spied' -> 'spi'
      w.resize(w.size() == 4 ? 3 : w.size() - 2);
      return;
    }
    if (ends_with(w, "eed")) {
      if (measure(View(w).substr(0, w.size() - 3)) > 0) w.pop_back();
      return;
    }
    size_t cut = 0;
    for (std::string_view suffix : {std::string_view("ed"), std::string_view("ing")}) {
      if (ends_with(w, suffix) && contains_vowel(View(w).substr(0, w.size() - suffix.size()))) {
        cut = suffix.size();
        break;
      }
    }
    if (cut == 0) return;
    w.resize(w.size() - cut);
    step1b_tidy(w);
  }

  // After -ed or -ing: AT -> ATE, BL -> BLE, IZ -> IZE, (*d and not *l, *s, *z) -> single letter, (m=1 and *o) -> E.
  static void step1b_tidy(String& w) {
    if (ends_with(w, "at") || ends_with(w, "bl") || ends_with(w, "iz")) {
      w.push_back('e');
      return;
    }
    const Char last = w.back();  // the "*d" rule's replacement, taken before the rule runs
    const bool keeps_double = last == 'l' || last == 's' || last == 'z';
    // The "*d" rule; Python also tests it as a literal suffix "*d" when the word does not end in a double consonant.
    if (ends_double_consonant(w) || ends_with(w, "*d")) {
      if (!keeps_double) {
        w.resize(w.size() - 2);
        w.push_back(last);
      }
      return;
    }
    if (measure(w) == 1 && ends_cvc(w)) w.push_back('e');
  }

  // NLTK: (*c and not c) Y -> I, i.e. a 'y' after a consonant that is not the whole stem.
  static void step1c(String& w) {
    if (!ends_with(w, "y")) return;
    const View stem = View(w).substr(0, w.size() - 1);
    if (stem.size() > 1 && is_consonant(stem, stem.size() - 1)) w.back() = 'i';
  }

  static void step2(String& w) {
    // NLTK: ALLI -> AL first, and if it applies, step 2 again on the result.
    if (ends_with(w, "alli") && measure(View(w).substr(0, w.size() - 4)) > 0) {
      w.resize(w.size() - 2);
      step2(w);
      return;
    }
    apply_rules(w, kStep2Rules);
  }

  static void step3(String& w) { apply_rules(w, kStep3Rules); }
  static void step4(String& w) { apply_rules(w, kStep4Rules); }

  // (m>1) E -> ; (m=1 and not *o) E -> : both conditions are tried, unlike a rule list.
  static void step5a(String& w) {
    if (!ends_with(w, "e")) return;
    const View stem = View(w).substr(0, w.size() - 1);
    const int m = measure(stem);
    if (m > 1 || (m == 1 && !ends_cvc(stem))) w.pop_back();
  }
};

template <class Char>
std::basic_string<Char> stem_lowered(std::basic_string<Char> lowered, size_t original_length) {
  using P = Porter<Char>;
  for (const auto& [form, stem] : kPool) {
    if (P::equals(lowered, form)) {
      return std::basic_string<Char>(stem.begin(), stem.end());
    }
  }
  // NLTK tests the length of the word as given, not of its lowercase (which may be longer: 'İ' -> 'i̇').
  if (original_length <= 2) return lowered;
  return P::stem(std::move(lowered));
}

bool is_ascii(std::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

std::string porter_stem(std::string_view word) {
  if (is_ascii(word)) {
    std::string lowered(word);
    for (char& c : lowered) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return stem_lowered<char>(std::move(lowered), word.size());
  }
  const std::u32string decoded = decode_utf8(word, "porter_stem word");
  return encode_utf8(stem_lowered<char32_t>(lower(decoded), decoded.size()));
}

}  // namespace troupe::metrics
