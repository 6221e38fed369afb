using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Text;

/// <summary>One text as the model sees it: ids with the model's special tokens, and whether it was cut.</summary>
/// <param name="Ids">Token ids, special tokens included, at most <see cref="TextTokenizer.MaxLength"/> long.</param>
/// <param name="FullLength">How many ids the text has before cutting.</param>
public sealed record TokenizedText(int[] Ids, int FullLength)
{
    public bool Truncated => FullLength > Ids.Length;
}

/// <summary>
/// Tokenization identical to Hugging Face's: the model's <c>tokenizer.json</c> is run by Hugging Face's own
/// Rust tokenizers library (through Tokenizers.DotNet), so normalisation, pre-tokenisation, WordPiece or
/// byte-level BPE, added tokens and the special-token template are exactly the ones the model was trained
/// with. Folders that have no tokenizer.json (vocab.txt, or vocab.json with merges.txt) are converted the way
/// transformers converts them, with every setting read from <c>tokenizer_config.json</c>; see
/// <see cref="TokenizerFiles"/>. Texts longer than <see cref="MaxLength"/> keep their leading tokens and the
/// template's special tokens, as Hugging Face's truncation of a single sequence does.
/// </summary>
public sealed class TextTokenizer : IDisposable
{
    private readonly Tokenizers.DotNet.Tokenizer native;
    private readonly string[] tokens;
    private readonly int prefix;
    private readonly int suffix;

    /// <summary>Longest sequence kept, special tokens included; longer texts are cut.</summary>
    public int MaxLength { get; }
    /// <summary>The longest sequence the model's own files allow (<c>model_max_length</c>), when they say.</summary>
    public int? ModelMaxLength { get; }
    /// <summary>Id used to pad a batch (the model's pad token, else 0: padded positions are masked out).</summary>
    public int PadId { get; }
    public int VocabSize => tokens.Length;
    /// <summary>Where the definition came from, e.g. "tokenizer.json" or "vocab.txt + published settings".</summary>
    public string Source { get; }
    /// <summary>The normalised tokenizer.json that Hugging Face's library runs.</summary>
    public JsonObject Definition { get; }

    /// <summary>A tokenizer from a tokenizer.json definition (its truncation and padding are ignored: this class cuts and pads).</summary>
    public TextTokenizer(JsonObject definition, string source, int? maxLength = null, int? modelMaxLength = null, string? padToken = null)
    {
        Definition = (JsonObject)definition.DeepClone();
        Definition["truncation"] = null;
        Definition["padding"] = null;
        Source = source;
        tokens = TokenizerFiles.IdToToken(Definition, source);
        ModelMaxLength = modelMaxLength;
        int max = maxLength ?? modelMaxLength ?? 512;
        if (modelMaxLength is int limit && max > limit)
            throw new ArgumentOutOfRangeException(nameof(maxLength), max, $"the tokenizer ({source}) allows at most {limit} tokens");
        native = LoadNative(Definition, source);
        var empty = EncodeFull("");
        var probe = EncodeFull("a");
        prefix = 0;
        while (prefix < empty.Length && prefix < probe.Length && empty[prefix] == probe[prefix]) prefix++;
        suffix = empty.Length - prefix;
        if (max < prefix + suffix + 1)
            throw new ArgumentOutOfRangeException(nameof(maxLength), max, $"max length must leave room for the {prefix + suffix} special tokens and one more");
        MaxLength = max;
        PadId = padToken is not null && TokenId(padToken) is int pad ? pad : 0;
    }

    /// <summary>
    /// The tokenizer of a model folder: tokenizer.json if present, else vocab.txt (WordPiece) or
    /// vocab.json + merges.txt (byte-level BPE), with tokenizer_config.json for settings and special tokens.
    /// </summary>
    public static TextTokenizer FromFolder(string folder, int? maxLength = null)
    {
        var files = TokenizerFiles.Read(folder);
        return new TextTokenizer(files.Definition, files.Source, maxLength, files.ModelMaxLength, files.PadToken);
    }

    /// <summary>A WordPiece tokenizer from a vocab.txt with settings given explicitly (for models whose package ships only the vocabulary).</summary>
    public static TextTokenizer FromWordPiece(string vocabPath, WordPieceSettings settings, int? maxLength = null)
    {
        var definition = TokenizerFiles.WordPiece(vocabPath, settings);
        return new TextTokenizer(definition, $"{vocabPath} ({settings.Describe()})", maxLength, settings.ModelMaxLength, settings.PadToken);
    }

    /// <summary>The token string of an id, as Hugging Face's convert_ids_to_tokens gives it.</summary>
    public string Token(int id) =>
        id >= 0 && id < tokens.Length && tokens[id] is { } t ? t : throw new ArgumentOutOfRangeException(nameof(id), id, $"not an id of this vocabulary of {tokens.Length}");

    /// <summary>The id of a token string, or null when the vocabulary lacks it.</summary>
    public int? TokenId(string token)
    {
        int i = Array.IndexOf(tokens, token);
        return i >= 0 ? i : null;
    }

