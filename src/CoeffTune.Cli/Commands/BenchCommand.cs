using System.CommandLine;
using CoeffTune.Cli.Bench;
using Spectre.Console;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune bench</c>: the paper's claims on real data, and what Coeff-Tuning costs.</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("bench", "Reproduce the paper's comparisons at small scale (vtab-mini, text, ablation) and measure the cost of Coeff-Tuning (cost)");
        cmd.Subcommands.Add(Comparison("vtab-mini", "A ViT pretrained here on Fashion-MNIST, transferred with 1,000 examples to four tasks (Table 1 style)", BenchSetups.VtabMini));
        cmd.Subcommands.Add(Comparison("text", "all-MiniLM-L6-v2 on SpamAssassin and Brown genres, 1,000 examples each", BenchSetups.Text));
        cmd.Subcommands.Add(Comparison("ablation", "Table 5a (alpha parameterisation) and 5b (coefficient dropout) on the mini-VTAB tasks", BenchSetups.Ablation));
        cmd.Subcommands.Add(CostBenchCommand.Create());
        cmd.Subcommands.Add(RetrievalBenchCommand.Create());
        return cmd;
    }

    private static Command Comparison(string name, string description, Func<bool, BenchSetup> setup)
    {
        var quick = new Option<bool>("--quick") { Description = "one seed, tiny budgets: a smoke run of a few minutes" };
        var outDir = new Option<string>("--out") { Description = "results folder", DefaultValueFactory = _ => $"runs/bench/{name}" };
        var seeds = new Option<int?>("--seeds") { Description = "seeds per run (default 3; --quick: 1)" };
        var tasks = new Option<string[]>("--tasks") { Description = "only these tasks", AllowMultipleArgumentsPerToken = true };
        var methods = new Option<string[]>("--methods") { Description = "only these method labels", AllowMultipleArgumentsPerToken = true };
        var cmd = new Command(name, description) { quick, outDir, seeds, tasks, methods };
        cmd.SetAction(p =>
        {
            var s = setup(p.GetValue(quick));
            if (p.GetValue(seeds) is int n) s = n >= 1 ? s with { Seeds = n } : throw new ArgumentException($"--seeds must be at least 1, got {n}");
            if (p.GetValue(tasks) is { Length: > 0 } ts)
            {
                var unknown = ts.Except(s.Tasks).ToList();
                if (unknown.Count > 0) throw new ArgumentException($"--tasks: '{unknown[0]}' is not a task of this bench ({string.Join(", ", s.Tasks)})");
                s = s with { Tasks = ts };
            }
            if (p.GetValue(methods) is { Length: > 0 } ms)
            {
                var unknown = ms.Except(s.Methods.Select(m => m.Label)).ToList();
                if (unknown.Count > 0) throw new ArgumentException($"--methods: '{unknown[0]}' is not a method of this bench ({string.Join(", ", s.Methods.Select(m => m.Label))})");
                s = s with { Methods = s.Methods.Where(m => ms.Contains(m.Label)).ToList() };
            }
            string dir = p.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            string command = "./coefftune " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            if (s.Model == "vit-fmnist")
            {
                var pre = CoeffTune.Training.VitPretraining.Ensure(s.Pretrain, log: Console.Out);
                AnsiConsole.MarkupLine($"ViT pretrained on Fashion-MNIST: test accuracy {pre.TestAccuracy:P2} ({pre.Seconds:F0} s)");
            }
            var runs = MethodComparison.Run(s, dir, Console.Out);
            var gflops = MethodComparison.Gflops(s);
            var rows = BenchReport.Summarise(s, runs, gflops);
            var md = BenchReport.Markdown(s, rows, command);
            Cli.WriteAtomic(Path.Combine(dir, $"{name}.md"), md);
            object? extra = s.Model == "vit-fmnist" ? new { pretrain_test_accuracy = CoeffTune.Training.VitPretraining.Ensure(s.Pretrain).TestAccuracy } : null;
            BenchReport.Json(Path.Combine(dir, $"{name}.json"), s, rows, runs, command, extra);
            BenchReport.Chart(Path.Combine(dir, $"{name}.png"), s, rows, $"{name}: test accuracy");
            Console.WriteLine(md);
            return 0;
        });
        return cmd;
    }
}
