using System.Diagnostics;
using CoeffTune.Data;
using CoeffTune.Models;

namespace CoeffTune.Embeddings;

/// <summary>One configuration measured: a model, its pooling (null: the model's own) and whether queries carry the model's query prompt.</summary>
public sealed record RetrievalCase(string Label, string Model, Pooling? Pooling = null, bool QueryPrompt = false);

public sealed record RetrievalResult(string Label, string Model, string Pooling, string? Prompt, int Queries,
    double RecallAt1, double RecallAt10, double MrrAt10, double Seconds);

/// <summary>
/// Retrieval on the Brown corpus, a task that can be built offline: each document's first sentence is a
/// query, and the passage it should find is the same document's following sentences (about 100 words, the
/// query sentence left out), among the passages of all documents. Recall@1, recall@10 and MRR@10.
/// </summary>
public static class RetrievalBenchmark
{
    public const int PassageWords = 100;

    /// <summary>The queries and passages (the passage of query i is passage i), from the Brown asset folder.</summary>
    public static (List<string> Queries, List<string> Passages) BrownPairs(string brownRoot, int? limit = null)
    {
        var docs = BrownCorpusReader.ReadCategories(Path.Combine(brownRoot, "cats.txt"));
        var queries = new List<string>();
        var passages = new List<string>();
        foreach (var (doc, _) in docs)
        {
            var sentences = File.ReadAllText(Path.Combine(brownRoot, doc)).Split('\n')
                .Select(l => l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
                .Where(t => t.Length > 0)
                .Select(t => string.Join(' ', t.Select(BrownCorpusReader.Untag)))
                .ToList();
            if (sentences.Count < 3) continue;
            var passage = new List<string>();
            int words = 0;
            foreach (var s in sentences.Skip(1))
            {
                passage.Add(s);
                words += s.Count(c => c == ' ') + 1;
                if (words >= PassageWords) break;
            }
            queries.Add(sentences[0]);
            passages.Add(string.Join(' ', passage));
            if (limit is int n && queries.Count >= n) break;
        }
        return (queries, passages);
    }

    public static List<RetrievalResult> Run(IReadOnlyList<RetrievalCase> cases, string brownRoot, int? limit = null, TextWriter? log = null)
    {
        var (queries, passages) = BrownPairs(brownRoot, limit);
        log?.WriteLine($"Brown retrieval: {queries.Count} queries, {passages.Count} passages");
        var results = new List<RetrievalResult>();
        foreach (var group in cases.GroupBy(c => (c.Model, c.Pooling)))
        {
            var clock = Stopwatch.StartNew();
            using var encoder = SentenceEncoder.Load(group.Key.Model, pooling: group.Key.Pooling, log: log);
            var index = EmbeddingIndex.FromVectors(passages, encoder.Embed(passages).Select(e => e.Vector));
            double passageSeconds = clock.Elapsed.TotalSeconds;
            foreach (var c in group)
            {
                var queryClock = Stopwatch.StartNew();
                var prompt = c.QueryPrompt ? encoder.Config.Prompt("query") : null;
                var vectors = encoder.Embed(queries, prompt);
                int hit1 = 0, hit10 = 0;
                double mrr = 0;
                for (int i = 0; i < queries.Count; i++)
                {
                    var hits = index.Search(vectors[i].Vector, 10);
                    int rank = hits.ToList().FindIndex(h => h.Index == i);
                    if (rank == 0) hit1++;
                    if (rank >= 0) { hit10++; mrr += 1.0 / (rank + 1); }
                }
                var r = new RetrievalResult(c.Label, c.Model, SentencePooling.Name(encoder.Config.Pooling), prompt, queries.Count,
                    (double)hit1 / queries.Count, (double)hit10 / queries.Count, mrr / queries.Count, passageSeconds + queryClock.Elapsed.TotalSeconds);
                log?.WriteLine($"{c.Label}: recall@1 {r.RecallAt1:P1}, recall@10 {r.RecallAt10:P1}, MRR@10 {r.MrrAt10:F3} ({r.Seconds:F0} s)");
                results.Add(r);
            }
        }
        return results;
    }

    /// <summary>The configurations fixed for the published table: each model as defined, arctic-xs with and without its query prompt, and arctic-xs mean-pooled (how it was pooled before its configuration was read).</summary>
    public static IReadOnlyList<RetrievalCase> StandardCases { get; } =
    [
        new("minilm", "minilm"),
        new("arctic-xs", "arctic-xs"),
        new("arctic-xs + query prompt", "arctic-xs", QueryPrompt: true),
        new("arctic-xs, mean pooling (wrong) + query prompt", "arctic-xs", Pooling.Mean, QueryPrompt: true),
    ];
}