    /// <summary>Token ids of one text with the model's special tokens, cut to <see cref="MaxLength"/>.</summary>
    public int[] Encode(string text) => Tokenize(text).Ids;

    /// <summary>Token ids of one text and its length before cutting.</summary>
    public TokenizedText Tokenize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var full = EncodeFull(text);
        if (full.Length <= MaxLength) return new TokenizedText(full, full.Length);
        var cut = new int[MaxLength];
        Array.Copy(full, cut, MaxLength - suffix);
        Array.Copy(full, full.Length - suffix, cut, MaxLength - suffix, suffix);
        return new TokenizedText(cut, full.Length);
    }

    /// <summary>
    /// The text of <paramref name="ids"/> as Hugging Face's decode gives it with skip_special_tokens: the special tokens
    /// (added tokens marked special: &lt;s&gt;, &lt;pad&gt;, [CLS], ...) left out, the rest joined by the tokenizer's
    /// decoder (byte-level BPE: bytes back to UTF-8; WordPiece: "##" pieces joined).
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        var kept = ids.Where(id => !SpecialIds.Contains(id)).Select(id =>
            id >= 0 && id < tokens.Length ? checked((uint)id) : throw new ArgumentOutOfRangeException(nameof(ids), id, $"not an id of this vocabulary of {tokens.Length}")).ToArray();
        lock (NativeLock) return native.Decode(kept);
    }

    private HashSet<int>? specialIds;

    /// <summary>Ids of the added tokens marked special in the definition.</summary>
    public IReadOnlySet<int> SpecialIds => specialIds ??= (Definition["added_tokens"] as JsonArray ?? new JsonArray())
        .OfType<JsonObject>().Where(t => t["special"] is JsonValue v && v.TryGetValue<bool>(out var s) && s)
        .Select(t => t["id"]!.GetValue<int>()).ToHashSet();

    /// <summary>How many of <paramref name="texts"/> are longer than <see cref="MaxLength"/> and get cut.</summary>
    public int CountTruncated(IEnumerable<string> texts) => texts.Count(t => EncodeFull(t).Length > MaxLength);

    /// <summary>A padded batch: ids padded with the pad id, mask 1 on real tokens, token types all 0 (one segment).</summary>
    public Batch EncodeBatch(IReadOnlyList<string> texts, Device? device = null)
    {
        if (texts.Count == 0) throw new ArgumentException("no texts to encode");
        var encoded = texts.Select(Encode).ToArray();
        int n = encoded.Max(e => e.Length);
        var ids = new long[texts.Count * n];
        var mask = new long[texts.Count * n];
        for (int b = 0; b < encoded.Length; b++)
            for (int i = 0; i < n; i++)
            {
                bool real = i < encoded[b].Length;
                ids[b * n + i] = real ? encoded[b][i] : PadId;
                mask[b * n + i] = real ? 1 : 0;
            }
        long[] shape = { texts.Count, n };
        device ??= CPU;
        return new Batch(tensor(ids, shape).to(device), tensor(mask, shape).to(device), zeros(shape, ScalarType.Int64, device));
    }

    /// <summary>Nothing to release: the native tokenizer is shared by every tokenizer of the same definition and lives with the process.</summary>
    public void Dispose() { }

    private int[] EncodeFull(string text)
    {
        uint[] ids;
        lock (NativeLock) ids = native.Encode(text);
        var result = new int[ids.Length];
        for (int i = 0; i < ids.Length; i++) result[i] = checked((int)ids[i]);
        return result;
    }

    /// <summary>
    /// Every call into the native binding is made under this lock. The binding keeps its tokenizers in a
    /// process-wide table that its finalizers also change; one native tokenizer per definition, never
    /// finalized and only used under the lock, keeps that table from being changed while another thread reads it.
    /// </summary>
    private static readonly object NativeLock = new();
    private static readonly Dictionary<string, Tokenizers.DotNet.Tokenizer> Natives = new();

    /// <summary>Hugging Face's library reads a file: the definition is written once, named by its hash, to a temp folder.</summary>
    private static Tokenizers.DotNet.Tokenizer LoadNative(JsonObject definition, string source)
    {
        var bytes = Encoding.UTF8.GetBytes(definition.ToJsonString());
        var hash = Convert.ToHexStringLower(SHA256.HashData(bytes));
        lock (NativeLock)
        {
            if (Natives.TryGetValue(hash, out var cached)) return cached;
            var dir = Path.Combine(Path.GetTempPath(), "coefftune-tokenizers");
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, hash + ".json");
            if (!File.Exists(path) || new FileInfo(path).Length != bytes.Length)
                IO.AtomicFile.WriteAllBytes(path, bytes);
            Tokenizers.DotNet.Tokenizer native;
            try { native = new Tokenizers.DotNet.Tokenizer(vocabPath: path); }
            catch (Tokenizers.DotNet.TokenizerException e)
            {
                throw new InvalidDataException($"{source}: Hugging Face's tokenizers library refused the definition ({e.Message})", e);
            }
            GC.SuppressFinalize(native);
            Natives[hash] = native;
            return native;
        }
    }
}
