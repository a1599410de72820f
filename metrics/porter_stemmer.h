// NLTK's Porter stemmer, exactly: nltk.stem.porter.PorterStemmer().stem(word) in its default NLTK_EXTENSIONS mode
// (lowercasing first, its pool of irregular forms, words of at most 2 characters left as they are). It is what
// rouge-score (use_stemmer=True) and NLTK's METEOR stem with. Not the original 1980 algorithm, nor Martin Porter's
// frozen C version, nor Snowball's "Porter2": their stems differ on many words.
#pragma once

#include <string>
#include <string_view>

namespace troupe::metrics {

// PorterStemmer().stem(word) of NLTK (NLTK_EXTENSIONS, to_lowercase=True), on UTF-8 text. Works on code points as
// Python does: the word is lowercased with Python's full str.lower(); only a, e, i, o, u are vowels (y by position),
// every other character, non-ASCII included, is a consonant. Examples: "running" -> "run", "happiness" -> "happi",
// "generously" -> "gener", "dying" -> "die", "Caresses" -> "caress". Malformed UTF-8 throws DataError.
std::string porter_stem(std::string_view word);

}  // namespace troupe::metrics
