using System.CommandLine;
using CoeffTune.Benchmarks;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench concept</c>: concept customisation of dit-fmnist with LoRA and DoRA, with and without Coeff-Tuning (Table 3 at small scale).</summary>
public static class ConceptBenchCommand
{
    private static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["methods"] = "--methods", ["seeds"] = "--seeds", [nameof(CoeffTune.Diffusion.ConceptOptions.Steps)] = "--steps",
        [nameof(CoeffTune.Diffusion.ConceptOptions.LearningRate)] = "--lr",
    };

    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "2 concepts, one seed, 20 steps, 5 prompts of 2 images, small pretrainings: a smoke run of a few minutes" };
        var outDir = new Option<string?>("--out") { Description = "results folder (default runs/bench/<name>: concept, or concept-<steps>-<lr> for another budget)" };
        var seeds = new Option<int?>("--seeds") { Description = "seeds per run (default 3; --quick: 1)" };
        var methods = new Option<string[]>("--methods") { Description = "only these method labels (lora, coeff+lora, dora, coeff+dora)", AllowMultipleArgumentsPerToken = true };
        var steps = new Option<int?>("--steps") { Description = "training steps per run, instead of the paper's 200 (the results get their own name and folder)" };
        var lr = new Option<double?>("--lr") { Description = "learning rate, instead of the paper's 3e-4 (the results get their own name and folder)" };
        var cmd = new Command("concept", "Bind a token to 10 new concepts in dit-fmnist with LoRA and DoRA of rank 2, with and without Coeff-Tuning; fidelity, alignment, diversity")
            { quick, outDir, seeds, methods, steps, lr };
        cmd.SetAction(p =>
        {
            var s = Cli.WithFlags(Flags, () => ConceptBenchSetup.Create(p.GetValue(quick)).Select(p.GetValue(methods), p.GetValue(seeds))
                .WithBudget(p.GetValue(steps), p.GetValue(lr)));
            string command = "./coefftune " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            var report = ConceptBench.Run(s, p.GetValue(outDir) ?? Path.Combine("runs", "bench", s.Name), command, ConsoleProgress.Log);
            Console.WriteLine(report.Markdown);
            Console.WriteLine($"wrote {report.MarkdownPath}, {report.JsonPath} and {report.Grids.Count} grids ({string.Join(", ", report.Grids.Select(Path.GetFileName))})");
            return 0;
        });
        return cmd;
    }
}
