using System.CommandLine;
using System.Text;
using System.Text.Json;
using CoeffTune.Assets;
using CoeffTune.Assets.Datasets;
using CoeffTune.Embeddings;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench retrieval</c>: sentence embeddings put to their first use, retrieval, on Brown-corpus passages.</summary>
public static class RetrievalBenchCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "50 queries: a smoke run" };
        var outDir = new Option<string>("--out") { Description = "results folder", DefaultValueFactory = _ => "runs/bench/retrieval" };
        var cmd = new Command("retrieval", "Brown corpus: each document's first sentence retrieves its following passage among all documents' passages (recall@1, @10, MRR@10)") { quick, outDir };
        cmd.SetAction(p =>
        {
            var brown = Path.Combine(AssetCatalog.Ensure(DatasetAssets.Brown, log: Console.Error), DatasetAssets.BrownFolder);
            var results = RetrievalBenchmark.Run(RetrievalBenchmark.StandardCases, brown, p.GetValue(quick) ? 50 : null, Console.Out);
            var dir = p.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            string command = "./coefftune " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            var md = new StringBuilder();
            md.AppendLine("## retrieval").AppendLine();
            md.AppendLine($"Command: `{command}`. Brown corpus: each document's first sentence is the query; its passage is the same document's next sentences (at least {RetrievalBenchmark.PassageWords} words, the query left out), searched among the passages of all {results.FirstOrDefault()?.Queries} documents by cosine similarity.").AppendLine();
            md.AppendLine("| configuration | pooling | query prompt | recall@1 | recall@10 | MRR@10 |").AppendLine("|---|---|---|---:|---:|---:|");
            foreach (var r in results)
                md.AppendLine($"| {r.Label} | {r.Pooling} | {(r.Prompt is null ? "none" : $"\"{r.Prompt.Trim()}\"")} | {r.RecallAt1:P1} | {r.RecallAt10:P1} | {r.MrrAt10:F3} |");
            CoeffTune.IO.AtomicFile.WriteAllText(Path.Combine(dir, "retrieval.md"), md.ToString());
            var json = new
            {
                bench = "retrieval", command, queries = results.FirstOrDefault()?.Queries, passage_words = RetrievalBenchmark.PassageWords,
                results = results.Select(r => new { label = r.Label, model = r.Model, pooling = r.Pooling, prompt = r.Prompt, recall_at_1 = r.RecallAt1, recall_at_10 = r.RecallAt10, mrr_at_10 = r.MrrAt10, seconds = r.Seconds }),
            };
            CoeffTune.IO.AtomicFile.WriteAllText(Path.Combine(dir, "retrieval.json"), JsonSerializer.Serialize(json, new JsonSerializerOptions(Cli.Json) { WriteIndented = true }));
            Console.WriteLine(md);
            return 0;
        });
        return cmd;
    }
}
