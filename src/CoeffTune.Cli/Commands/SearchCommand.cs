using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using CoeffTune.Embeddings;
using CoeffTune.Text;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune search --corpus FILE QUERY...</c>: the corpus texts nearest to each query.</summary>
public static class SearchCommand
{
    public static Command Create()
    {
        var options = new EmbedCommand.EncoderOptions();
        var corpus = new Option<FileInfo>("--corpus") { Description = "texts to search: one per line, or JSONL with a \"text\" field; the vectors are cached beside it", Required = true };
        var top = new Option<int>("--top") { Description = "hits per query", DefaultValueFactory = _ => 5 };
        var json = new Option<bool>("--json") { Description = "print {\"queries\": [{\"query\", \"hits\": [{\"index\", \"score\", \"text\"}]}]}" };
        var queries = new Argument<string[]>("queries") { Description = "queries (the prompt, if any, is added to queries only)", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("search", "Find the texts of a corpus nearest to each query by the cosine similarity of their embeddings") { corpus, top, json, queries };
        options.AddTo(cmd);
        cmd.SetAction(p =>
        {
            int k = p.GetValue(top);
            if (k < 1) throw new ArgumentException($"--top must be at least 1, got {k}");
            var (encoder, prompt) = options.Load(p);
            using var _ = encoder;
            var modelName = p.GetValue(options.Model)!;
            var corpusPath = p.GetValue(corpus)!.FullName;
            var index = ConsoleProgress.Run($"embedding {Path.GetFileName(corpusPath)}", report =>
                EmbeddingIndex.Open(encoder, modelName, corpusPath, Console.Error, (done, total) => report((double)done / total, $"{done}/{total} texts")));
            Console.Error.WriteLine(index.FromCache ? $"vectors read from {index.CachePath}" : index.CachePath is null ? "vectors not cached" : $"vectors cached in {index.CachePath}");
            var qs = p.GetValue(queries)!;
            var vectors = encoder.Embed(qs, prompt);
            var results = qs.Select((q, i) => (Query: q, Hits: index.Search(vectors[i].Vector, k))).ToList();
            if (p.GetValue(json))
            {
                var doc = new
                {
                    model = modelName, pooling = encoder.Config.Describe(), prompt, corpus = corpusPath, texts = index.Texts.Count,
                    queries = results.Select(r => new { query = r.Query, hits = r.Hits.Select(h => new { index = h.Index, score = h.Score, text = h.Text }) }),
                };
                Console.WriteLine(JsonSerializer.Serialize(doc, Cli.Json));
                return 0;
            }
            Console.WriteLine($"{modelName}: {encoder.Config.Describe()}" + (prompt is null ? "" : $"; query prompt \"{TerminalText.Quote(prompt)}\"") + $"; {index.Texts.Count} texts");
            foreach (var (q, hits) in results)
            {
                Console.WriteLine($"query: {TerminalText.Quote(q)}");
                foreach (var h in hits)
                {
                    var text = TerminalText.Quote(h.Text);
                    if (text.Length > 100) text = text[..97] + "...";
                    Console.WriteLine($"  {h.Score.ToString("F4", CultureInfo.InvariantCulture)}  [{h.Index}] {text}");
                }
            }
            return 0;
        });
        return cmd;
    }
}
