using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Models;

namespace CoeffTune.Embeddings;

/// <summary>
/// How a sentence-transformers model turns text into one vector, as its own files define it: the pooling
/// (<c>1_Pooling/config.json</c>), whether a <c>Normalize</c> module follows, the longest input
/// (<c>sentence_bert_config.json</c>'s <c>max_seq_length</c>), lower-casing of the input text (its
/// <c>do_lower_case</c>), and the named prompts (<c>config_sentence_transformers.json</c>).
/// </summary>
public sealed record SentenceTransformerConfig
{
    public Pooling Pooling { get; init; } = Pooling.Mean;
    /// <summary>False: the prompt's tokens are left out of mask-based pooling (pooling_mode's include_prompt).</summary>
    public bool IncludePrompt { get; init; } = true;
    public bool Normalize { get; init; }
    public int? MaxSeqLength { get; init; }
    /// <summary>sentence-transformers lower-cases the text itself before tokenizing when this is set.</summary>
    public bool DoLowerCase { get; init; }
    public IReadOnlyDictionary<string, string> Prompts { get; init; } = new Dictionary<string, string>();
    public string? DefaultPromptName { get; init; }

    public const string ModulesJson = "modules.json";
    public const string SentenceBertConfigJson = "sentence_bert_config.json";
    public const string ConfigSentenceTransformersJson = "config_sentence_transformers.json";

    /// <summary>all-MiniLM-L6-v2 as published: mean pooling, normalised, 256 tokens.</summary>
    public static SentenceTransformerConfig MiniLM { get; } = new() { Pooling = Pooling.Mean, Normalize = true, MaxSeqLength = 256 };

    /// <summary>snowflake-arctic-embed-xs as published: CLS pooling, normalised, 512 tokens, and a query prompt for retrieval.</summary>
    public static SentenceTransformerConfig ArcticEmbedXs { get; } = new()
    {
        Pooling = Pooling.Cls, Normalize = true, MaxSeqLength = 512,
        Prompts = new Dictionary<string, string> { ["query"] = "Represent this sentence for searching relevant passages: " },
    };

    public string Describe() =>
        $"{SentencePooling.Name(Pooling)} pooling{(IncludePrompt ? "" : " without the prompt")}, {(Normalize ? "L2-normalised" : "not normalised")}" +
        (MaxSeqLength is int m ? $", at most {m} tokens" : "");

    /// <summary>The text of a named prompt; the error names the model's prompts.</summary>
    public string Prompt(string name) => Prompts.TryGetValue(name, out var p) ? p
        : throw new ArgumentException($"no prompt named '{name}'; the model has {(Prompts.Count == 0 ? "none" : string.Join(", ", Prompts.Keys))}");

