using System.CommandLine;
using CoeffTune.Benchmarks;
using CoeffTune.VisionLanguage;
using Spectre.Console;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench</c>: the paper's claims on real data, and what Coeff-Tuning costs.</summary>
public static class BenchCommand
{
    /// <summary>The library's names for what the comparison flags select (BenchSetup.Select's parameters), for its errors.</summary>
    private static readonly IReadOnlyDictionary<string, string> Flags = new Dictionary<string, string>
    {
        ["tasks"] = "--tasks", ["methods"] = "--methods", ["seeds"] = "--seeds",
    };

    public static Command Create()
    {
        var cmd = new Command("bench", "Reproduce the paper's comparisons at small scale (vtab-mini, text, ablation, vl-mini, concept) and measure the cost of Coeff-Tuning (cost)");
        cmd.Subcommands.Add(Comparison("vtab-mini", "A ViT pretrained here on Fashion-MNIST, transferred with 1,000 examples to four tasks (Table 1 style)"));
        cmd.Subcommands.Add(Comparison("text", "all-MiniLM-L6-v2 on SpamAssassin and Brown genres, 1,000 examples each"));
        cmd.Subcommands.Add(Comparison("ablation", "Table 5a (alpha parameterisation) and 5b (coefficient dropout) on the mini-VTAB tasks"));
        cmd.Subcommands.Add(VisionLanguage());
        cmd.Subcommands.Add(CostBenchCommand.Create());
        cmd.Subcommands.Add(RetrievalBenchCommand.Create());
        cmd.Subcommands.Add(GenerateBenchCommand.Create());
        cmd.Subcommands.Add(ConceptBenchCommand.Create());
        return cmd;
    }

    private static Command Comparison(string name, string description)
    {
        var setup = BenchSetups.ByName[name];
        var quick = new Option<bool>("--quick") { Description = "one seed, tiny budgets: a smoke run of a few minutes" };
        var outDir = new Option<string>("--out") { Description = "results folder", DefaultValueFactory = _ => $"runs/bench/{name}" };
        var seeds = new Option<int?>("--seeds") { Description = "seeds per run (default 3; --quick: 1)" };
        var tasks = new Option<string[]>("--tasks") { Description = "only these tasks", AllowMultipleArgumentsPerToken = true };
        var methods = new Option<string[]>("--methods") { Description = "only these method labels", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command(name, description) { quick, outDir, seeds, tasks, methods };
        cmd.SetAction(p =>
        {
            var s = Cli.WithFlags(Flags, () => setup(p.GetValue(quick)).Select(p.GetValue(tasks), p.GetValue(methods), p.GetValue(seeds)));
            string dir = p.GetValue(outDir)!;
            string command = "./coefftune " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            Directory.CreateDirectory(dir);
            if (MethodComparison.Pretrain(s, Console.Out) is { } pre)
                AnsiConsole.MarkupLine($"ViT pretrained on Fashion-MNIST: test accuracy {pre.TestAccuracy:P2} ({pre.Seconds:F0} s)");
            var report = MethodComparison.Run(s, dir, command, Console.Out);
            Plots.BenchChart(MethodComparison.Files(s, dir).Chart, s, report.Rows, $"{s.Name}: test accuracy");
            Console.WriteLine(report.Markdown);
            return 0;
        });
        return cmd;
    }

    /// <summary><c>bench vl-mini</c>: Table 4 and 5b's analogue on a BART and a ViT pretrained here.</summary>
    private static Command VisionLanguage()
    {
        var quick = new Option<bool>("--quick") { Description = "one seed, a tiny BART and tiny budgets: a smoke run of a few minutes" };
        var outDir = new Option<string>("--out") { Description = "results folder", DefaultValueFactory = _ => "runs/bench/vl-mini" };
        var seeds = new Option<int?>("--seeds") { Description = "seeds per method (default 3; --quick: 1)" };
        var methods = new Option<string[]>("--methods") { Description = "only these method labels", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command("vl-mini", "VL-BART at small scale (Tables 4 and 5b): a BART pretrained here reads a frozen ViT's patch features; " +
            "VQA-, GQA-, NLVR2-style questions and captions on digits and garments, trained together") { quick, outDir, seeds, methods };
        cmd.SetAction(p =>
        {
            var s = Cli.WithFlags(Flags, () => VlBench.Setup(p.GetValue(quick)).Select(p.GetValue(methods), p.GetValue(seeds)));
            string dir = p.GetValue(outDir)!;
            string command = "./coefftune " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            var report = VlBench.Run(s, dir, command, Console.Out);
            var chart = Path.ChangeExtension(report.MarkdownPath, ".png");
            Plots.GroupedBars(chart, VlTasks.Names, report.Rows.Select(r => (r.Method, (IReadOnlyDictionary<string, double>)r.Tasks, r.Mean)).ToList(),
                $"{s.Name}: test scores (mean of {s.Seeds} seed{(s.Seeds == 1 ? "" : "s")})", "exact match (%) / BLEU-4 (caption)");
            Console.WriteLine(report.Markdown);
            Console.WriteLine($"chart: {chart}");
            return 0;
        });
        return cmd;
    }
}
