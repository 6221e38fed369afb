using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Data;
using CoeffTune.Methods;
using CoeffTune.Models;
using CoeffTune.Training;

namespace CoeffTune.Cli.Bench;

/// <summary>One method of a comparison: a row label, its recipe and per-method options.</summary>
public sealed record BenchMethod(string Label, string Recipe, IReadOnlyDictionary<string, JsonObject>? Options = null);

/// <summary>The fixed setup of a comparison; chosen before any result is seen, printed with the results.</summary>
public sealed record BenchSetup
{
    public required string Name { get; init; }
    public required string Model { get; init; }
    public required IReadOnlyList<string> Tasks { get; init; }
    public required IReadOnlyList<BenchMethod> Methods { get; init; }
    public int Seeds { get; init; } = 3;
    public int TrainSize { get; init; } = 800;
    public int ValidationSize { get; init; } = 200;
    public int? TestSize { get; init; }
    public int MaxTokens { get; init; } = 64;
    public required TrainOptions Train { get; init; }
    public PretrainOptions Pretrain { get; init; } = new();
}

/// <summary>Test accuracy of one (task, method, seed) run.</summary>
public sealed record BenchRunResult(string Task, string Method, int Seed, double TestAccuracy, double BestValidation, long Trainable, long HeadParameters, double Seconds);

/// <summary>
/// Runs every task x method x seed with <see cref="FineTune"/>, one folder per run. A finished run
/// leaves result.json and is not run again, so an interrupted benchmark continues where it stopped.
/// </summary>
public static class MethodComparison
{
    public static List<BenchRunResult> Run(BenchSetup s, string outDir, TextWriter log)
    {
        var results = new List<BenchRunResult>();
        int total = s.Tasks.Count * s.Methods.Count * s.Seeds, done = 0;
        foreach (var task in s.Tasks)
            foreach (var m in s.Methods)
                for (int seed = 0; seed < s.Seeds; seed++)
                {
                    done++;
                    var dir = Path.Combine(outDir, "runs", task, m.Label, $"seed{seed}");
                    var resultPath = Path.Combine(dir, "result.json");
                    if (File.Exists(resultPath))
                    {
                        results.Add(JsonSerializer.Deserialize<BenchRunResult>(File.ReadAllText(resultPath))!);
                        continue;
                    }
                    var o = new FineTuneOptions
                    {
                        Model = s.Model, Task = task, Method = m.Recipe, MethodOptions = m.Options, TrainSize = s.TrainSize,
                        ValidationSize = s.ValidationSize, TestSize = s.TestSize, MaxTokens = s.MaxTokens, OutDir = dir,
                        Train = s.Train with { Seed = seed }, Pretrain = s.Pretrain, Resume = true,
                    };
                    var r = FineTune.Run(o, null, TextWriter.Null);
                    var row = new BenchRunResult(task, m.Label, seed, r.Test.Accuracy, r.Training.BestValidation.Accuracy,
                        r.Trainable.Total, r.Trainable.Head, r.Seconds);
                    Cli.WriteAtomic(resultPath, JsonSerializer.Serialize(row));
                    // The checkpoint only serves an interrupted run; the adapter and metrics stay.
                    var ckpt = Path.Combine(dir, Trainer.CheckpointFolder);
                    if (Directory.Exists(ckpt)) Directory.Delete(ckpt, true);
                    results.Add(row);
                    log.WriteLine($"[{done}/{total}] {task} {m.Label} seed {seed}: test {r.Test.Accuracy:P2} (val {r.Training.BestValidation.Accuracy:P2}, {r.Seconds:F0} s)");
                }
        return results;
    }

    /// <summary>Forward GFLOPs per example of each method on the first task's model.</summary>
    public static Dictionary<string, double> Gflops(BenchSetup s)
    {
        var task = TaskCatalog.Load(s.Tasks[0]);
        var flops = new Dictionary<string, double>();
        var idx = new[] { 0 };
        foreach (var m in s.Methods)
        {
            var loaded = FineTune.LoadModel(s.Model, task, s.MaxTokens, s.Pretrain);
            PeftModel.Wrap(loaded.Model, m.Recipe, m.Options);
            using var batch = loaded.Source(task.TrainPool).MakeBatch(idx, TorchSharp.torch.CPU);
            long n = batch.Inputs.dim() == 2 ? batch.Inputs.shape[1] : ((VisionTransformer)loaded.Model).Config.Patches + 1;
            flops[m.Label] = FlopCounter.ForwardFlops(loaded.Model, batch, n) / 1e9;
            loaded.Model.Dispose();
        }
        return flops;
    }
}
