// Markup cleanup for data cleaning: HTML to plain text, URL removal, and repair of UTF-8 text that was mis-decoded
// as Latin-1 or Windows-1252 (mojibake). It is not an HTML5 parser (no DOM, no tree repair: tags are dropped or made
// line breaks as they stream past) and not all of ftfy: see fix_mojibake for the class of repairs it makes.
#pragma once

#include <string>
#include <string_view>

namespace troupe::dataprep {

// Text of an HTML document or fragment:
//  - <script>, <style>, <head>, <noscript> and <template> elements are dropped with their content; comments,
//    <!DOCTYPE ...> and <?...?> are dropped;
//  - <br> is a line break; block-level tags (div, li, tr, ul, table, section, ...) start a new line; p, h1-h6,
//    blockquote, pre and hr a new paragraph (a blank line); table cells (td, th) a space; other tags vanish;
//  - whitespace in the source is a space (no <pre> formatting is kept); character references are decoded:
//    numeric (&#233; &#xE9;, with HTML5's Windows-1252 remap of 128-159 and U+FFFD for 0, surrogates and values
//    past U+10FFFF) and the named ones of HTML5 in common use (208 of its 2231: markup, Latin-1, typography, arrows,
//    Greek letters, maths), only with their ';'; an unknown name stays as written;
//  - a '<' that does not open a tag (`a < b`) is text; finally dataprep::clean_whitespace.
// Example: "<p>Caf&eacute;<br>open</p><p>daily &amp; late</p>" -> "Café\nopen\n\ndaily & late".
std::string html_to_text(std::string_view html);

// URLs (http://, https://, ftp:// or www. up to the next whitespace, '<', '>' or quote, trailing . , ; : ! ? ) ] }
// and ' left in the text) replaced by `placeholder`; the empty placeholder removes them.
// Example: replace_urls("see https://a.org/x?y=1.", "<URL>") == "see <URL>."
std::string replace_urls(std::string_view text, std::string_view placeholder = "");

// ftfy 6.3.1's fix_encoding restricted to its commonest repair: while the text is not ASCII, ftfy's badness
// heuristic (its BADNESS_RE, copied below) finds mojibake, and the text encodes to Latin-1 or to ftfy's
// sloppy-windows-1252 (tried in that order) giving valid UTF-8, the text is replaced by that UTF-8 decoding
// ("CafÃ©" -> "Café", "itâ€™s" -> "it’s", twice-garbled text fixed in two rounds). Every other ftfy repair is
// not made and the text is returned as it stands at that point: other single-byte code pages (cp1251, cp1250,
// MacRoman, cp437, ...), restore_byte_a0 (a NBSP turned into a space), replace_lossy_sequences (U+FFFD or
// '?' in place of lost bytes), decode_inconsistent_utf8 (only part of the text garbled), fix_c1_controls and the
// Latin-1-as-Windows-1252 transcode. On the texts ftfy fixes with Latin-1/Windows-1252 -> UTF-8 steps alone, or
// leaves unchanged, the result equals ftfy.fix_encoding (tests/dataprep/markup_test.cpp). ftfy decodes bytes
// holding 0xED or 0xC0 with its utf-8-variants codec; here they must be standard UTF-8 (Hangul is; CESU-8
// surrogate pairs and the overlong C0 80 null are not, and stay unrepaired). Malformed UTF-8 is a DataError.
std::string fix_mojibake(std::string_view text);

}  // namespace troupe::dataprep
