using System.Text.Json;
using System.Text.Json.Nodes;

namespace CoeffTune.Text;

/// <summary>
/// Settings of a BERT WordPiece tokenizer, as transformers' BertTokenizer takes them. The defaults are
/// BertTokenizer's: lower-case, accents stripped when lower-casing (strip_accents null), Chinese characters
/// split, control characters cleaned.
/// </summary>
public sealed record WordPieceSettings
{
    public bool LowerCase { get; init; } = true;
    /// <summary>Null follows <see cref="LowerCase"/>, as Hugging Face's BertNormalizer does.</summary>
    public bool? StripAccents { get; init; }
    public bool HandleChineseChars { get; init; } = true;
    public string UnkToken { get; init; } = "[UNK]";
    public string ClsToken { get; init; } = "[CLS]";
    public string SepToken { get; init; } = "[SEP]";
    public string PadToken { get; init; } = "[PAD]";
    public string MaskToken { get; init; } = "[MASK]";
    public int? ModelMaxLength { get; init; } = 512;

    /// <summary>all-MiniLM-L6-v2 and snowflake-arctic-embed-xs as published: uncased, accents stripped, 512 positions.</summary>
    public static WordPieceSettings UncasedBert { get; } = new();

    public string Describe() =>
        $"{(LowerCase ? "uncased" : "cased")}, accents {((StripAccents ?? LowerCase) ? "stripped" : "kept")}";
}

/// <summary>What a model folder's tokenizer files say: the tokenizer.json to run and the settings around it.</summary>
public sealed record TokenizerDefinition(JsonObject Definition, string Source, int? ModelMaxLength, string? PadToken);

/// <summary>
/// Reads a model folder's tokenizer files as transformers does: <c>tokenizer.json</c> when present (the fast
/// tokenizer's own definition), else the slow tokenizer's files converted as transformers' converters convert
/// them: <c>vocab.txt</c> into a BERT WordPiece tokenizer, <c>vocab.json</c> + <c>merges.txt</c> into a
/// byte-level BPE (GPT-2, RoBERTa, BART). <c>tokenizer_config.json</c> supplies <c>do_lower_case</c>,
/// <c>strip_accents</c>, <c>model_max_length</c> and the special tokens. Nothing is inferred from a vocabulary's contents.
/// </summary>
public static class TokenizerFiles
{
    public const string TokenizerJson = "tokenizer.json";
    public const string ConfigJson = "tokenizer_config.json";
    public const string VocabTxt = "vocab.txt";
    public const string VocabJson = "vocab.json";
    public const string MergesTxt = "merges.txt";

    public static TokenizerDefinition Read(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"tokenizer folder {folder} does not exist");
        var configFile = Path.Combine(folder, ConfigJson);
        var config = ReadJson(configFile, optional: true) switch
        {
            null => new JsonObject(),
            JsonObject o => o,
            _ => throw new InvalidDataException($"{configFile}: expected a JSON object"),
        };
        int? maxLength = ModelMaxLength(config, configFile);
        string? pad = SpecialToken(config, "pad_token", configFile);

