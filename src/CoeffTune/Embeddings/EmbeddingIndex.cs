using System.Security.Cryptography;
using System.Text;
using CoeffTune.Data;
using CoeffTune.IO;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Embeddings;

/// <summary>One search hit: the corpus entry's index, its text, and the cosine similarity to the query.</summary>
public sealed record SearchHit(int Index, string Text, double Score);

/// <summary>
/// A corpus embedded once, searched by cosine similarity. The vectors are cached beside the corpus file,
/// named by a hash of the corpus bytes and of everything that changes a vector (model, pooling, normalisation,
/// length), so an edited corpus or another setting is embedded anew.
/// </summary>
public sealed class EmbeddingIndex
{
    public IReadOnlyList<string> Texts { get; }
    /// <summary>Unit vectors, one row per text.</summary>
    private readonly float[][] vectors;
    /// <summary>The cache file used, or null when none could be written.</summary>
    public string? CachePath { get; }
    public bool FromCache { get; }

    private EmbeddingIndex(IReadOnlyList<string> texts, float[][] vectors, string? cachePath, bool fromCache)
    {
        Texts = texts;
        this.vectors = vectors;
        CachePath = cachePath;
        FromCache = fromCache;
    }

    /// <summary>The texts of a corpus file: .jsonl (a "text" field per line), else one non-blank line per text.</summary>
    public static List<string> ReadCorpus(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"corpus {path} does not exist", path);
        if (path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) return TextFileReader.ReadJsonlTexts(path);
        var texts = new List<string>();
        try
        {
            foreach (var line in File.ReadLines(path, new UTF8Encoding(false, throwOnInvalidBytes: true)))
                if (!string.IsNullOrWhiteSpace(line)) texts.Add(line.Trim());
        }
        catch (DecoderFallbackException) { throw DataFiles.BadEncoding(path); }
        if (texts.Count == 0) throw new InvalidDataException($"{path}: no texts (one per line, or JSONL with a \"text\" field)");
        return texts;
    }

    /// <summary>Embeds the corpus at <paramref name="corpusPath"/> with <paramref name="encoder"/>, or reads the cached vectors.</summary>
    public static EmbeddingIndex Open(SentenceEncoder encoder, string modelName, string corpusPath, TextWriter? log = null, Action<int, int>? progress = null)
    {
        var texts = ReadCorpus(corpusPath);
        var key = CacheKey(encoder, modelName, File.ReadAllBytes(corpusPath));
        var cache = $"{corpusPath}.{Slug(modelName)}-{key}.embeddings.safetensors";
        if (File.Exists(cache))
        {
            try
            {
                var loaded = CoeffTune.IO.SafetensorsFile.Load(cache);
                using var m = loaded["embeddings"];
                if (m.shape[0] == texts.Count && m.shape[1] == encoder.Dimensions)
                {
                    var data = m.data<float>().ToArray();
                    int d = encoder.Dimensions;
                    return new EmbeddingIndex(texts, Enumerable.Range(0, texts.Count).Select(i => data.AsSpan(i * d, d).ToArray()).ToArray(), cache, true);
                }
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                log?.WriteLine($"note: ignoring unreadable cache {cache} ({e.Message}); embedding anew");
            }
        }
        var embedded = encoder.Embed(texts, prompt: null, progress: done => progress?.Invoke(done, texts.Count));
        var vectors = embedded.Select(e => Unit(e.Vector)).ToArray();
        string? written = cache;
        try
        {
            using var m = tensor(vectors.SelectMany(v => v).ToArray(), new long[] { texts.Count, encoder.Dimensions });
            AtomicFile.Write(cache, tmp => Safetensors.SaveStateDict(tmp, new Dictionary<string, Tensor> { ["embeddings"] = m }));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log?.WriteLine($"note: cannot cache the vectors beside the corpus ({e.Message}); they are embedded again next time");
            written = null;
        }
        return new EmbeddingIndex(texts, vectors, written, false);
    }

    /// <summary>An index of vectors already computed (tests, benchmarks).</summary>
    public static EmbeddingIndex FromVectors(IReadOnlyList<string> texts, IEnumerable<float[]> vectors) =>
        new(texts, vectors.Select(Unit).ToArray(), null, false);

    /// <summary>The <paramref name="k"/> texts nearest to <paramref name="query"/> by cosine similarity, best first.</summary>
    public IReadOnlyList<SearchHit> Search(float[] query, int k)
    {
        if (k < 1) throw new ArgumentOutOfRangeException(nameof(k), k, "k must be at least 1");
        var q = Unit(query);
        if (q.Length != vectors[0].Length) throw new ArgumentException($"query has {q.Length} dims, the index {vectors[0].Length}");
        return vectors.Select((v, i) => (i, score: Dot(q, v)))
            .OrderByDescending(x => x.score).ThenBy(x => x.i).Take(k)
            .Select(x => new SearchHit(x.i, Texts[x.i], x.score)).ToList();
    }

    private static string CacheKey(SentenceEncoder encoder, string modelName, byte[] corpus)
    {
        var c = encoder.Config;
        var settings = $"{modelName}|{c.Pooling}|{c.IncludePrompt}|{c.Normalize}|{c.DoLowerCase}|{encoder.Tokenizer.MaxLength}|{encoder.Tokenizer.Source}";
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(corpus);
        sha.AppendData(Encoding.UTF8.GetBytes(settings));
        return Convert.ToHexStringLower(sha.GetHashAndReset())[..16];
    }

    private static string Slug(string name) =>
        new string(Path.GetFileNameWithoutExtension(name).Select(ch => char.IsLetterOrDigit(ch) || ch is '-' or '_' ? ch : '_').ToArray());

    /// <summary>The vector scaled to unit length (a zero vector stays zero).</summary>
    public static float[] Unit(float[] v)
    {
        double norm = Math.Sqrt(v.Sum(x => (double)x * x));
        return v.Select(x => (float)(x / Math.Max(norm, 1e-12))).ToArray();
    }

    public static double Dot(float[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += (double)a[i] * b[i];
        return s;
    }
}
