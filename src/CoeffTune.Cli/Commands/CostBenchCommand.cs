using System.CommandLine;
using CoeffTune.Benchmarks;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench cost</c>: step time and step memory of each method with and without coeff.</summary>
public static class CostBenchCommand
{
    /// <summary>The library's names for what the flags set (CostBenchSetup), for its errors.</summary>
    private static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        [nameof(CostBenchSetup.Steps)] = "--steps", [nameof(CostBenchSetup.Recipes)] = "--recipes", ["recipes"] = "--recipes",
        [nameof(CostBenchSetup.SequenceLengths)] = "--seq-lens",
    };

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = $"small models and {CostBenchSetup.QuickSteps} rounds: a smoke run" };
        var steps = new Option<int>("--steps") { Description = "measured steps per configuration (median reported)", DefaultValueFactory = _ => 10 };
        var outDir = new Option<string>("--out") { Description = "results folder", DefaultValueFactory = _ => "runs/bench/cost" };
        var only = new Option<string[]>("--recipes") { Description = "measure only these recipes (default: all); a coeff recipe needs its base recipe too, for the ratio", AllowMultipleArgumentsPerToken = true };
        var seqLens = new Option<int[]>("--seq-lens") { Description = $"measure the MiniLM shape alone at these sequence lengths, {CostBenchSetup.TokensPerBatch} tokens per batch; adds cost-seq-lens.png", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("cost", "Time and memory per training step of each method with and without coeff (ViT-B/16 and MiniLM shapes), and achieved GFLOP/s") { quick, steps, outDir, only, seqLens };
        cmd.SetAction(p =>
        {
            bool q = p.GetValue(quick);
            var setup = Cli.WithFlags(Flags, () => new CostBenchSetup
            {
                Quick = q, Steps = q ? CostBenchSetup.QuickSteps : p.GetValue(steps), Recipes = CostBenchSetup.Select(p.GetValue(only)),
                SequenceLengths = p.GetValue(seqLens) is { Length: > 0 } lens ? lens : null,
            });
            var report = CostBench.Run(setup, p.GetValue(outDir)!, "./coefftune " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1)), Console.Out);
            if (setup.SequenceLengths is not null)
            {
                var chart = Path.Combine(p.GetValue(outDir)!, "cost-seq-lens.png");
                Plots.CostAgainstLength(chart, report.Rows, q ? CostBenchSetup.TokensPerBatch / 4 : CostBenchSetup.TokensPerBatch);
                Console.WriteLine($"chart: {chart}");
            }
            Console.WriteLine(report.Markdown);
            return 0;
        });
        return cmd;
    }
}