    /// <summary>
    /// Reads a sentence-transformers model folder; null when the folder has no modules.json (not a
    /// sentence-transformers folder). A file that is present but malformed is an error naming it and the key.
    /// </summary>
    public static SentenceTransformerConfig? Read(string folder)
    {
        var modulesPath = Path.Combine(folder, ModulesJson);
        if (!File.Exists(modulesPath)) return null;
        var modules = ReadJson(modulesPath) as JsonArray ?? throw new InvalidDataException($"{modulesPath}: expected a JSON array of modules");
        string? poolingDir = null;
        bool normalize = false;
        for (int i = 0; i < modules.Count; i++)
        {
            var type = Str(modules[i]?["type"], modulesPath, $"[{i}].type");
            var path = modules[i]?["path"] is JsonNode p ? Str(p, modulesPath, $"[{i}].path") : "";
            if (type.EndsWith(".Pooling", StringComparison.Ordinal)) poolingDir = Path.Combine(folder, path);
            else if (type.EndsWith(".Normalize", StringComparison.Ordinal)) normalize = true;
        }
        var config = new SentenceTransformerConfig { Normalize = normalize };
        if (poolingDir is not null)
        {
            var poolingPath = Path.Combine(poolingDir, "config.json");
            var o = ReadJson(poolingPath) as JsonObject ?? throw new InvalidDataException($"{poolingPath}: expected a JSON object");
            config = config with { Pooling = ReadPooling(o, poolingPath), IncludePrompt = Bool(o, "include_prompt", poolingPath) ?? true };
        }
        var bertPath = Path.Combine(folder, SentenceBertConfigJson);
        if (File.Exists(bertPath))
        {
            var o = ReadJson(bertPath) as JsonObject ?? throw new InvalidDataException($"{bertPath}: expected a JSON object");
            config = config with
            {
                MaxSeqLength = o["max_seq_length"] is JsonNode m ? PositiveInt(m, bertPath, "max_seq_length") : null,
                DoLowerCase = Bool(o, "do_lower_case", bertPath) ?? false,
            };
        }
        var stPath = Path.Combine(folder, ConfigSentenceTransformersJson);
        if (File.Exists(stPath))
        {
            var o = ReadJson(stPath) as JsonObject ?? throw new InvalidDataException($"{stPath}: expected a JSON object");
            var prompts = new Dictionary<string, string>();
            if (o["prompts"] is JsonObject ps)
                foreach (var (name, text) in ps) prompts[name] = Str(text, stPath, $"prompts.{name}");
            else if (o["prompts"] is not null) throw new InvalidDataException($"{stPath}: \"prompts\" must be an object of name to text");
            string? defaultName = o["default_prompt_name"] is JsonNode d ? Str(d, stPath, "default_prompt_name") : null;
            if (defaultName is not null && !prompts.ContainsKey(defaultName))
                throw new InvalidDataException($"{stPath}: default_prompt_name '{defaultName}' is not one of the prompts");
            config = config with { Prompts = prompts, DefaultPromptName = defaultName };
        }
        return config;
    }

    /// <summary>pooling_mode (newer files) or the pooling_mode_*_tokens flags (older ones); exactly one mode.</summary>
    private static Pooling ReadPooling(JsonObject o, string path)
    {
        if (o["pooling_mode"] is JsonNode mode)
        {
            try { return SentencePooling.Parse(Str(mode, path, "pooling_mode"), path); }
            catch (ArgumentException e) { throw new InvalidDataException($"{e.Message} in \"pooling_mode\""); }
        }
        var flags = new (string Key, Pooling Mode)[]
        {
            ("pooling_mode_cls_token", Pooling.Cls), ("pooling_mode_mean_tokens", Pooling.Mean), ("pooling_mode_max_tokens", Pooling.Max),
            ("pooling_mode_mean_sqrt_len_tokens", Pooling.MeanSqrtLen), ("pooling_mode_lasttoken", Pooling.LastToken),
        };
        var on = flags.Where(f => Bool(o, f.Key, path) == true).ToList();
        if (on.Count != 1)
            throw new InvalidDataException($"{path}: expected exactly one pooling_mode_* flag to be true, found {(on.Count == 0 ? "none" : string.Join(", ", on.Select(f => f.Key)))}");
        return on[0].Mode;
    }

    private static JsonNode? ReadJson(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist", path);
        try { return JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e); }
    }

    private static string Str(JsonNode? n, string path, string key) =>
        n is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new InvalidDataException($"{path}: \"{key}\" must be a string, got {n?.ToJsonString() ?? "null"}");

    private static bool? Bool(JsonObject o, string key, string path) => o[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        var other => throw new InvalidDataException($"{path}: \"{key}\" must be true or false, got {other.ToJsonString()}"),
    };

    private static int PositiveInt(JsonNode n, string path, string key) =>
        n is JsonValue v && v.TryGetValue<int>(out var i) && i > 0 ? i : throw new InvalidDataException($"{path}: \"{key}\" must be a positive integer, got {n.ToJsonString()}");
}
