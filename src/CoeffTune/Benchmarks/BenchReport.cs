using System.Text;
using System.Text.Json;

namespace CoeffTune.Benchmarks;

/// <summary>One method's row of a comparison: test accuracy (%) per task and its mean over tasks, each a mean over seeds with its spread.</summary>
public sealed record MethodSummary(string Method, double Mean, double MeanStd, Dictionary<string, double> Tasks, Dictionary<string, double> TaskStd, long Trainable, double Gflops, int Seeds);

/// <summary>Aggregates runs into a Table-1-style markdown table and a JSON file.</summary>
public static class BenchReport
{
    public static List<MethodSummary> Summarise(BenchSetup s, IReadOnlyList<BenchRunResult> runs, IReadOnlyDictionary<string, double> gflops)
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

    /// <summary>Sample standard deviation (n - 1); 0 for fewer than two values.</summary>
    public static double Std(IReadOnlyList<double> xs)
    {
        if (xs.Count < 2) return 0;
        double mean = xs.Average();
        return Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1));
    }

    public static string Markdown(BenchSetup s, IReadOnlyList<MethodSummary> rows, string command)
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
        // Each row's settings that tell it apart: those off the method's defaults, and those that vary between rows of one recipe.
        foreach (var m in s.Methods)
            if (m.Distinguishing(s.Methods) is { } options)
                sb.AppendLine($"- {m.Label}: options {JsonSerializer.Serialize(options)}");
        return sb.ToString();
    }

    public static void Json(string path, BenchSetup s, IReadOnlyList<MethodSummary> rows, IReadOnlyList<BenchRunResult> runs, string command, object? extra = null)
    {
        var o = new
        {
            bench = s.Name, command, model = s.Model, tasks = s.Tasks, seeds = s.Seeds, train_size = s.TrainSize, validation_size = s.ValidationSize,
            test_size = s.TestSize, epochs = s.Train.Epochs, lr = s.Train.LearningRate, weight_decay = s.Train.WeightDecay, batch_size = s.Train.BatchSize,
            methods = rows.ToDictionary(r => r.Method, r => new { mean = r.Mean, mean_std = r.MeanStd, tasks = r.Tasks, task_std = r.TaskStd, trainable = r.Trainable, gflops = r.Gflops }),
            runs, extra,
        };
        IO.AtomicFile.WriteAllText(path, JsonSerializer.Serialize(o, new JsonSerializerOptions { WriteIndented = true }));
    }
}
