using System.CommandLine;
using System.Text;
using System.Text.Json;
using CoeffTune.Cli.Bench;
using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench cost</c>: step time and step memory of each method with and without coeff.</summary>
public static class CostBenchCommand
{
    public static readonly string[] Recipes =
    {
        "linear", "coeff", "linear+explicit-maps", "lora", "coeff+lora", "coeff+lora" + CostBench.StoredMapsSuffix, "ssf", "coeff+ssf",
        "full", "coeff+full", "coeff+full" + CostBench.StoredMapsSuffix,
    };

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "small models and 3 rounds: a smoke run" };
        var steps = new Option<int>("--steps") { Description = "measured steps per configuration (median reported)", DefaultValueFactory = _ => 10 };
        var outDir = new Option<string>("--out") { Description = "results folder", DefaultValueFactory = _ => "runs/bench/cost" };
        var only = new Option<string[]>("--recipes") { Description = "measure only these recipes (default: all); a coeff recipe needs its base recipe too, for the ratio", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("cost", "Time and memory per training step of each method with and without coeff (ViT-B/16 and MiniLM shapes), and achieved GFLOP/s") { quick, steps, outDir, only };
        cmd.SetAction(p =>
        {
            bool q = p.GetValue(quick);
            int n = q ? 3 : p.GetValue(steps);
            if (n < 1) throw new ArgumentException($"--steps must be at least 1, got {n}");
            var vit = q ? new VitConfig { ImageSize = 32, PatchSize = 8, Dim = 96, Depth = 2, Heads = 12, MlpDim = 192, Classes = 10 } : VitConfig.Base16(classes: 10);
            var bert = q ? BertConfig.MiniLM(2) with { Depth = 2, VocabSize = 1000 } : BertConfig.MiniLM(2);
            int vitBatch = q ? 2 : 4, bertBatch = q ? 4 : 16, tokens = q ? 32 : 128;
            var models = new List<(string, Func<TransformerClassifier>, Func<Batch>, long)>
            {
                ($"ViT-B/16 shape{(q ? " (quick: small)" : "")}, batch {vitBatch}", () => new VisionTransformer(vit),
                    () => new Batch(rand(vitBatch, 3, vit.ImageSize, vit.ImageSize), Labels: randint(0, 10, new long[] { vitBatch })), vit.Patches + 1),
                ($"MiniLM shape{(q ? " (quick: 2 layers)" : "")}, batch {bertBatch} x {tokens} tokens", () => new BertClassifier(bert),
                    () => new Batch(randint(0, bert.VocabSize, new long[] { bertBatch, tokens }), ones(bertBatch, tokens, ScalarType.Int64), Labels: randint(0, 2, new long[] { bertBatch })), tokens),
            };
            var recipes = p.GetValue(only) is { Length: > 0 } chosen ? chosen : Recipes;
            foreach (var r in recipes)
                if (!Recipes.Contains(r))
                    throw new ArgumentException($"--recipes: unknown recipe '{r}'; choose from {string.Join(", ", Recipes.Select(x => $"'{x}'"))}");
            foreach (var r in recipes.Where(r => r.StartsWith("coeff")))
            {
                var baseRecipe = BaseRecipe(r);
                if (!recipes.Contains(baseRecipe))
                    throw new ArgumentException($"--recipes: '{r}' is compared with '{baseRecipe}', which is not in the list");
            }
            var (rows, peak) = CostBench.Run(models, recipes, n, Console.Out);
            string dir = p.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            var md = Markdown(rows, peak, n, "./coefftune " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1)));
            Cli.WriteAtomic(Path.Combine(dir, "cost.md"), md);
            Cli.WriteAtomic(Path.Combine(dir, "cost.json"), JsonSerializer.Serialize(new
            {
                steps = n, matmul_peak_gflops = peak, rows,
                ratios = Ratios(rows).Select(r => new { model = r.Model, method = r.Base, time_ratio = r.Time, memory_ratio = r.Memory, step_mib_added = r.MiBAdded, flops_ratio = r.Flops }),
            }, new JsonSerializerOptions { WriteIndented = true }));
            Console.WriteLine(md);
            return 0;
        });
        return cmd;
    }

    public static IEnumerable<(string Model, string Base, double Time, double Memory, double MiBAdded, double Flops)> Ratios(List<CostRow> rows)
    {
        foreach (var r in rows.Where(r => r.Recipe.StartsWith("coeff")))
        {
            var baseRecipe = BaseRecipe(r.Recipe);
            var b = rows.First(x => x.Model == r.Model && x.Recipe == baseRecipe);
            yield return (r.Model, r.Recipe.EndsWith(CostBench.StoredMapsSuffix) ? baseRecipe + CostBench.StoredMapsSuffix : baseRecipe, r.MedianMs / b.MedianMs, b.PeakStepMiB > 0 ? r.PeakStepMiB / b.PeakStepMiB : double.NaN,
                r.PeakStepMiB - b.PeakStepMiB, r.ForwardGflops / b.ForwardGflops);
        }
    }

    /// <summary>The recipe a coeff recipe is compared with: the same recipe without coeff.</summary>
    private static string BaseRecipe(string coeffRecipe)
    {
        var recipe = coeffRecipe.Replace(CostBench.StoredMapsSuffix, "");
        return recipe == "coeff" ? "linear" : recipe["coeff+".Length..];
    }

    private static string Markdown(List<CostRow> rows, double peak, int steps, string command)
    {
        var sb = new StringBuilder();
        sb.AppendLine("## cost");
        sb.AppendLine();
        sb.AppendLine($"Command: `{command}`. Median of {steps} training steps per configuration, all configurations interleaved in one process; " +
            $"step memory = rise of the resident set during a step. Float32 GEMM peak measured in the same run: {peak:F1} GFLOP/s.");
        sb.AppendLine();
        sb.AppendLine("| model | recipe | step time (ms) | step memory (MiB) | forward GFLOPs/example | achieved GFLOP/s (% of GEMM peak) |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine($"| {r.Model} | {r.Recipe} | {r.MedianMs:F1} | {r.PeakStepMiB:F1} | {r.ForwardGflops:F4} | {r.AchievedGflops:F1} ({100 * r.AchievedGflops / peak:F0}%) |");
        sb.AppendLine();
        sb.AppendLine("| model | method | + coeff: time ratio | step memory ratio | FLOPs ratio |");
        sb.AppendLine("|---|---|---:|---:|---:|");
        foreach (var r in Ratios(rows))
            sb.AppendLine($"| {r.Model} | {r.Base} | {r.Time:F3} | {r.Memory:F3} ({r.MiBAdded:+0.0;-0.0} MiB) | {r.Flops:F4} |");
        return sb.ToString();
    }
}