        var tokenizerJson = Path.Combine(folder, TokenizerJson);
        if (File.Exists(tokenizerJson))
        {
            if (ReadJson(tokenizerJson, optional: false) is not JsonObject definition || definition["model"] is not JsonObject)
                throw new InvalidDataException($"{tokenizerJson}: no \"model\" object; not a Hugging Face tokenizer.json");
            return new TokenizerDefinition(definition, tokenizerJson, maxLength, pad);
        }
        var vocabTxt = Path.Combine(folder, VocabTxt);
        if (File.Exists(vocabTxt))
        {
            var settings = new WordPieceSettings
            {
                LowerCase = Bool(config, "do_lower_case", configFile) ?? true,
                StripAccents = Bool(config, "strip_accents", configFile),
                HandleChineseChars = Bool(config, "tokenize_chinese_chars", configFile) ?? true,
                UnkToken = SpecialToken(config, "unk_token", configFile) ?? "[UNK]",
                ClsToken = SpecialToken(config, "cls_token", configFile) ?? "[CLS]",
                SepToken = SpecialToken(config, "sep_token", configFile) ?? "[SEP]",
                PadToken = pad ?? "[PAD]",
                MaskToken = SpecialToken(config, "mask_token", configFile) ?? "[MASK]",
                ModelMaxLength = maxLength,
            };
            return new TokenizerDefinition(WordPiece(vocabTxt, settings), $"{vocabTxt} ({settings.Describe()})", maxLength, settings.PadToken);
        }
        var vocabJson = Path.Combine(folder, VocabJson);
        var merges = Path.Combine(folder, MergesTxt);
        if (File.Exists(vocabJson) && File.Exists(merges))
            return new TokenizerDefinition(ByteLevelBpe(vocabJson, merges, config, configFile), $"{vocabJson} + {MergesTxt}", maxLength,
                pad ?? (IsRobertaStyle(config) ? "<pad>" : null));
        if (File.Exists(vocabJson))
            throw new FileNotFoundException($"{vocabJson} has no {MergesTxt} beside it: a byte-level BPE tokenizer needs both", merges);
        throw new FileNotFoundException(
            $"no tokenizer in {folder}: expected {TokenizerJson}, {VocabTxt} (WordPiece) or {VocabJson} with {MergesTxt} (byte-level BPE)", tokenizerJson);
    }

    /// <summary>A BERT WordPiece tokenizer.json, as transformers' BertConverter builds it.</summary>
    public static JsonObject WordPiece(string vocabPath, WordPieceSettings s)
    {
        var vocab = ReadVocabTxt(vocabPath);
        foreach (var t in new[] { s.UnkToken, s.ClsToken, s.SepToken })
            if (!vocab.ContainsKey(t)) throw new InvalidDataException($"{vocabPath}: the special token '{t}' is not in the vocabulary");
        var added = new JsonArray();
        foreach (var t in new[] { s.PadToken, s.UnkToken, s.ClsToken, s.SepToken, s.MaskToken }.Distinct().Where(vocab.ContainsKey).OrderBy(t => vocab[t]))
            added.Add(AddedToken(vocab[t], t));
        JsonObject Special(string t, int type) => new() { ["SpecialToken"] = new JsonObject { ["id"] = t, ["type_id"] = type } };
        JsonObject Sequence(string id, int type) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = type } };
        JsonObject SpecialEntry(string t) => new() { ["id"] = t, ["ids"] = new JsonArray(vocab[t]), ["tokens"] = new JsonArray(t) };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject
            {
                ["type"] = "BertNormalizer", ["clean_text"] = true, ["handle_chinese_chars"] = s.HandleChineseChars,
                ["strip_accents"] = s.StripAccents is bool b ? b : null, ["lowercase"] = s.LowerCase,
            },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
            ["post_processor"] = new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special(s.ClsToken, 0), Sequence("A", 0), Special(s.SepToken, 0)),
                ["pair"] = new JsonArray(Special(s.ClsToken, 0), Sequence("A", 0), Special(s.SepToken, 0), Sequence("B", 1), Special(s.SepToken, 1)),
                ["special_tokens"] = new JsonObject { [s.ClsToken] = SpecialEntry(s.ClsToken), [s.SepToken] = SpecialEntry(s.SepToken) },
            },
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "WordPiece", ["unk_token"] = s.UnkToken, ["continuing_subword_prefix"] = "##",
                ["max_input_chars_per_word"] = 100, ["vocab"] = ToJson(vocab),
            },
        };
    }

    /// <summary>
    /// A byte-level BPE tokenizer.json, as transformers' GPT2Converter and RobertaConverter build it: RoBERTa and
    /// BART (tokenizer_class RobertaTokenizer or BartTokenizer) wrap a text in &lt;s&gt; … &lt;/s&gt;, GPT-2 adds nothing.
    /// </summary>
    public static JsonObject ByteLevelBpe(string vocabPath, string mergesPath, JsonObject config, string configFile)
    {
        var vocabNode = ReadJson(vocabPath, optional: false) as JsonObject
            ?? throw new InvalidDataException($"{vocabPath}: expected a JSON object of token to id");
        var vocab = new Dictionary<string, int>();
        foreach (var (token, id) in vocabNode)
        {
            if (id is not JsonValue v || !v.TryGetValue<int>(out int i) || i < 0)
                throw new InvalidDataException($"{vocabPath}: token '{token}' has id {id?.ToJsonString() ?? "null"}, expected a non-negative integer");
            vocab[token] = i;
        }
        var merges = new JsonArray();
        int lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath))
        {
            lineNo++;
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2) throw new InvalidDataException($"{mergesPath}:{lineNo}: expected two tokens separated by one space, got '{line}'");
            merges.Add(line);
        }
        bool addPrefixSpace = Bool(config, "add_prefix_space", configFile) ?? false;
        bool roberta = IsRobertaStyle(config);
        // The tokenizer classes' own defaults, where the config does not name a special token.
        var defaults = roberta
            ? new Dictionary<string, string> { ["bos_token"] = "<s>", ["eos_token"] = "</s>", ["unk_token"] = "<unk>", ["sep_token"] = "</s>", ["pad_token"] = "<pad>", ["cls_token"] = "<s>", ["mask_token"] = "<mask>" }
            : new Dictionary<string, string> { ["bos_token"] = "<|endoftext|>", ["eos_token"] = "<|endoftext|>", ["unk_token"] = "<|endoftext|>" };
        var added = new JsonArray();
        foreach (var key in new[] { "bos_token", "pad_token", "eos_token", "unk_token", "sep_token", "cls_token", "mask_token" })
            if ((SpecialToken(config, key, configFile) ?? defaults.GetValueOrDefault(key)) is { } t && vocab.TryGetValue(t, out int id)
                && !added.Any(a => (int)a!["id"]! == id))
                added.Add(AddedToken(id, t, lstrip: key == "mask_token" && roberta));
        JsonNode postProcessor;
        if (roberta)
        {
            string cls = SpecialToken(config, "cls_token", configFile) ?? "<s>", sep = SpecialToken(config, "sep_token", configFile) ?? "</s>";
            foreach (var t in new[] { cls, sep })
                if (!vocab.ContainsKey(t)) throw new InvalidDataException($"{vocabPath}: the special token '{t}' is not in the vocabulary");
            postProcessor = new JsonObject
            {
                ["type"] = "RobertaProcessing", ["sep"] = new JsonArray(sep, vocab[sep]), ["cls"] = new JsonArray(cls, vocab[cls]),
                ["trim_offsets"] = true, ["add_prefix_space"] = addPrefixSpace,
            };
        }
        else postProcessor = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = false, ["use_regex"] = true };
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = addPrefixSpace, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = postProcessor,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "", ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false, ["byte_fallback"] = false, ["vocab"] = ToJson(vocab), ["merges"] = merges,
            },
        };
    }

    private static bool IsRobertaStyle(JsonObject config) =>
        config["tokenizer_class"] is JsonValue v && v.TryGetValue<string>(out var c)
        && (c.Contains("Roberta", StringComparison.OrdinalIgnoreCase) || c.Contains("Bart", StringComparison.OrdinalIgnoreCase));

    /// <summary>Token strings by id: the model's vocabulary and its added tokens.</summary>
    public static string[] IdToToken(JsonObject definition, string source)
    {
        var map = new Dictionary<int, string>();
        if (definition["model"]?["vocab"] is JsonObject vocab)
            foreach (var (token, id) in vocab) map[id!.GetValue<int>()] = token;
        else if (definition["model"]?["vocab"] is JsonArray unigram)  // Unigram: [[piece, score], ...]
            for (int i = 0; i < unigram.Count; i++) map[i] = unigram[i]![0]!.GetValue<string>();
        else throw new InvalidDataException($"{source}: the model has no vocabulary");
        if (definition["added_tokens"] is JsonArray added)
            foreach (var a in added) map[a!["id"]!.GetValue<int>()] = a["content"]!.GetValue<string>();
        if (map.Count == 0) throw new InvalidDataException($"{source}: the vocabulary is empty");
        var tokens = new string[map.Keys.Max() + 1];
        foreach (var (id, t) in map) tokens[id] = t;
        return tokens;
    }

    /// <summary>vocab.txt: one token a line, the id its line number (from 0).</summary>
    public static Dictionary<string, int> ReadVocabTxt(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"vocabulary {path} does not exist", path);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        int id = 0;
        foreach (var line in File.ReadLines(path))
        {
            // As transformers' load_vocab: a token repeated on a later line takes that line's id.
            vocab[line] = id++;
        }
        if (vocab.Count == 0) throw new InvalidDataException($"vocabulary {path} is empty");
        return vocab;
    }

    private static JsonObject ToJson(Dictionary<string, int> vocab)
    {
        var o = new JsonObject();
        foreach (var (token, id) in vocab.OrderBy(kv => kv.Value)) o[token] = id;
        return o;
    }

    private static JsonObject AddedToken(int id, string content, bool lstrip = false) => new()
    {
        ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = lstrip, ["rstrip"] = false,
        ["normalized"] = false, ["special"] = true,
    };

    private static JsonNode? ReadJson(string path, bool optional)
    {
        if (!File.Exists(path))
            return optional ? null : throw new FileNotFoundException($"{path} does not exist", path);
        try { return JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
    }

    private static bool? Bool(JsonObject config, string key, string file) => config[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var other => throw new InvalidDataException($"{file}: \"{key}\" is {other.ToJsonString()}, expected true, false or null"),
    };

    private static int? ModelMaxLength(JsonObject config, string file) => config["model_max_length"] switch
    {
        null => null,
        // transformers writes a huge sentinel (1e30) when the model sets no limit.
        JsonValue v when v.TryGetValue<double>(out var d) && d > 0 => d >= int.MaxValue ? null : (int)d,
        var other => throw new InvalidDataException($"{file}: \"model_max_length\" is {other.ToJsonString()}, expected a positive number"),
    };

    /// <summary>A special token in tokenizer_config.json: a string, or an AddedToken object with "content".</summary>
    private static string? SpecialToken(JsonObject config, string key, string file) => config[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        JsonObject o when o["content"] is JsonValue c && c.TryGetValue<string>(out var s) => s,
        var other => throw new InvalidDataException($"{file}: \"{key}\" is {other.ToJsonString()}, expected a token string"),
    };
}
