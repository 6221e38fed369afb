using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using CoeffTune.Assets;
using CoeffTune.Assets.Datasets;
using CoeffTune.Embeddings;

namespace CoeffTune.Benchmarks;

/// <summary>The retrieval bench's outcome and the files it wrote.</summary>
public sealed record RetrievalReport(IReadOnlyList<RetrievalResult> Results, string Markdown, string MarkdownPath, string JsonPath);

/// <summary>
/// Sentence embeddings put to their first use, retrieval, on Brown-corpus passages (<see cref="RetrievalBenchmark"/>):
/// every standard case, then retrieval.md and retrieval.json.
/// </summary>
public static class RetrievalBench
{
    public const string MarkdownFile = "retrieval.md";
    public const string JsonFile = "retrieval.json";
    /// <summary>Queries of a quick run.</summary>
    public const int QuickQueries = 50;

    /// <summary>Runs <see cref="RetrievalBenchmark.StandardCases"/> (quick: on the first 50 queries) and writes the report into <paramref name="outDir"/>.</summary>
    public static RetrievalReport Run(bool quick, string outDir, string command, TextWriter log, TextWriter? fetchLog = null, AssetCache? cache = null)
    {
        var brown = Path.Combine(AssetCatalog.Ensure(DatasetAssets.Brown, cache, fetchLog), DatasetAssets.BrownFolder);
        var results = RetrievalBenchmark.Run(RetrievalBenchmark.StandardCases, brown, quick ? QuickQueries : null, log);
        Directory.CreateDirectory(outDir);
        var md = new StringBuilder();
        md.AppendLine("## retrieval").AppendLine();
        md.AppendLine($"Command: `{command}`. Brown corpus: each document's first sentence is the query; its passage is the same document's next sentences (at least {RetrievalBenchmark.PassageWords} words, the query left out), searched among the passages of all {results.FirstOrDefault()?.Queries} documents by cosine similarity.").AppendLine();
        md.AppendLine("| configuration | pooling | query prompt | recall@1 | recall@10 | MRR@10 |").AppendLine("|---|---|---|---:|---:|---:|");
        foreach (var r in results)
            md.AppendLine($"| {r.Label} | {r.Pooling} | {(r.Prompt is null ? "none" : $"\"{r.Prompt.Trim()}\"")} | {r.RecallAt1:P1} | {r.RecallAt10:P1} | {r.MrrAt10:F3} |");
        var mdPath = Path.Combine(outDir, MarkdownFile);
        var jsonPath = Path.Combine(outDir, JsonFile);
        IO.AtomicFile.WriteAllText(mdPath, md.ToString());
        var json = new
        {
            bench = "retrieval", command, queries = results.FirstOrDefault()?.Queries, passage_words = RetrievalBenchmark.PassageWords,
            results = results.Select(r => new { label = r.Label, model = r.Model, pooling = r.Pooling, prompt = r.Prompt, recall_at_1 = r.RecallAt1, recall_at_10 = r.RecallAt10, mrr_at_10 = r.MrrAt10, seconds = r.Seconds }),
        };
        // Prompts and labels stay readable (still valid, escaped JSON where it must be).
        var options = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, WriteIndented = true };
        IO.AtomicFile.WriteAllText(jsonPath, JsonSerializer.Serialize(json, options));
        return new RetrievalReport(results, md.ToString(), mdPath, jsonPath);
    }
}
