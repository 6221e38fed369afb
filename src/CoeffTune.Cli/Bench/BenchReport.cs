using System.Text;
using System.Text.Json;
using ScottPlot;

namespace CoeffTune.Cli.Bench;

/// <summary>Aggregates runs into a Table-1-style markdown table, a JSON file and a bar chart.</summary>
public static class BenchReport
{
    public sealed record MethodSummary(string Method, double Mean, double MeanStd, Dictionary<string, double> Tasks, Dictionary<string, double> TaskStd, long Trainable, double Gflops, int Seeds);

    public static List<MethodSummary> Summarise(BenchSetup s, List<BenchRunResult> runs, Dictionary<string, double> gflops)
    {
        var list = new List<MethodSummary>();
        foreach (var m in s.Methods)
        {
            var mine = runs.Where(r => r.Method == m.Label).ToList();
            var tasks = s.Tasks.ToDictionary(t => t, t => 100 * mine.Where(r => r.Task == t).Average(r => r.TestAccuracy));
            var std = s.Tasks.ToDictionary(t => t, t => 100 * Std(mine.Where(r => r.Task == t).Select(r => r.TestAccuracy).ToList()));
            // Mean over tasks, and its spread over seeds (the task mean computed per seed).
            var perSeed = Enumerable.Range(0, s.Seeds).Select(seed => 100 * mine.Where(r => r.Seed == seed).Average(r => r.TestAccuracy)).ToList();
            var first = mine.First(r => r.Task == s.Tasks[0]);
            list.Add(new MethodSummary(m.Label, tasks.Values.Average(), Std(perSeed), tasks, std, first.Trainable - first.HeadParameters, gflops.GetValueOrDefault(m.Label), s.Seeds));
        }
        return list;
    }

    private static double Std(IReadOnlyList<double> xs)
    {
        if (xs.Count < 2) return 0;
        double mean = xs.Average();
        return Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1));
    }

    public static string Markdown(BenchSetup s, List<MethodSummary> rows, string command)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"## {s.Name}");
        sb.AppendLine();
        sb.AppendLine($"Command: `{command}`. Model: {s.Model}; {s.TrainSize} train / {s.ValidationSize} validation examples per task (the validation set picks the epoch), " +
            $"test: {(s.TestSize is int t ? $"{t} held-out examples" : "the whole held-out test set")}; {s.Train.Epochs} epochs, batch {s.Train.BatchSize}, AdamW lr {s.Train.LearningRate:G3} " +
            $"(warmup {s.Train.WarmupFraction:P0} then cosine), weight decay {s.Train.WeightDecay:G3}; {s.Seeds} seed(s). Test accuracy (%), mean over seeds (± std).");
        sb.AppendLine();
        sb.Append("| method | trainable (excl. head) | GFLOPs/example |");
        foreach (var task in s.Tasks) sb.Append($" {task} |");
        sb.AppendLine(" **mean** |");
        sb.Append("|---|---:|---:|");
        foreach (var _ in s.Tasks) sb.Append("---:|");
        sb.AppendLine("---:|");
        foreach (var r in rows)
        {
            sb.Append($"| {r.Method} | {r.Trainable:N0} | {r.Gflops:F4} |");
            foreach (var task in s.Tasks) sb.Append($" {r.Tasks[task]:F2}{(r.Seeds > 1 ? $" ± {r.TaskStd[task]:F1}" : "")} |");
            sb.AppendLine($" **{r.Mean:F2}**{(r.Seeds > 1 ? $" ± {r.MeanStd:F2}" : "")} |");
        }
        sb.AppendLine();
        foreach (var m in s.Methods.Where(m => m.Options is not null))
            sb.AppendLine($"- {m.Label}: options {JsonSerializer.Serialize(m.Options)}");
        return sb.ToString();
    }

    public static void Json(string path, BenchSetup s, List<MethodSummary> rows, List<BenchRunResult> runs, string command, object? extra = null)
    {
        var o = new
        {
            bench = s.Name, command, model = s.Model, tasks = s.Tasks, seeds = s.Seeds, train_size = s.TrainSize, validation_size = s.ValidationSize,
            test_size = s.TestSize, epochs = s.Train.Epochs, lr = s.Train.LearningRate, weight_decay = s.Train.WeightDecay, batch_size = s.Train.BatchSize,
            methods = rows.ToDictionary(r => r.Method, r => new { mean = r.Mean, mean_std = r.MeanStd, tasks = r.Tasks, task_std = r.TaskStd, trainable = r.Trainable, gflops = r.Gflops }),
            runs, extra,
        };
        Cli.WriteAtomic(path, JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Grouped bars: one group per task plus the mean, one bar per method.</summary>
    public static void Chart(string path, BenchSetup s, List<MethodSummary> rows, string title)
    {
        var plot = new Plot();
        var groups = s.Tasks.Append("mean").ToList();
        var palette = new ScottPlot.Palettes.Category10();
        for (int m = 0; m < rows.Count; m++)
        {
            var bars = new List<Bar>();
            for (int g = 0; g < groups.Count; g++)
            {
                double v = groups[g] == "mean" ? rows[m].Mean : rows[m].Tasks[groups[g]];
                bars.Add(new Bar { Position = g * (rows.Count + 1) + m, Value = v, FillColor = palette.GetColor(m) });
            }
            var bp = plot.Add.Bars(bars);
            bp.LegendText = rows[m].Method;
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            groups.Select((g, i) => (double)(i * (rows.Count + 1) + (rows.Count - 1) / 2.0)).ToArray(), groups.ToArray());
        plot.YLabel("test accuracy (%)");
        plot.Title(title);
        plot.ShowLegend(Edge.Right);
        double min = rows.Min(r => r.Tasks.Values.Append(r.Mean).Min());
        plot.Axes.SetLimitsY(Math.Max(0, min - 10), 100);
        plot.SavePng(path, 1100, 450);
    }
}
