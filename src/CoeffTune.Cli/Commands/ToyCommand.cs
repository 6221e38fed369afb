using System.CommandLine;
using System.Text.Json;
using CoeffTune.Toy;
using ScottPlot;
using Spectre.Console;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune toy</c>: the paper's Figure 3 on the eight nodes of a square.</summary>
public static class ToyCommand
{
    public static Command Create()
    {
        var defaults = new ToyOptions();
        var outDir = new Option<string>("--out") { Description = "folder for toy.png and toy.json", DefaultValueFactory = _ => "out/toy" };
        var seeds = new Option<int>("--seeds") { Description = "seeds per setting", DefaultValueFactory = _ => defaults.Seeds };
        var heads = new Option<int>("--heads") { Description = "attention heads H", DefaultValueFactory = _ => defaults.Heads };
        var keyWidth = new Option<int>("--key-width") { Description = "query/key width per head", DefaultValueFactory = _ => defaults.KeyWidth };
        var budgets = new Option<int[]>("--steps") { Description = "Adam steps at which to read the outputs (the last is the run length)", DefaultValueFactory = _ => defaults.Budgets, AllowMultipleArgumentsPerToken = true };
        var lr = new Option<double>("--lr") { Description = "Adam learning rate", DefaultValueFactory = _ => defaults.LearningRate };
        var cmd = new Command("toy", "Reproduce the paper's Figure 3: tuning attention maps vs. recombining them with alpha") { outDir, seeds, heads, keyWidth, budgets, lr };
        cmd.SetAction(p => Run(p.GetValue(outDir)!, new ToyOptions
        {
            Seeds = p.GetValue(seeds), Heads = p.GetValue(heads), KeyWidth = p.GetValue(keyWidth),
            Budgets = p.GetValue(budgets)!, LearningRate = p.GetValue(lr),
        }));
        return cmd;
    }

    private static int Run(string outDir, ToyOptions o)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var results = FilterSubspaceToy.Run(o);
        AnsiConsole.MarkupLine($"[bold]Figure 3 toy[/]: H = {o.Heads}, key width {o.KeyWidth}, W_v^h = I/H at start, float64 Adam lr {o.LearningRate}, {o.Seeds} seeds ({sw.Elapsed.TotalSeconds:F1} s)");
        foreach (var atBudget in results)
        {
            var table = new Table().Title($"after {atBudget[0].Steps} steps");
            table.AddColumns("setting", "tuned", "trainable", "MSE mean ± std", "max dist", "inside square");
            foreach (var r in atBudget)
                table.AddRow(r.Setting.Name, r.Setting.Label, r.Trainable.ToString(), $"{r.MseMean:G3} ± {r.MseStd:G2}", $"{r.MaxDist:F3}", r.AllInsideSquare ? "yes" : "no");
            AnsiConsole.Write(table);
        }
        var final = results[^1];
        bool allHold = true;
        AnsiConsole.MarkupLine($"[bold]The paper's claims after {final[0].Steps} steps[/]:");
        foreach (var (claim, holds, evidence) in ToyClaims.Check(final))
        {
            allHold &= holds;
            AnsiConsole.MarkupLine($"  {(holds ? "[green]holds[/]" : "[red]DOES NOT HOLD[/]")}  {Markup.Escape(claim)}  ({Markup.Escape(evidence)})");
        }
        var first = results[0];
        AnsiConsole.MarkupLine($"  after {first[0].Steps} steps: (iii) MSE {first[2].MseMean:G3} vs (ii) {first[1].MseMean:G3}: alpha {(first[2].MseMean < first[1].MseMean ? "converges faster" : "does not converge faster")}");
        if (!allHold)
            AnsiConsole.MarkupLine("  [yellow]Not every statement of the paper reproduced; see docs/toy.md for why.[/]");

        Directory.CreateDirectory(outDir);
        var json = new
        {
            heads = o.Heads, key_width = o.KeyWidth, seeds = o.Seeds, lr = o.LearningRate, steps = final[0].Steps,
            settings = final.Select(Row),
            budgets = results.Select(b => new { steps = b[0].Steps, settings = b.Select(Row) }),
            claims = ToyClaims.Check(final).Select(c => new { claim = c.Claim, holds = c.Holds, evidence = c.Evidence }),
        };
        CoeffTune.Cli.Cli.WriteAtomic(Path.Combine(outDir, "toy.json"), JsonSerializer.Serialize(json, new JsonSerializerOptions { WriteIndented = true }));
        Plot(final, Path.Combine(outDir, "toy.png"));
        AnsiConsole.MarkupLine($"wrote {Markup.Escape(Path.Combine(outDir, "toy.json"))} and toy.png");
        return 0;
    }

    private static object Row(ToyResult r) => new
    {
        name = r.Setting.Name, tuned = r.Setting.Label, trainable = r.Trainable, mse_mean = r.MseMean, mse_std = r.MseStd,
        mse_min = r.MseMin, max_dist = r.MaxDist, inside_square = r.AllInsideSquare,
    };

    private static void Plot(ToyResult[] results, string path)
    {
        var multiplot = new Multiplot();
        multiplot.AddPlots(results.Length);
        multiplot.Layout = new ScottPlot.MultiplotLayouts.Columns();
        for (int k = 0; k < results.Length; k++)
        {
            var plot = multiplot.GetPlot(k);
            var r = results[k];
            double[] sx = { -1, 1, 1, -1, -1 }, sy = { 1, 1, -1, -1, 1 };
            var square = plot.Add.Scatter(sx, sy);
            square.Color = Colors.Gray; square.MarkerSize = 0; square.LineWidth = 1;
            var input = plot.Add.Markers(Col(FilterSubspaceToy.Nodes, 0), Col(FilterSubspaceToy.Nodes, 1), MarkerShape.FilledCircle, 7, Colors.Gray);
            input.LegendText = "input X";
            var target = plot.Add.Markers(Col(FilterSubspaceToy.Target, 0), Col(FilterSubspaceToy.Target, 1), MarkerShape.Cross, 12, Colors.Red);
            target.LegendText = "target";
            var output = plot.Add.Markers(Col(r.Outputs, 0), Col(r.Outputs, 1), MarkerShape.OpenCircle, 10, Colors.Blue);
            output.LegendText = "output";
            plot.Title($"{r.Setting.Name} {r.Setting.Label}\nMSE {r.MseMean:G2}", size: 11);
            plot.Axes.SetLimits(-2.5, 2.5, -2.5, 2.5);
            plot.Axes.SquareUnits();
            if (k == 0) plot.ShowLegend(Alignment.LowerLeft);
        }
        multiplot.SavePng(path, 300 * results.Length, 340);
    }

    private static double[] Col(double[,] a, int c) => Enumerable.Range(0, a.GetLength(0)).Select(i => a[i, c]).ToArray();
}
